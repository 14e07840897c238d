"""``llmos model pull``: fetch one GGUF from the Hugging Face Hub, resumably and verified.

The flow, all through ``huggingface_hub``:

1. ``HfApi.model_info(repo, files_metadata=True)`` lists the repo's files with
   their size and the SHA-256 the Hub recorded for them (``sibling.lfs``), and
   the commit the listing belongs to.
2. One file is picked: ``file`` by exact name (it may sit in a subfolder), else
   ``quant`` by its label in the file name (``Q4_K_M``, case-insensitive), else
   the only GGUF, else the ``Q4_K_M`` one; otherwise the error lists the quants.
   Split GGUFs (``-00001-of-00003.gguf``) are refused: llama.cpp needs all
   their parts side by side, which a one-file pull does not give.
3. The bytes go to a staging file, ``pulled_dir()/.partial/<owner>--<name>/``,
   fetched with ``huggingface_hub.file_download.http_get`` from the file's
   ``/resolve/<commit>/`` URL, appending to what an earlier, interrupted pull
   left there (a ``Range`` request). ``hf_hub_download`` is not used because
   in huggingface_hub 2.x it writes to a process-unique temporary file that it
   deletes on any failure, so a lost connection or Ctrl-C starts over from
   zero; ``http_get`` is its download loop, with the Hub's progress bar and its
   in-process retries (it resumes by itself after a brief network drop).
4. The staging file's SHA-256 is compared with the Hub's and its header must
   start with ``GGUF``; a bad file is deleted. Only then does ``os.replace``
   give it its final name, ``pulled_dir()/<owner>--<name>/<file basename>``.

So a file at a final name in ``pulled_dir()`` was always verified, and every
failure leaves at most a staging file (the resume data) behind. The endpoint
and token are read from ``HF_ENDPOINT`` and ``HF_TOKEN`` on every call and
passed explicitly: huggingface_hub reads ``HF_ENDPOINT`` only when imported.
Every failure is one ``ModelError`` line a user can act on.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import hf_hub_url, http_get
from huggingface_hub.utils import build_hf_headers
from huggingface_hub.utils.tqdm import silent_tqdm

from llmos.errors import ModelError
from llmos.kernel.models import pulled_dir

DEFAULT_ENDPOINT = "https://huggingface.co"
PREFERRED_QUANT = "Q4_K_M"
MB = 1_000_000

QUANT_RE = re.compile(r"(?<![A-Za-z0-9])(I?Q\d+(?:_[A-Z0-9]+)*|TQ\d_\d|MXFP4|BF16|F16|F32)(?![A-Za-z0-9])", re.I)
SPLIT_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.I)


def quant_of(filename: str) -> str | None:
    """The quant label in a GGUF's name, upper-cased: ``...-q4_k_m.gguf`` -> ``Q4_K_M``."""
    found = QUANT_RE.findall(Path(filename).name[: -len(".gguf")])
    return found[-1].upper() if found else None


