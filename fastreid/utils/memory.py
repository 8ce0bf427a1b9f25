"""Giving freed heap memory back to the operating system.

With glibc's allocator, a process that allocates and frees large buffers of varying sizes (decoded tracklets of
2 to 900 frames, say) keeps the freed memory in its heap instead of unmapping it: glibc raises its mmap threshold
after the first large frees, so later buffers of up to 32 MiB come from the heap, whose holes only shrink back on
a trim. The resident size then grows with the number of such buffers, not with the largest: measured on a
MARS-shaped test set (benchmarks/video_inference_memory.py) it reached 10.6 GiB where the work needs 1.4 GiB.
:func:`release_freed_memory` (``malloc_trim``) returns those holes; elsewhere it does nothing.
"""
import ctypes
import ctypes.util
import functools
import logging
from typing import Optional

__all__ = ["release_freed_memory"]

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Optional[ctypes._CFuncPtr]:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        trim = None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the heap's free memory to the operating system (glibc ``malloc_trim(0)``).

    Returns:
        True when the allocator released something, False when it released nothing or is not glibc's.
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
