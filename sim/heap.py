"""glibc's malloc set to keep freed memory for reuse.

A sim run allocates and frees arrays of a few MiB at every node. With glibc's defaults the
freed top of the heap goes back to the kernel and arrays above the mmap threshold get fresh
pages, so every node pays page faults on memory it had a moment ago: on the demo network at
256x512 about 7,000 faults and 24 ms of system time a frame (``bench/sim_vs_torch_finn.py``).
:func:`keep_freed_memory` raises the trim threshold and the top pad and fixes the mmap
threshold at its maximum (``mallopt``, through ctypes), once per process, so that a run reuses
the memory the previous node freed. The process then keeps up to :data:`TRIM_MIB` of freed
heap instead of returning it; the setting is process-wide (other code in the process, torch
included, runs under it too). Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
TRIM_MIB = 256
TOP_PAD_MIB = 64
# glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2: 32 MiB on 64-bit systems
MMAP_THRESHOLD_MIB = 32

_LOCK = threading.Lock()
_state: dict[str, bool | None] = {"applied": None}


def keep_freed_memory() -> bool:
    """Apply the settings once per process; True where glibc took them."""
    with _LOCK:
        if _state["applied"] is None:
            _state["applied"] = _apply()
        return bool(_state["applied"])


def _apply() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.restype, mallopt.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.c_int]
    settings = ((_M_TRIM_THRESHOLD, TRIM_MIB), (_M_TOP_PAD, TOP_PAD_MIB),
                (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_MIB))
    return all(mallopt(param, mib << 20) == 1 for param, mib in settings)
