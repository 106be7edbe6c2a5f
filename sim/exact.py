"""Integer-exact matrix products, fast.

``matmul_int`` multiplies integer matrices through float32 BLAS when
``max|a| * max|w| * K < 2^24`` (every product and every partial sum, in any summation order,
is then an integer float32 holds exactly), through float64 when the bound is below 2^53, and
in int64 otherwise (numpy's int64 matmul wraps modulo 2^64, so the result is still exact
modulo 2^64, which is all a hardware accumulator of at most 64 bits keeps).

``xnor_popcount`` counts matching bits between {0,1} rows and columns, ``K - popcount(a XOR
w)`` over bits packed into 64-bit words, with ``np.bitwise_count`` (numpy >= 2) or a lookup
table (numpy 1.26); or as ``(K + a±1 . w±1) / 2`` through a float32 product, exact while
K < 2^24. See :func:`xnor_method` for which is used.

``plane_dot`` multiplies a few-bit integer matrix by {0,1} or {-1,+1} weights through the
same packed words: one bit plane of the (two's complement) input at a time, ``popcount(a AND
w)``. ``packed_plane_dot`` / ``packed_matches`` take rows already packed, as the fused
convolution (``sim.kernels.fused``) builds them.
"""

from __future__ import annotations

import numpy as np

from sim.layout import columns_into

FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53
# Rows per block: bounds the temporary arrays of large feature maps.
_ROW_BLOCK = 1 << 15
# Elements of ``a`` per block of a float product: the block and its copy stay in cache.
_MATMUL_BLOCK_ELEMS = 1 << 21
# ... and at most this many rows: OpenBLAS keeps such calls on one thread, which on a busy
# machine beats waking a second one for every block.
_MATMUL_BLOCK_ROWS = 1 << 15
_POPCOUNT_ELEMS = 1 << 22
# Popcount by word loop up to this many 64-bit words per row (its uint16 sums hold K < 2^16),
# else broadcast. (The loop took half the broadcast's time at 72 words, 2048 x 512 outputs.)
_WORD_LOOP_MAX = 1023
# Elements per block of the word loop (at least _BLOCK_ROWS rows): long rows beat
# temporaries that fit the L2 (64 channels x 2048 rows took 1.5x the time a word of
# 64 x 16384 took).
_BLOCK_ELEMS = 1 << 20
_BLOCK_ROWS = 2048

_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")
_POPCOUNT_LUT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_POPCOUNT_LUT16: np.ndarray | None = None

MATMUL_METHODS = ("auto", "float32", "float64", "int64")
XNOR_METHODS = ("auto", "float32", "popcount", "popcount_lut")


def max_abs(x: np.ndarray) -> int:
    """Largest absolute value of an integer-valued array (0 when empty)."""
    if x.size == 0:
        return 0
    return max(abs(int(x.min())), abs(int(x.max())))


def matmul_method(max_abs_a: int, max_abs_w: int, k: int) -> str:
    """The cheapest exact method for products bounded by ``max_abs_a * max_abs_w * k``."""
    bound = int(max_abs_a) * int(max_abs_w) * int(k)
    if bound < FLOAT32_EXACT:
        return "float32"
    if bound < FLOAT64_EXACT:
        return "float64"
    return "int64"


