"""OpenBLAS on one thread while sim runs.

sim runs the tiles of a convolution on its own threads (``sim.bitconv``); its BLAS products
are small (K of 16 to a few hundred, N of 6 to 64). OpenBLAS splits such a product over its
own threads as well, and when the cores are busy (sim's tiles, or another process) every
call waits for a thread to be scheduled: on two busy cores a (16384 x 27) @ (27 x 16)
float32 product took 7 ms on two BLAS threads and 0.2 ms on one. :func:`one_blas_thread`
sets numpy's OpenBLAS to one thread for the duration of a run and restores the count after.

Found through ctypes in the library numpy loaded (``/proc/self/maps``, Linux); elsewhere,
or with another BLAS, it does nothing. The setting is process-wide: other threads' numpy
products run on one BLAS thread too while a sim run is in progress.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "")
_LOCK = threading.Lock()
_state = {"depth": 0, "saved": None}
_controls: tuple | None | bool = False  # False: not looked up yet


def _find_controls() -> tuple | None:
    """(get, set) of the OpenBLAS numpy uses, or None."""
    import numpy  # noqa: F401  (the library is loaded with numpy's multiarray module)

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line and ".so" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    put.restype, put.argtypes = None, [ctypes.c_int]
                    return get, put
    return None


def blas_controls() -> tuple | None:
    """(get_num_threads, set_num_threads) of numpy's OpenBLAS, or None where not found."""
    global _controls
    if _controls is False:
        _controls = _find_controls()
    return _controls


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """OpenBLAS on one thread inside the block (nested and concurrent blocks share it)."""
    controls = blas_controls()
    if controls is None:
        yield
        return
    get, put = controls
    with _LOCK:
        if _state["depth"] == 0:
            _state["saved"] = get()
            put(1)
        _state["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                put(_state["saved"])
