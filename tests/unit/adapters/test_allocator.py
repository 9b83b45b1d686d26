"""The allocator settings the `duecourse` command applies at start are accepted by glibc and NumPy."""

from __future__ import annotations

import platform

import pytest

from duecourse.adapters.allocator import keep_freed_memory


def test_glibc_takes_the_settings() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.fail("this suite runs on Debian (glibc); on another C library keep_freed_memory() returns False")
    # mallopt returns 0 for a value out of its range (e.g. an mmap threshold above 32 MiB): all three must be taken
    assert keep_freed_memory() is True
    from numpy._core import multiarray

    assert multiarray._get_madvise_hugepage() is False  # NumPy no longer asks for huge pages
