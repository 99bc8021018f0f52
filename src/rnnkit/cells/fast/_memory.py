"""Freed memory kept for reuse: large arrays without a page fault per page on every training step.

A training step allocates its large arrays afresh: the gates and states its backward needs, the gradients of
the pre-activations, the time-major copies (at (B, T, D, H) = (64, 100, 256, 1024) an LSTM step's peak is
about 480 MB). glibc's malloc serves each allocation above its mmap threshold (128 KB, raised as it goes, to
at most 32 MiB) with a fresh mapping and unmaps it on free, so every step writes to new pages, and each page's
first write is a fault into the kernel, which must clear the page. On the virtual machines rnnkit was measured
on, that cost up to a quarter of such a step: one core, the layer's step 1.77-1.88 s with glibc's defaults,
1.64-1.66 s with allocations up to 1 GiB served from the heap and kept there when freed (the cells alone:
2.18-2.29 → 1.62-1.68 s, their backward loop 744-789 → 452-521 ms, its 105 MB of pre-activation gradients no
longer faulted in page by page); two threads at (64, 100, 65, 256) 72.9-74.4 → 65.9-66.2 ms; (32, 100, 65,
512) one core 218-222 → 206-214.

``keep_freed_memory`` sets glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to 1 GiB (``mallopt``) when
the fast engine loads. The price: memory freed after a step stays with the process (its resident size keeps
at its peak instead of shrinking), for the next step to reuse; peak memory measured the same for a training
step, 4 → 19 MB for an inference at (64, 100, 256, 1024). It is left alone when the user set glibc's
malloc options already (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``,
``MALLOC_MMAP_MAX_``, or ``glibc.malloc`` tunables in ``GLIBC_TUNABLES``), when ``RNNKIT_KEEP_MALLOC_DEFAULTS``
is set to anything but ``0`` or empty, and on a C library other than glibc.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

KEPT_BYTES = 1 << 30  # allocations served from the heap, and free memory kept at its top, up to this size
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (glibc's malloc.h)
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
OPT_OUT = "RNNKIT_KEEP_MALLOC_DEFAULTS"


def _glibc() -> ctypes.CDLL | None:
    """The process's C library, if it is glibc (the one with ``mallopt`` and these parameter numbers)."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # e.g. Windows, where CDLL needs a library's name
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory(environ: Mapping[str, str] = os.environ) -> bool:
    """Serve allocations up to ``KEPT_BYTES`` from the heap and keep them there when freed (glibc only); returns
    whether the settings were made (see the module docstring for when they are not)."""
    if environ.get(OPT_OUT, "") not in ("", "0") or any(name in environ for name in _USER_SETTINGS) \
            or "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _glibc()
    if libc is None:
        return False
    return all(libc.mallopt(parameter, KEPT_BYTES) == 1 for parameter in (_M_MMAP_THRESHOLD, _M_TRIM_THRESHOLD))
