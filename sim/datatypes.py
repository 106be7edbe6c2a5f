"""FINN/QONNX data types by name, in numpy only: ranges, containers and two's-complement wrap.

Names follow qonnx's ``DataType``: ``BINARY`` (= UINT1), ``BIPOLAR`` ({-1, +1}, stored as one
bit, 0 = -1), ``TERNARY`` ({-1, 0, +1}, stored as INT2), ``UINT<n>``, ``INT<n>``,
``FIXED<w,i>`` (w bits of which i integer bits, signed), ``FLOAT32``, ``FLOAT16``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


class DataTypeError(ValueError):
    """A data type name sim does not know, or a value a data type cannot hold."""


@dataclass(frozen=True)
class DType:
    """One FINN data type. ``kind`` is "int", "bipolar", "ternary", "fixed" or "float"."""

    name: str
    kind: str
    bits: int
    signed: bool
    frac_bits: int = 0

    @property
    def is_integer(self) -> bool:
        """Integer-valued (INT/UINT/BINARY/BIPOLAR/TERNARY), as qonnx's ``is_integer``."""
        return self.kind in ("int", "bipolar", "ternary")

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def scale(self) -> float:
        """Value of one least significant bit (1 except for FIXED)."""
        return 2.0**-self.frac_bits

    @property
    def min(self) -> int | float:
        """Smallest representable value."""
        if self.kind in ("bipolar", "ternary"):
            return -1
        if self.kind == "float":
            return -float(np.finfo(np.float32 if self.bits == 32 else np.float16).max)
        lo = -(1 << (self.bits - 1)) if self.signed else 0
        return lo * self.scale if self.kind == "fixed" else lo

    @property
    def max(self) -> int | float:
        """Largest representable value."""
        if self.kind in ("bipolar", "ternary"):
            return 1
        if self.kind == "float":
            return float(np.finfo(np.float32 if self.bits == 32 else np.float16).max)
        hi = (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1
        return hi * self.scale if self.kind == "fixed" else hi

    @property
    def container(self) -> np.dtype:
        """Smallest numpy dtype that holds every value exactly."""
        if self.kind == "float":
            return np.dtype(np.float32 if self.bits == 32 else np.float16)
        if self.kind == "fixed":
            return np.dtype(np.float64)
        if self.kind in ("bipolar", "ternary"):
            return np.dtype(np.int8)
        for width in (8, 16, 32, 64):
            if self.bits <= width:
                return np.dtype(f"int{width}" if self.signed else f"uint{width}")
        raise DataTypeError(f"data type {self.name} is wider than 64 bits")

    def allowed(self, values: np.ndarray) -> np.ndarray:
        """Elementwise: is each value representable (same rule as qonnx's ``allowed``)?"""
        v = np.asarray(values)
        if self.kind == "float":
            return np.ones(v.shape, dtype=bool)
        if self.kind == "bipolar":
            return (v == -1) | (v == 1)
        if self.kind == "fixed":
            v = v / self.scale
            lo, hi = self.min / self.scale, self.max / self.scale
        else:
            lo, hi = self.min, self.max
        if v.dtype.kind in "iu":
            return (v >= lo) & (v <= hi)
        return (np.round(v) == v) & (v >= lo) & (v <= hi)


_INT_RE = re.compile(r"^(U?)INT(\d+)$")
_FIXED_RE = re.compile(r"^FIXED<\s*(\d+)\s*,\s*(\d+)\s*>$")


@lru_cache(maxsize=None)
def dtype(name: str) -> DType:
    """Parse a FINN DataType name; raises :class:`DataTypeError` naming it when unknown."""
    if name == "BINARY":
        return DType("BINARY", "int", 1, False)
    if name == "BIPOLAR":
        return DType("BIPOLAR", "bipolar", 1, True)
    if name == "TERNARY":
        return DType("TERNARY", "ternary", 2, True)
    if name in ("FLOAT32", "FLOAT16"):
        return DType(name, "float", int(name[5:]), True)
    match = _INT_RE.match(name)
    if match:
        bits = int(match.group(2))
        if not 1 <= bits <= 64:
            raise DataTypeError(f"data type {name}: sim supports 1 to 64 bits")
        signed = match.group(1) == ""
        return DType("BINARY" if (bits == 1 and not signed) else name, "int", bits, signed)
    match = _FIXED_RE.match(name)
    if match:
        bits, int_bits = int(match.group(1)), int(match.group(2))
        if not 0 < int_bits < bits <= 64:
            raise DataTypeError(f"data type {name}: needs 0 < integer bits < width <= 64")
        return DType(f"FIXED<{bits},{int_bits}>", "fixed", bits, True, bits - int_bits)
    raise DataTypeError(f"unknown data type {name!r}")


def require_allowed(values: np.ndarray, dt: DType | str) -> None:
    """Raise :class:`DataTypeError` naming a value ``dt`` cannot represent, if any."""
    dt = dtype(dt) if isinstance(dt, str) else dt
    v = np.asarray(values)
    bad = ~dt.allowed(v)
    if bad.any():
        raise DataTypeError(
            f"value {v[bad].flat[0].item()!r} is not representable as {dt.name} "
            f"({int(bad.sum())} such values)"
        )


def wrap(values: np.ndarray, dt: DType | str) -> np.ndarray:
    """Reduce integer values to the bit width of ``dt`` as hardware does (two's complement).

    Signed types wrap into [-2^(n-1), 2^(n-1)); unsigned types keep the low n bits; BIPOLAR
    keeps the bit (v+1)/2 mod 2 of its encoding; FIXED wraps in units of its LSB. Floats pass
    through as float32/float16. Returns an array of ``dt``'s container type.
    """
    dt = dtype(dt) if isinstance(dt, str) else dt
    v = np.asarray(values)
    if dt.kind == "float":
        return v.astype(dt.container, copy=False)
    if dt.kind == "fixed":
        q = np.asarray(np.rint(v / dt.scale), dtype=np.int64)
        if not np.array_equal(q * dt.scale, v):
            raise DataTypeError(f"values are not multiples of {dt.name}'s LSB {dt.scale}")
        return (_wrap_int(q, dt.bits, True) * dt.scale).astype(dt.container)
    if v.dtype.kind in "iu" and v.size and dt.kind != "bipolar":
        if dt.min <= int(v.min()) and int(v.max()) <= dt.max:  # nothing to wrap
            return v.astype(dt.container, copy=False)
    if dt.kind == "bipolar" and v.dtype.kind in "iu" and v.size:
        if int(v.min()) >= -1 and int(v.max()) <= 1 and np.count_nonzero(v) == v.size:
            return v.astype(np.int8, copy=False)  # already +-1: nothing to wrap
    v = as_int64(v)
    if dt.kind == "bipolar":
        bit = ((v + 1) >> 1) & 1
        return (2 * bit - 1).astype(np.int8)
    return _wrap_int(v, dt.bits, dt.signed).astype(dt.container, copy=False)


def _wrap_int(v: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    if bits >= 64:
        return v
    mask = np.int64((1 << bits) - 1)
    low = v & mask
    if not signed:
        return low
    sign = np.int64(1 << (bits - 1))
    return (low ^ sign) - sign


def as_int64(values: np.ndarray) -> np.ndarray:
    """Integer-valued array (any numeric container) as int64; refuses non-integer values."""
    v = np.asarray(values)
    if v.dtype.kind in "iub":
        return v.astype(np.int64, copy=False)
    out = v.astype(np.int64)
    if not np.array_equal(out, v):
        raise DataTypeError("expected integer values, found non-integer ones")
    return out
