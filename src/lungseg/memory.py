"""Keep freed memory for reuse in a one-shot process.

glibc hands every freed block over 32 MB (most of a scan's arrays) straight back to the kernel,
so the next array of that size is page-faulted in again, 4 KB at a time. On the 2-core
development VM that was a third of a 512x512x300 run's CPU time (kernel time 2.6-3.3 s of ~9 s;
benchmarks/speed.py). Allocating from the heap and never trimming it lets later arrays reuse
those pages; the peak stays the same (the biggest arrays are all alive at the peak anyway).
Meant for short command-line runs, not for the long-running web server."""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed memory (no effect, False, elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False


def no_huge_page_advice() -> bool:
    """Stop numpy advising the kernel to back large arrays with huge pages (MADV_HUGEPAGE). Where
    transparent huge pages are in 'madvise' mode with 'madvise' defrag (Debian and Ubuntu's
    default, and the development VM's), each advised first touch may compact memory synchronously:
    a 512x512x300 run spent ~2 s of kernel time instead of ~1.1 s, and took 7.96 s instead of 6.96 s
    (mean of 4, interleaved; NUMPY_MADVISE_HUGEPAGE=1 vs 0). Returns whether the advice was on."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy < 2
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return False
    return bool(_set_madvise_hugepage(False))