def matmul_int(a: np.ndarray, w: np.ndarray, method: str = "auto") -> np.ndarray:
    """Exact ``a @ w`` of integer-valued ``a`` (M, K) and ``w`` (K, N), (M, N): int32 from the
    float32 path, else int64.

    ``method`` forces a path (tests, benchmarks); a forced float path outside its bound
    may round.
    """
    if method not in MATMUL_METHODS:
        raise ValueError(f"unknown matmul method {method!r}; choose from {MATMUL_METHODS}")
    if method == "auto":
        method = matmul_method(max_abs(a), max_abs(w), a.shape[-1])
    if method == "int64":
        return np.matmul(a.astype(np.int64, copy=False), w.astype(np.int64, copy=False))
    ftype = np.float32 if method == "float32" else np.float64
    wf = w.astype(ftype)
    # below 2^24 every value is an int32 too
    out = np.empty((a.shape[0], w.shape[1]), dtype=np.int32 if ftype == np.float32 else np.int64)
    rows = max(1, min(_MATMUL_BLOCK_ROWS, _MATMUL_BLOCK_ELEMS // max(1, a.shape[1])))
    for start in range(0, a.shape[0], rows):
        block = a[start : start + rows].astype(ftype)
        out[start : start + rows] = np.matmul(block, wf)
    return out


def matmul_bounded(a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
    """Exact batched ``a @ b`` (``np.matmul`` broadcasting) of integer arrays whose every
    partial sum is bounded by ``bound`` in absolute value: through float32 or float64 BLAS
    where that bound is exact there, int64 otherwise. Returns int64."""
    method = matmul_method(bound, 1, 1)
    if method == "int64":
        return np.matmul(a.astype(np.int64, copy=False), b.astype(np.int64, copy=False))
    ftype = np.float32 if method == "float32" else np.float64
    return np.matmul(a.astype(ftype), b.astype(ftype)).astype(np.int64)


def xnor_method(k: int) -> str:
    """The fastest exact XNOR path here: packed popcount where numpy has ``bitwise_count``
    (numpy >= 2); else the ±1 float32 product while K < 2^24 keeps it exact (it beats a
    lookup-table popcount), and the lookup-table popcount beyond."""
    if _HAS_BITWISE_COUNT:
        return "popcount"
    return "float32" if k < FLOAT32_EXACT else "popcount_lut"


def xnor_popcount(a_bits: np.ndarray, w_bits: np.ndarray, method: str = "auto") -> np.ndarray:
    """Number of positions where row ``a_bits[m]`` and column ``w_bits[:, n]`` agree.

    ``a_bits`` (M, K) and ``w_bits`` (K, N) hold 0/1 (XNOR encoding: 0 = -1, 1 = +1).
    Returns int64 (M, N) in [0, K]. ``method`` forces a path (tests, benchmarks); a forced
    "float32" with K >= 2^24 may round.
    """
    if method not in XNOR_METHODS:
        raise ValueError(f"unknown xnor method {method!r}; choose from {XNOR_METHODS}")
    k = a_bits.shape[-1]
    if method == "auto":
        method = xnor_method(k)
    if method == "float32":
        wf = 2 * w_bits.astype(np.float32) - 1
        out = np.empty((a_bits.shape[0], w_bits.shape[1]), dtype=np.int64)
        for start in range(0, a_bits.shape[0], _ROW_BLOCK):
            af = 2 * a_bits[start : start + _ROW_BLOCK].astype(np.float32) - 1
            out[start : start + _ROW_BLOCK] = np.matmul(af, wf)
        return (out + k) >> 1
    aw = pack_bit_rows(a_bits)
    ww = pack_bit_rows(np.ascontiguousarray(w_bits.T))
    return packed_matches(aw, ww, k, use_lut=method == "popcount_lut")


def packed_matches(aw: np.ndarray, ww: np.ndarray, k: int, use_lut: bool = False,
                   channel_major: bool = False, words_major: bool = False) -> np.ndarray:
    """Agreeing bits of packed rows ``aw`` (M, words), or with ``words_major`` (words, M),
    and ``ww`` (N, words) over ``k`` real bits, padding bits 0 in both: int64 or int32 (M, N),
    or with ``channel_major`` (N, M)."""
    if words_major and aw.shape[0] > _WORD_LOOP_MAX:
        aw, words_major = np.ascontiguousarray(aw.T), False
    counts = _word_counts(aw, ww, np.bitwise_xor, use_lut, channel_major, words_major)
    if k < 1 << 31 and counts.dtype == np.int32:
        return np.subtract(k, counts, out=counts)
    return k - counts.astype(np.int64)


def plane_dot(
    a: np.ndarray, bits: int, signed: bool, w_bits: np.ndarray, bipolar_weights: bool
) -> np.ndarray:
    """Exact ``a @ w`` (int64, (M, N)) for integers ``a`` (M, K) of ``bits`` bits (two's
    complement when ``signed``) and weights given as bits ``w_bits`` (K, N): the weight is the
    bit ({0, 1}) or, with ``bipolar_weights``, ``2 * bit - 1`` ({-1, +1})."""
    ww = pack_bit_rows(np.ascontiguousarray(w_bits.T))
    a = a.astype(np.int64) if a.dtype.kind == "f" else a
    planes = [pack_bit_rows(((a >> j) & 1).astype(np.uint8)) for j in range(bits)]
    return packed_plane_dot(planes, signed, ww, bipolar_weights)


def packed_plane_dot(
    planes: list[np.ndarray], signed: bool, ww: np.ndarray, bipolar_weights: bool,
    channel_major: bool = False,
) -> np.ndarray:
    """:func:`plane_dot` on packed bit planes (least significant first), (M, words) each,
    against packed weight bits ``ww`` (N, words); padding bits 0. Returns int64 (M, N), or
    with ``channel_major`` (N, M)."""
    m, n = planes[0].shape[0], ww.shape[0]
    bits = 64 * ww.shape[1]
    # |result| <= 2^planes * 2 * bits: int32 arithmetic while that fits
    small = (1 << len(planes)) * 2 * bits < 1 << 31
    total = np.zeros((n, m) if channel_major else (m, n), dtype=np.int32 if small else np.int64)
    set_bits = np.zeros(m, dtype=total.dtype)
    for j, aw in enumerate(planes):
        coef = -(1 << j) if signed and j == len(planes) - 1 else 1 << j
        counts = _word_counts(aw, ww, np.bitwise_and, False, channel_major)
        total += counts if coef == 1 else coef * counts.astype(total.dtype)
        if bipolar_weights:
            set_bits += coef * popcount(aw).sum(axis=1, dtype=total.dtype)
    if bipolar_weights:
        # sum of b * (2p - 1) over a row = 2 * popcount(b AND p) - popcount(b)
        total *= 2
        total -= set_bits[None, :] if channel_major else set_bits[:, None]
    return total.astype(np.int64, copy=False)


def packed_sign_dot(
    positive: np.ndarray, zero: np.ndarray, minus_two: np.ndarray, ww: np.ndarray, k: int,
    channel_major: bool = False,
) -> np.ndarray:
    """Exact ``a @ w`` (int64 (M, N), or with ``channel_major`` (N, M)) for a 2-bit signed
    ``a`` (values -2..1) given as packed rows of its ``a > 0``, ``a == 0`` and ``a == -2``
    bits, times {-1, +1} weights packed as bits ``ww`` (1 = +1); ``k`` real bits per row,
    padding 0.

    ``a = s + d`` with ``s = +1`` where ``a > 0`` else ``-1`` (an XNOR product) and ``d`` = +1
    where ``a == 0``, -1 where ``a == -2``, else 0: the correction is computed only for the
    rows that have such entries (the border windows of a zero-padded binary map)."""
    total = (2 * packed_matches(positive, ww, k) - k).astype(np.int64, copy=False)
    rows = np.flatnonzero((zero | minus_two).any(axis=1))
    for plane, sign in ((zero, 1), (minus_two, -1)):
        sub = plane[rows]
        # sum of w over the set bits = 2 * popcount(bits AND p) - popcount(bits)
        ones = _word_counts(sub, ww, np.bitwise_and, False).astype(np.int64)
        total[rows] += sign * (2 * ones - popcount(sub).sum(axis=1, dtype=np.int64)[:, None])
    return np.ascontiguousarray(total.T) if channel_major else total


def pack_bit_rows(bits: np.ndarray) -> np.ndarray:
    """(M, K) of 0/1 -> (M, ceil(K/64)) uint64 words, zero-padded (padding bits agree)."""
    packed = np.packbits(bits.astype(np.uint8, copy=False), axis=-1)
    pad = (-packed.shape[-1]) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros((packed.shape[0], pad), np.uint8)], axis=-1)
    return np.ascontiguousarray(packed).view(np.uint64)


def popcount(words: np.ndarray, use_lut: bool = False) -> np.ndarray:
    """Set bits per uint64 element: ``np.bitwise_count`` where numpy has it (and ``use_lut``
    is not set), else a lookup table over 16-bit pieces."""
    if _HAS_BITWISE_COUNT and not use_lut:
        return np.bitwise_count(words)
    pieces = _lut16()[np.ascontiguousarray(words).view(np.uint16)]
    return pieces.reshape(words.shape + (4,)).sum(axis=-1, dtype=np.uint8)


def _lut16() -> np.ndarray:
    global _POPCOUNT_LUT16
    if _POPCOUNT_LUT16 is None:
        low = _POPCOUNT_LUT
        _POPCOUNT_LUT16 = (low[np.arange(1 << 16) & 0xFF] + low[np.arange(1 << 16) >> 8]).astype(np.uint8)
    return _POPCOUNT_LUT16


def _word_counts(aw: np.ndarray, ww: np.ndarray, op, use_lut: bool,
                 channel_major: bool = False, words_major: bool = False) -> np.ndarray:
    """``popcount(op(aw[m], ww[n]))`` summed over the words, (M, N) int32 or int64, or with
    ``channel_major`` (N, M); ``aw`` is (words, M) with ``words_major`` (at most
    _WORD_LOOP_MAX words)."""
    if words_major or aw.shape[1] <= _WORD_LOOP_MAX:
        return _counts_word_loop(aw, ww, op, use_lut, channel_major, words_major)
    counts = _counts_broadcast(aw, ww, op, use_lut)
    return np.ascontiguousarray(counts.T) if channel_major else counts


def _counts_word_loop(aw: np.ndarray, ww: np.ndarray, op, use_lut: bool,
                      channel_major: bool = False, words_major: bool = False) -> np.ndarray:
    """Few words per row (K <= 64 * _WORD_LOOP_MAX): per block of rows, one pass per word and
    column over the block's rows (a long inner loop: each column's word is a scalar), counts
    summed in uint16 (at most 64 * _WORD_LOOP_MAX bits) and returned as int32, columns-major
    (N, M) with ``channel_major``, else written column by column into (M, N)."""
    awt = aw if words_major else np.ascontiguousarray(aw.T)
    words, m = awt.shape
    n = ww.shape[0]
    out = np.empty((n, m) if channel_major else (m, n), dtype=np.int32)
    rows = min(m, max(_BLOCK_ROWS, _BLOCK_ELEMS // n))
    tmp = np.empty((n, rows), dtype=np.uint64)
    counts = np.empty((n, rows), dtype=np.uint8)
    acc = np.empty((n, rows), dtype=np.uint16)
    columns = np.ascontiguousarray(ww.T)[:, :, None]  # (words, n, 1)
    native = _HAS_BITWISE_COUNT and not use_lut
    for start in range(0, m, rows):
        r = min(rows, m - start)
        t, c, a = (tmp, counts, acc) if r == rows else (tmp[:, :r], counts[:, :r], acc[:, :r])
        for j in range(words):
            op(columns[j], awt[j, None, start : start + r], out=t)
            if native:
                np.bitwise_count(t, out=c)
            else:
                c[...] = popcount(t, use_lut)
            if j:
                a += c
            else:
                a[...] = c
        if channel_major:
            out[:, start : start + r] = a
        else:
            columns_into(out[start : start + r], a)
    return out


def _counts_broadcast(aw: np.ndarray, ww: np.ndarray, op, use_lut: bool) -> np.ndarray:
    """Many words per row: combine whole rows with all columns, sum over the words."""
    m, n, words = aw.shape[0], ww.shape[0], aw.shape[1]
    out = np.empty((m, n), dtype=np.int64)
    rows = max(1, _POPCOUNT_ELEMS // max(1, n * words))
    for start in range(0, m, rows):
        x = op(aw[start : start + rows, None, :], ww[None, :, :])
        out[start : start + rows] = popcount(x, use_lut).sum(axis=-1, dtype=np.int64)
    return out