def pull(repo: str, *, file: str | None = None, quant: str | None = None,
         progress: bool = True) -> Path:
    """Fetch one GGUF of ``repo`` into ``pulled_dir()/<owner>--<name>/<file>``, verified; return its path.

    ``file`` (an exact repo path) wins over ``quant``. A file already pulled with
    the size the Hub lists is returned without a download. Split GGUFs are
    refused with a ModelError. An interrupted download resumes on the next call.
    """
    endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    token = os.environ.get("HF_TOKEN") or None  # None: huggingface_hub falls back to a saved login
    host = urlsplit(endpoint).netloc or endpoint
    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(repo, files_metadata=True, timeout=30)
    except Exception as exc:
        raise _explain(exc, repo, host, endpoint, token) from None
    sibling = _choose(repo, info.siblings or [], file, quant)
    name = sibling.rfilename
    if sibling.lfs is None:
        raise ModelError(f"the Hub lists no SHA-256 for {name} in {repo}, so it cannot be verified")
    size, sha256 = sibling.lfs.size, sibling.lfs.sha256

    folder = repo.replace("/", "--")
    target = pulled_dir() / folder / Path(name).name
    if target.is_file() and target.stat().st_size == size:
        return target
    staging = pulled_dir() / ".partial" / folder / f"{Path(name).name}.{sha256[:16]}.part"
    try:
        staging.parent.mkdir(parents=True, exist_ok=True)
        for stale in staging.parent.glob(f"{Path(name).name}.*.part"):  # an older version of the file
            if stale != staging:
                stale.unlink()
        have = staging.stat().st_size if staging.exists() else 0
        if have > size:
            staging.unlink()
            have = 0
        free = shutil.disk_usage(staging.parent).free
    except OSError as exc:
        raise _disk_error(exc, staging, size) from None
    if free < size - have:
        raise ModelError(f"not enough disk space in {staging.parent}: need {_mb(size - have)} MB, "
                         f"{_mb(free)} MB free")

    url = hf_hub_url(repo, name, revision=info.sha, endpoint=endpoint)
    try:
        with staging.open("ab") as fh:
            http_get(url, fh, resume_size=have, headers=build_hf_headers(token=token), expected_size=size,
                     displayed_filename=Path(name).name, tqdm_class=None if progress else silent_tqdm)
    except Exception as exc:
        kept = staging.stat().st_size if staging.exists() else 0
        resume = f"; {_mb(kept)} of {_mb(size)} MB kept, run the same pull again to resume" if kept else ""
        if isinstance(exc, OSError) and not isinstance(exc, HfHubHTTPError | OfflineModeIsEnabled):
            if exc.errno is not None:
                raise _disk_error(exc, staging, size - kept) from None
            # http_get's own size check: the server ended the file early without an error.
            raise ModelError(f"the download of {name} from {host} ended early{resume}") from None
        raise _explain(exc, repo, host, endpoint, token, during=f"the download of {name}", tail=resume) from None

    _verify(staging, sha256, name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
    except OSError as exc:
        raise _disk_error(exc, target, size) from None
    _remove_empty(staging.parent)
    return target


def _choose(repo: str, siblings: list, file: str | None, quant: str | None):
    ggufs = [s for s in siblings if s.rfilename.lower().endswith(".gguf")]
    if file:
        chosen = [s for s in siblings if s.rfilename == file.lstrip("/")]
        if not chosen:
            names = ", ".join(s.rfilename for s in ggufs) or "none"
            raise ModelError(f"{repo} has no file {file} (its GGUF files: {names})")
        if not file.lower().endswith(".gguf"):
            raise ModelError(f"{file} is not a .gguf file; llmos runs GGUF models")
        return _single(repo, chosen[0])
    models = [s for s in ggufs if not Path(s.rfilename).name.lower().startswith("mmproj")]
    if not models:
        raise ModelError(f"{repo} has no .gguf file; llmos runs GGUF models (look for a repo named ...-GGUF)")
    labels = sorted({q for s in models if (q := quant_of(s.rfilename))})
    available = ", ".join(labels) or "none labelled"
    want = quant or (None if len(models) == 1 else PREFERRED_QUANT)
    chosen = [s for s in models if want is None or quant_of(s.rfilename) == want.upper()]
    if not chosen:
        if quant:
            raise ModelError(f"{repo} has no {quant} GGUF (available quants: {available})")
        raise ModelError(f"{repo} has {len(models)} GGUF files; choose one with --quant "
                         f"(available quants: {available}) or --file")
    single = [s for s in chosen if not SPLIT_RE.search(s.rfilename)]
    if len(single) > 1:
        names = ", ".join(s.rfilename for s in single)
        raise ModelError(f"{repo} has several {want.upper()} GGUF files ({names}); choose one with --file")
    return _single(repo, single[0] if single else chosen[0])


def _single(repo: str, sibling):
    if m := SPLIT_RE.search(sibling.rfilename):
        raise ModelError(f"{sibling.rfilename} in {repo} is part of a GGUF split into {int(m.group(2))} files; "
                         "llmos pulls single-file GGUFs only, choose another quant or --file")
    return sibling


def _verify(staging: Path, sha256: str, name: str) -> None:
    digest = hashlib.sha256()
    with staging.open("rb") as fh:
        header = fh.read(4)
        digest.update(header)
        while chunk := fh.read(8 << 20):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        _discard(staging)
        raise ModelError(f"{name} failed verification (sha256 {digest.hexdigest()[:12]}..., the Hub lists "
                         f"{sha256[:12]}...); the bad download was removed, run the pull again")
    if header != b"GGUF":
        _discard(staging)
        raise ModelError(f"{name} is not a GGUF model file (its header is {header!r}); it was removed")


def _explain(exc: Exception, repo: str, host: str, endpoint: str, token: str | None,
             during: str = "", tail: str = "") -> ModelError:
    """One line for whatever huggingface_hub or httpx2 raised."""
    detail = " ".join(str(exc).split())[:200]
    if isinstance(exc, GatedRepoError):
        return ModelError(f"{repo} is gated: accept its licence at {endpoint}/{repo}, then set HF_TOKEN to a "
                          "token of that account" + (" (the current HF_TOKEN has no access yet)" if token else ""))
    if isinstance(exc, RepositoryNotFoundError):
        hint = "or HF_TOKEN has no access to it" if token else "if it is private, set HF_TOKEN"
        return ModelError(f"no model repo {repo} on {host} ({hint})")
    if isinstance(exc, RevisionNotFoundError | EntryNotFoundError):
        return ModelError(f"{host} has no such file or revision in {repo}: {detail}")
    if isinstance(exc, HFValidationError):
        return ModelError(f"{repo!r} is not a Hub repo id (expected owner/name, e.g. Qwen/Qwen2.5-0.5B-Instruct-GGUF)")
    if isinstance(exc, OfflineModeIsEnabled):
        return ModelError("HF_HUB_OFFLINE is set, so huggingface_hub makes no network calls; unset it to pull")
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return ModelError(f"{host} refused access to {repo} (HTTP {status}): accept its licence at "
                              f"{endpoint}/{repo} and set HF_TOKEN to a token with access{tail}")
        what = f"{during} stopped: " if during else ""
        return ModelError(f"{what}{host} answered HTTP {status}{tail}")
    if isinstance(exc, httpx2.TransportError):
        if during and tail:
            return ModelError(f"{during} from {host} broke off ({detail}){tail}")
        return ModelError(f"cannot reach {host}: {detail or type(exc).__name__}{tail}")
    return ModelError(f"pulling {repo} from {host} failed: {type(exc).__name__}: {detail}{tail}")


def _disk_error(exc: OSError, path: Path, need: int) -> ModelError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ModelError(f"not enough disk space in {path.parent}: need {_mb(need)} MB")
    return ModelError(f"cannot write {path}: {exc.strerror or exc}")


def _discard(staging: Path) -> None:
    staging.unlink(missing_ok=True)
    _remove_empty(staging.parent)


def _remove_empty(folder: Path) -> None:
    """Drop the repo's staging folder, and ``.partial`` itself, once empty."""
    for path in (folder, folder.parent):
        try:
            path.rmdir()
        except OSError:
            return


def _mb(n: int) -> int:
    return max(1, -(-n // MB)) if n > 0 else 0
