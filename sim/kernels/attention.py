"""Binary axial attention: the definition of our AxialAttention layer (int64, numpy only).

Inputs, NHWC: ``q``, ``k`` (d channels, +-1), ``v`` (C channels, integers in
[value_min, value_max]), ``x`` (C channels, +-1: the block input, for the residual).

1. Affinity of pixels i and j: ``a = q_i . k_j`` in [-d, d], from the XNOR popcount
   ``p = (a + d) / 2`` in [0, d].
2. Weight ``E[p]``, a lookup table (:func:`affinity_lut`) of integers >= 1 in place of
   ``exp``: every denominator below is a sum of at least one such weight, never zero.
3. Row pass, over the W pixels j of pixel i's row:
   ``n1 = sum_j E v_j``, ``den1 = sum_j E``, then once per pixel the reciprocal
   ``r = floor(2^S / den1)`` and per channel ``R = floor(n1 * r / 2^(S - F))``: the row
   average in fixed point with F fractional bits (:attr:`AxialSpec.shift` picks S so that
   ``|R - 2^F n1 / den1| < 1``; R stays in [2^F value_min, 2^F value_max]).
4. Column pass, over the H pixels g of pixel i's column:
   ``n2 = sum_g E R_g``, ``den2 = sum_g E``, ``Y = floor(n2 / den2)`` (units 2^-F).
5. Residual: ``I = P_c * x + Y`` with an integer gain ``P_c >= 0`` per channel, times an
   output sign ``s_c = +-1`` per channel (the sign of the batch norm that follows, which
   thresholds cannot absorb; +1 unless the lowering moved one in).

Inputs listed in ``binaryInputs`` arrive XNOR-encoded (BINARY: 1 for +1, 0 for -1), the bits a
BIPOLAR stream carries anyway.

Output: ``s I``, or with per-channel integer thresholds ``T_c`` the re-binarization
``s I >= T_c`` (1/0, or +1/-1 for a BIPOLAR output). Hardware decides ``I >= T`` as
``n2 >= (T - P x) * den2`` without dividing (and ``-I >= T`` as the negation of
``I >= 1 - T``); both are the same bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.bundle import Node
from sim.datatypes import as_int64, dtype
from sim.exact import matmul_bounded
from sim.kernels import register

MAX_FRAC_BITS = 16
MAX_WEIGHT_BITS = 16
INT64_HEADROOM = 1 << 62


def affinity_lut(proj_channels: int, weight_bits: int, temperature: float | None = None) -> tuple[int, ...]:
    """``E[p]`` for popcounts ``p = 0..d``: ``max(1, rint((2^B - 1) * exp(t * (a - d))))`` with
    ``a = 2p - d``, ``t`` the temperature (default ``1/sqrt(d)``, as scaled dot products)."""
    if proj_channels < 1:
        raise ValueError(f"projection channels must be >= 1, not {proj_channels}")
    if not 1 <= weight_bits <= MAX_WEIGHT_BITS:
        raise ValueError(f"LUT weight bits must be in 1..{MAX_WEIGHT_BITS}, not {weight_bits}")
    t = 1.0 / math.sqrt(proj_channels) if temperature is None else float(temperature)
    if not t >= 0:
        raise ValueError(f"temperature must be >= 0, not {temperature}")
    a = 2 * np.arange(proj_channels + 1, dtype=np.float64) - proj_channels
    top = float((1 << weight_bits) - 1)
    return tuple(int(e) for e in np.maximum(1.0, np.rint(top * np.exp(t * (a - proj_channels)))))


def value_bounds(value_dtype: str) -> tuple[int, int]:
    """The integer range of a value stream's FINN data type (BIPOLAR, INTn, UINTn)."""
    dt = dtype(value_dtype)
    if not dt.is_integer:
        raise ValueError(f"values must be integers, not {value_dtype}")
    return int(dt.min), int(dt.max)


def bits_signed(lo: int, hi: int) -> int:
    """Width of the narrowest two's-complement integer holding [lo, hi]."""
    return max(int(-lo - 1).bit_length() if lo < 0 else 0, int(hi).bit_length()) + 1


