"""Tell glibc's allocator to keep freed memory for reuse: the batch path's big arrays otherwise cost page faults.

The ledger and the ladder allocate and free hundreds of array temporaries of 1–100 MB per run. By default
glibc serves large blocks with fresh `mmap`s and hands them back on `free`, so every temporary is faulted in
and zeroed by the kernel again; on a 1,000,000-loan book that was ~4 s of system time out of ~9 s of CPU
(bench/README.md, "ledger and ladder"). Raising the mmap threshold to its maximum (32 MiB on 64-bit), never
trimming the heap, and growing it in 1 GiB steps halves that (256 MiB steps
did not: the temporaries outgrow them). Peak memory does not change: what is kept is
memory the run has already used once.

NumPy also asks the kernel for transparent huge pages on every large array. On these machines the first
touch of a huge page cost more than of the small pages it replaces: the ledger's first run in a process spent
1.6–2.0 s of system time with it and 0.9 s without (bench/README.md), so that request is switched off too.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt(3) parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc refuses more than HEAP_MAX_SIZE / 2 on 64-bit
_TRIM_THRESHOLD = 2**31 - 1  # the largest mallopt takes: in effect, never trim
_TOP_PAD = 1024 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Apply the settings above to this process; False where the C library has no `mallopt` (not glibc)."""
    from numpy._core import multiarray

    multiarray._set_madvise_hugepage(False)  # type: ignore[attr-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    ok &= mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    ok &= mallopt(_M_TOP_PAD, _TOP_PAD)
    return bool(ok)
