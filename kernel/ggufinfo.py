"""What a GGUF file says about itself, read without loading it.

``llmos model list`` shows, for every model it finds, the quantisation, the
trained context and whether the chat template knows tools. Those are key/value
pairs at the head of the file (the GGUF header: magic, version, tensor count,
then typed key/value pairs, then tensor infos and weights). Only the pairs are
read, and of arrays only their length is skipped over.

Why a reader of our own and not a library: the ``gguf`` package (llama.cpp's
Python reader) maps every tensor and every token into numpy first, 6.0 s on the
default model here; llama.cpp's own vocab-only load takes 0.25 s plus 0.5 s to
import, and writes a page of log lines. This reads the same pairs in a few
milliseconds (measured: ``python -m llmos.kernel.ggufinfo FILE``).
"""

from __future__ import annotations

import mmap
import struct
import sys
from pathlib import Path

from llmos.errors import ModelError

# GGUF value types: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
              10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
              16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 24: "IQ1_S",
              25: "IQ4_NL", 26: "IQ3_S", 28: "IQ4_XS", 30: "BF16", 32: "TQ1_0", 33: "TQ2_0"}
"""llama.cpp's ``general.file_type`` (``enum llama_ftype``) by number."""


def metadata(path: Path) -> dict:
    """The file's key/value pairs; arrays are given as their length (``{"array": n}``)."""
    try:
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _read(buf)
    except (OSError, ValueError) as exc:  # unreadable, empty (mmap of 0 bytes)
        raise ModelError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except (struct.error, IndexError, UnicodeDecodeError):
        raise ModelError(f"{path} has a damaged GGUF header") from None


def _read(buf) -> dict:
    if buf[:4] != b"GGUF":
        raise ModelError("not a GGUF file")
    version, _n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version not in (2, 3):
        raise ModelError(f"unsupported GGUF version {version}")
    pos, out = 24, {}

    def string(at: int) -> tuple[str, int]:
        (n,) = struct.unpack_from("<Q", buf, at)
        return buf[at + 8:at + 8 + n].decode("utf-8"), at + 8 + n

    for _ in range(n_kv):
        key, pos = string(pos)
        (kind,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        if kind == _STRING:
            out[key], pos = string(pos)
        elif kind == _ARRAY:
            item, n = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            if item == _STRING:
                for _ in range(n):
                    pos += 8 + struct.unpack_from("<Q", buf, pos)[0]
            elif item in _SCALARS:
                pos += n * struct.calcsize(_SCALARS[item])
            else:
                raise struct.error(f"array of type {item}")
            out[key] = {"array": n}
        elif kind in _SCALARS:
            (out[key],) = struct.unpack_from(_SCALARS[kind], buf, pos)
            pos += struct.calcsize(_SCALARS[kind])
        else:
            raise struct.error(f"value type {kind}")
        if pos > len(buf):
            raise IndexError(pos)
    return out


def summary(path: Path) -> dict:
    """What ``llmos model list`` shows of a GGUF: name, architecture, quantisation, trained
    context, whether its chat template has a tools section (and which call format)."""
    from llmos.kernel import toolcall

    meta = metadata(path)
    arch = str(meta.get("general.architecture", ""))
    file_type = meta.get("general.file_type")
    template = meta.get("tokenizer.chat_template")
    fmt = toolcall.detect(template if isinstance(template, str) else None)
    return {
        "model": str(meta.get("general.name", "")),
        "architecture": arch,
        "quantization": FILE_TYPES.get(file_type, f"type {file_type}") if isinstance(file_type, int) else "",
        "context_trained": int(meta.get(f"{arch}.context_length", 0) or 0),
        "tools": fmt.native,
        "tool_format": fmt.family,
    }


if __name__ == "__main__":  # python -m llmos.kernel.ggufinfo FILE...: time the read
    import json
    import time

    for name in sys.argv[1:]:
        started = time.perf_counter()
        info = summary(Path(name))
        print(json.dumps({**info, "read_ms": round((time.perf_counter() - started) * 1000, 1)}))
