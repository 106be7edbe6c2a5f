"""FINN's folding and bit-packing conventions, written once (numpy only).

Folding. A hardware layer streams a tensor of normal shape ``(..., C)`` as words of ``pe``
(a.k.a. SIMD) elements: folded shape ``(..., C // pe, pe)``. The folded shape is a reshape,
never a transpose: element ``c`` travels in word ``c // pe`` at position ``c % pe``.

Element encoding (``encode``). Each element becomes an unsigned pattern of the type's width:
two's complement for signed integers (TERNARY as INT2), BIPOLAR as one bit with 0 = -1 and
1 = +1, FIXED<w,i> as the two's complement of ``value / 2^-(w-i)``, FLOAT32/FLOAT16 as their
IEEE bit patterns.

Words (``pack_words``). The innermost dimension of ``n`` elements of ``b`` bits becomes one
``n*b``-bit word. With ``reverse_inner=True`` (FINN's HLS/RTL streams: ``npy_to_rtlsim_input``
and the C++ simulation testbenches) element 0 sits in bits ``[0, b)``, element ``i`` in
``[i*b, (i+1)*b)``: LSB first. With ``reverse_inner=False`` (FINN's default in
``pack_innermost_dim_as_hex_string``) element 0 sits in the most significant bits.

Byte arrays (``pack_bytes``), as ``finnpy_to_packed_bytearray``: the word is padded with zero
bits at its most significant end up to a whole number of bytes and written most significant
byte first; ``reverse_endian=True`` reverses the byte order (least significant byte first).
FINN's PYNQ driver packs its DMA buffers with ``reverse_inner=True, reverse_endian=True``
(see :data:`DRIVER_PACKING`): element 0 in the lowest bits of a little-endian word.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.datatypes import DataTypeError, DType, as_int64, dtype, require_allowed

# How FINN's PYNQ driver packs inputs and unpacks outputs (driver_base.py: pack_input).
DRIVER_PACKING = {"reverse_inner": True, "reverse_endian": True}


def _dt(dt: DType | str) -> DType:
    return dtype(dt) if isinstance(dt, str) else dt


def folded_shape(shape: Sequence[int], pe: int) -> tuple[int, ...]:
    """``(..., C)`` -> ``(..., C // pe, pe)``; refuses a ``pe`` that does not divide C."""
    shape = tuple(int(s) for s in shape)
    if pe <= 0 or shape[-1] % pe:
        raise ValueError(f"PE/SIMD {pe} does not divide the innermost dimension {shape[-1]}")
    return shape[:-1] + (shape[-1] // pe, pe)


def fold(x: np.ndarray, pe: int) -> np.ndarray:
    """Reshape to the folded shape (see :func:`folded_shape`)."""
    return x.reshape(folded_shape(x.shape, pe))


def unfold(x: np.ndarray) -> np.ndarray:
    """Merge the two innermost dimensions back into one."""
    return x.reshape(x.shape[:-2] + (x.shape[-2] * x.shape[-1],))


def encode(x: np.ndarray, dt: DType | str) -> np.ndarray:
    """Elements -> their unsigned bit patterns (uint64). Refuses values ``dt`` cannot hold."""
    dt = _dt(dt)
    x = np.asarray(x)
    if dt.kind == "float":
        width = dt.bits // 8
        return x.astype(f"<f{width}").view(f"<u{width}").astype(np.uint64)
    if dt.bits > 64:
        raise DataTypeError(f"{dt.name}: sim packs at most 64 bits per element")
    require_allowed(x, dt)
    if dt.kind == "bipolar":
        v = (as_int64(x) + 1) >> 1
    elif dt.kind == "fixed":
        v = np.rint(x / dt.scale).astype(np.int64)
    else:
        v = as_int64(x)
    return v.view(np.uint64) & np.uint64((1 << dt.bits) - 1)


def decode(u: np.ndarray, dt: DType | str) -> np.ndarray:
    """Unsigned bit patterns -> element values, in ``dt``'s container dtype."""
    dt = _dt(dt)
    u = np.asarray(u).astype(np.uint64)
    if dt.kind == "float":
        width = dt.bits // 8
        return u.astype(f"<u{width}").view(f"<f{width}")
    if dt.kind == "bipolar":
        return (2 * u.astype(np.int64) - 1).astype(dt.container)
    if dt.signed and dt.bits < 64:
        sign = np.uint64(1 << (dt.bits - 1))
        v = (u ^ sign).astype(np.int64) - np.int64(1 << (dt.bits - 1))
    else:
        v = u.view(np.int64) if dt.signed else u
    if dt.kind == "fixed":
        return v * dt.scale
    return v.astype(dt.container)


def _bits_lsb_first(u: np.ndarray, bits: int) -> np.ndarray:
    """(..., n) patterns -> (..., n*bits) bits, element 0's bit 0 first."""
    shifts = np.arange(bits, dtype=np.uint64)
    b = ((u[..., None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return b.reshape(u.shape[:-1] + (u.shape[-1] * bits,))


def _patterns_from_bits(b: np.ndarray, n: int, bits: int) -> np.ndarray:
    """Inverse of :func:`_bits_lsb_first` (drops bits beyond ``n*bits``)."""
    b = b[..., : n * bits].reshape(b.shape[:-1] + (n, bits)).astype(np.uint64)
    return (b << np.arange(bits, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)


def pack_bytes(
    x: np.ndarray,
    dt: DType | str,
    reverse_inner: bool = False,
    reverse_endian: bool = False,
) -> np.ndarray:
    """Pack the innermost dimension into bytes; same result as FINN's
    ``finnpy_to_packed_bytearray(x, dt, reverse_inner, reverse_endian)``. Returns uint8 of shape
    ``x.shape[:-1] + (ceil(n*bits/8),)``."""
    dt = _dt(dt)
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("pack_bytes needs at least one dimension")
    u = encode(x, dt)
    if not reverse_inner:
        u = u[..., ::-1]
    bits = _bits_lsb_first(u, dt.bits)
    nbytes = -(-bits.shape[-1] // 8)
    pad = nbytes * 8 - bits.shape[-1]
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), np.uint8)], axis=-1)
    packed = np.packbits(bits, axis=-1, bitorder="little")  # least significant byte first
    return packed if reverse_endian else np.ascontiguousarray(packed[..., ::-1])


def unpack_bytes(
    packed: np.ndarray,
    dt: DType | str,
    shape: Sequence[int],
    reverse_inner: bool = False,
    reverse_endian: bool = False,
) -> np.ndarray:
    """Inverse of :func:`pack_bytes`; same result as FINN's ``packed_bytearray_to_finnpy``.
    ``shape`` is the unpacked shape (its last entry removes the padding)."""
    dt = _dt(dt)
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim == 0:
        raise ValueError("unpack_bytes needs a uint8 array with at least one dimension")
    n = int(shape[-1])
    if n * dt.bits > packed.shape[-1] * 8:
        raise ValueError(f"{packed.shape[-1]} bytes cannot hold {n} elements of {dt.name}")
    little = packed if reverse_endian else packed[..., ::-1]
    bits = np.unpackbits(little, axis=-1, bitorder="little")
    u = _patterns_from_bits(bits, n, dt.bits)
    if not reverse_inner:
        u = u[..., ::-1]
    return decode(u, dt).reshape(tuple(shape))


def pack_words(x: np.ndarray, dt: DType | str, reverse_inner: bool = True) -> np.ndarray:
    """Innermost dimension -> one unsigned integer word per row (object array of Python ints,
    any width). ``reverse_inner=True`` is the LSB-first order of FINN's streams."""
    dt = _dt(dt)
    x = np.asarray(x)
    le_bytes = pack_bytes(x, dt, reverse_inner=reverse_inner, reverse_endian=True)
    flat = le_bytes.reshape(-1, le_bytes.shape[-1])
    words = [int.from_bytes(row.tobytes(), "little") for row in flat]
    out = np.empty(len(words), dtype=object)
    out[:] = words
    return out.reshape(x.shape[:-1])


def unpack_words(
    words: np.ndarray, dt: DType | str, n: int, reverse_inner: bool = True
) -> np.ndarray:
    """Inverse of :func:`pack_words`: words -> ``words.shape + (n,)`` element values."""
    dt = _dt(dt)
    words = np.asarray(words, dtype=object)
    nbytes = -(-n * dt.bits // 8)
    flat = [int(w).to_bytes(nbytes, "little") for w in words.reshape(-1)]
    le_bytes = np.frombuffer(b"".join(flat), dtype=np.uint8).reshape(len(flat), nbytes)
    values = unpack_bytes(le_bytes, dt, (len(flat), n), reverse_inner, reverse_endian=True)
    return values.reshape(words.shape + (n,))


def hex_words(
    x: np.ndarray,
    dt: DType | str,
    pad_to_nbits: int,
    reverse_inner: bool = False,
    prefix: str = "0x",
) -> np.ndarray:
    """Innermost dimension -> hex strings of ``ceil(pad_to_nbits/4)`` digits (at least one);
    same result as FINN's ``pack_innermost_dim_as_hex_string`` (whose default order is
    ``reverse_inner=False``)."""
    dt = _dt(dt)
    x = np.asarray(x)
    width = max(int(pad_to_nbits), 4)
    if x.shape[-1] * dt.bits > width:
        raise ValueError(f"{x.shape[-1]} x {dt.name} needs more than pad_to_nbits={width} bits")
    digits = -(-width // 4)
    words = pack_words(x, dt, reverse_inner=reverse_inner)
    strings = [prefix + format(int(w), f"0{digits}x") for w in words.reshape(-1)]
    return np.array(strings).reshape(words.shape)
