"""Give the heap that llmos freed back to the operating system.

Nothing in a long session leaks, yet its resident size crept up by about
10 MB per 100 turns (``llmos bench soak``, tiny model, 3 processes): the
Python heap stayed flat (tracemalloc) while glibc kept the memory that
llama.cpp, onnxruntime and chromadb had freed inside its arenas, fragmented
between live blocks, instead of returning it. ``malloc_trim(0)`` returns
every free page of every arena; after it the same run's RSS stayed within a
few MB of its warm level.

The scheduler calls :func:`trim` when the CPU goes idle, so it never delays a
token. It is a no-op where the C library has no ``malloc_trim`` (musl, macOS,
Windows, which return large free blocks on their own or need no help).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

MIN_INTERVAL_S = 2.0
"""At most one trim per this many seconds: an idle CPU in a busy shell goes idle often."""


def _load_malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_malloc_trim = _load_malloc_trim()
_last = 0.0
trims = 0
"""How many trims ran (the soak benchmark reports it)."""


def available() -> bool:
    return _malloc_trim is not None


def trim() -> bool:
    """Return free heap to the OS, at most once per ``MIN_INTERVAL_S``; True if it ran."""
    global _last, trims
    now = time.monotonic()
    if _malloc_trim is None or now - _last < MIN_INTERVAL_S:
        return False
    _malloc_trim(0)
    _last = time.monotonic()
    trims += 1
    return True