def bits_unsigned(hi: int) -> int:
    return max(1, int(hi).bit_length())


@dataclass(frozen=True)
class AxialSpec:
    """The arithmetic of one axial attention layer and the ranges of its intermediates."""

    channels: int
    proj_channels: int
    height: int
    width: int
    value_min: int
    value_max: int
    frac_bits: int
    lut: tuple[int, ...]
    gains: tuple[int, ...]
    signs: tuple[int, ...] = ()  # empty: all +1

    def check(self) -> None:
        """One ValueError line for the first parameter that is out of bounds."""
        for what, n in (("channels", self.channels), ("projection channels", self.proj_channels),
                        ("height", self.height), ("width", self.width)):
            if n < 1:
                raise ValueError(f"{what} must be >= 1, not {n}")
        if not self.value_min < 0 < self.value_max:
            raise ValueError(f"value range [{self.value_min}, {self.value_max}] must hold "
                             "negative and positive values (BIPOLAR or a signed INTn)")
        if not 0 <= self.frac_bits <= MAX_FRAC_BITS:
            raise ValueError(f"fractional bits must be in 0..{MAX_FRAC_BITS}, not {self.frac_bits}")
        if len(self.lut) != self.proj_channels + 1:
            raise ValueError(f"the LUT has {len(self.lut)} entries, a popcount over "
                             f"{self.proj_channels} channels needs {self.proj_channels + 1}")
        if min(self.lut) < 1 or self.lut_max >= 1 << MAX_WEIGHT_BITS:
            raise ValueError(f"LUT entries must be in 1..{(1 << MAX_WEIGHT_BITS) - 1}, "
                             f"found [{min(self.lut)}, {self.lut_max}]")
        if len(self.gains) != self.channels:
            raise ValueError(f"{len(self.gains)} residual gains for {self.channels} channels")
        if min(self.gains) < 0 or max(self.gains) >= 1 << 24:
            raise ValueError(f"residual gains must be in 0..{(1 << 24) - 1}, "
                             f"found [{min(self.gains)}, {max(self.gains)}]")
        if self.signs and (len(self.signs) != self.channels or set(self.signs) - {-1, 1}):
            raise ValueError(f"output signs must be {self.channels} values of -1 or +1")
        if self.n1_max * self.recip_max >= INT64_HEADROOM or self.n2_max >= INT64_HEADROOM:
            raise ValueError(f"a {self.height}x{self.width} map with these weights and values "
                             "overflows 62-bit intermediates")

    @property
    def lut_max(self) -> int:
        return max(self.lut)

    @property
    def value_abs(self) -> int:
        return max(-self.value_min, self.value_max)

    @property
    def n1_max(self) -> int:
        """Bound on |n1|, the row-pass numerator."""
        return self.width * self.lut_max * self.value_abs

    @property
    def den1_max(self) -> int:
        return self.width * self.lut_max

    @property
    def shift(self) -> int:
        """S of the row pass: ``2^(S - F) > n1_max`` makes the reciprocal's error below 1."""
        return self.frac_bits + self.n1_max.bit_length()

    @property
    def recip_max(self) -> int:
        """The largest reciprocal, ``floor(2^S / den1)`` at the least ``den1 = W``."""
        return (1 << self.shift) // self.width

    @property
    def row_range(self) -> tuple[int, int]:
        """Range of R, the row-pass result held between the passes (units 2^-F)."""
        return self.value_min << self.frac_bits, self.value_max << self.frac_bits

    @property
    def den2_max(self) -> int:
        return self.height * self.lut_max

    @property
    def n2_max(self) -> int:
        lo, hi = self.row_range
        return self.height * self.lut_max * max(-lo, hi)

    @property
    def output_range(self) -> tuple[int, int]:
        """Range of ``s I = s (P x + Y)`` over all channels."""
        lo, hi = self.row_range
        top = max(self.gains)
        lo, hi = lo - top, hi + top
        return (min(lo, -hi), max(hi, -lo)) if -1 in self.signs else (lo, hi)

    @property
    def sign_vector(self) -> np.ndarray:
        return np.asarray(self.signs or (1,) * self.channels, dtype=np.int64)


def spec_from_node(node: Node) -> AxialSpec:
    vmin, vmax = value_bounds(str(node.attr("valueDataType")))
    spec = AxialSpec(
        channels=int(node.attr("Channels")), proj_channels=int(node.attr("ProjChannels")),
        height=int(node.attr("H")), width=int(node.attr("W")), value_min=vmin, value_max=vmax,
        frac_bits=int(node.attr("FracBits")), lut=tuple(int(e) for e in node.attr("Lut")),
        gains=tuple(int(g) for g in node.attr("ResidualGain")),
        signs=tuple(int(g) for g in node.attr("OutputSign", [])),
    )
    spec.check()
    return spec


def popcount_weights(q: np.ndarray, k: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``E[(q_i . k_j + d) / 2]`` for every pair of pixels ``i``, ``j`` of the same line:
    ``q``, ``k`` (..., L, d) -> (..., L, L)."""
    d = q.shape[-1]
    return lut[(matmul_bounded(q, np.swapaxes(k, -1, -2), d) + d) >> 1]


def row_pass(spec: AxialSpec, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """R (N, H, W, C): each pixel's weighted average of v over its row, F fractional bits."""
    lut = np.asarray(spec.lut, dtype=np.int64)
    w = popcount_weights(q, k, lut)  # (N, H, W, W)
    den = w.sum(axis=-1)
    recip = (np.int64(1) << spec.shift) // den
    num = matmul_bounded(w, v, spec.n1_max)
    return (num * recip[..., None]) >> (spec.shift - spec.frac_bits)


def column_pass(spec: AxialSpec, q: np.ndarray, k: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Y (N, H, W, C): each pixel's weighted average of R over its column, rounded down."""
    lut = np.asarray(spec.lut, dtype=np.int64)
    columns = lambda a: np.swapaxes(a, 1, 2)  # noqa: E731  (N, H, W, .) <-> (N, W, H, .)
    w = popcount_weights(columns(q), columns(k), lut)  # (N, W, H, H)
    den = columns(w.sum(axis=-1)[..., None])
    num = columns(matmul_bounded(w, columns(r), spec.n2_max))
    return np.floor_divide(num, den)


def axial_attention(spec: AxialSpec, q, k, v, x) -> np.ndarray:
    """``s I = s (P x + Y)`` (N, H, W, C), int64."""
    q, k, v, x = (as_int64(a) for a in (q, k, v, x))
    n, h, w = q.shape[:3]
    for name, a, c in (("q", q, spec.proj_channels), ("k", k, spec.proj_channels),
                       ("v", v, spec.channels), ("x", x, spec.channels)):
        if a.shape != (n, spec.height, spec.width, c):
            raise ValueError(f"input {name} has shape {a.shape}, expected "
                             f"(N, {spec.height}, {spec.width}, {c})")
    y = column_pass(spec, q, k, row_pass(spec, q, k, v))
    return spec.sign_vector * (np.asarray(spec.gains, dtype=np.int64) * x + y)


def rebinarize(i: np.ndarray, thresholds, bipolar: bool) -> np.ndarray:
    """``i >= T_c`` per channel, as 0/1 or -1/+1."""
    fired = (i >= np.asarray(thresholds, dtype=np.int64)).astype(np.int64)
    return 2 * fired - 1 if bipolar else fired


@register("AxialAttention")
def axial_attention_kernel(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    spec = spec_from_node(node)
    binary = {int(i) for i in node.attr("binaryInputs", [])}
    args = [2 * as_int64(a) - 1 if i in binary else a for i, a in enumerate(inputs[:4])]
    out = axial_attention(spec, *args)
    thresholds = list(node.attr("Thresholds", []))
    if not thresholds:
        return out
    return rebinarize(out, thresholds, node.attr("outputDataType") == "BIPOLAR")
