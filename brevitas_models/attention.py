"""The paper's two-part binary attention, as our design defines it (docs/attention.md).

``BinaryAxialAttention(channels, proj_channels, ...)`` takes a binary tensor ``x`` (values
``+-s``) and returns a binary tensor of the same shape.

Part one, binary affinity: 1x1 binary convs, batch norm and sign give ``Q`` and ``K`` (``d``
channels, +-1); the affinity of two pixels is ``Q_i . K_j``, an XNOR popcount in hardware.
The value projection ``V`` is a 1x1 binary conv, batch norm and a signed ``value_bits``
quantizer with the fixed scale 1 (the project's quantizers of :mod:`brevitas_models.quant`
with the scale held constant) (``value_bits=1``: +-1): its integer grid is what the
attention averages, so a learned scale would only add a multiplication; the batch norm in
front of it sets the range. ``Q``/``K`` have the fixed scale 1 too (only their signs count).

Part two, integer normalization in place of softmax, along rows then columns (axial: after
both passes every pixel has seen the whole image): weights ``E[p]`` from a lookup table over
the popcount (:func:`sim.kernels.attention.affinity_lut`, all >= 1, so no zero denominator),
row averages of ``V`` in fixed point with ``frac_bits`` fractional bits (one reciprocal per
pixel), column averages of those rounded down, the residual ``I = P_c * sign(x) + Y`` with a
learned integer gain ``P_c`` per channel, then ``z = I / 2^F``, batch norm and sign (the
re-binarization, which becomes thresholds in hardware). The arithmetic is the definition in
:mod:`sim.kernels.attention`, computed here again in torch int64.

Training (straight-through estimators): the forward value is always the exact integer ``I``;
the gradient is that of a float surrogate with the same structure, in which each LUT weight
has the derivative of ``(2^B - 1) * exp(t (a - d))`` (the curve the LUT rounds), the averages
are true divisions, ``sign(x)`` passes the gradient unchanged and ``P_c`` is rounded with an
identity gradient. Implemented as ``exact.detach() + (surrogate - surrogate.detach())``, whose
forward value is exactly ``exact``.

``mode`` switches the ablations: ``"axial"`` (the above; maps to hardware), ``"full"`` (the
same binary affinity and integer normalization over all ``H*W`` pixels in one pass:
``Y = floor(2^F num / den)``; torch only), ``"float"`` (full-precision non-local attention:
float 1x1 convs, softmax, ``z = x + gamma * att``; torch only), ``"none"`` (identity).

Export (QONNX): the integer core of ``"axial"`` is one node ``BinaryAxialAttention`` in the
domain ``hw_gen.lowering.attention`` (inputs Q, K, V, x in NCHW; attributes ``frac_bits``,
``lut``, ``gains``, ``value_dtype``), followed by the exported ``Mul(2^-F)``, batch norm and
quantizer; ``hw_gen.lowering.attention`` lowers it.
"""

from __future__ import annotations

import math

import brevitas.nn as qnn
import torch
from brevitas.inject.enum import ScalingImplType
from torch import Tensor, nn

from brevitas_models.errors import ModelError
from brevitas_models.layers import BinaryAct, binary_conv2d
from brevitas_models.quant import BinaryActPerTensor, IntActPerTensor
from sim.kernels.attention import MAX_FRAC_BITS, AxialSpec, affinity_lut

EXPORT_DOMAIN = "hw_gen.lowering.attention"
EXPORT_OP = "BinaryAxialAttention"
MODES = ("axial", "full", "float", "none")
GAIN_EXTRA_BITS = 4  # P_c <= 2^(F + 4): the residual may outweigh the attention 16x per unit


class UnitBinaryAct(BinaryActPerTensor):
    """``sign(x)`` with the fixed scale 1 (the project's binary activation, scale not learned)."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 1.0


def _unit_int_quant(bits: int) -> type:
    """A signed ``bits``-bit activation quantizer with the fixed scale 1 (+-1 for one bit)."""
    if bits == 1:
        return UnitBinaryAct
    top = float(1 << (bits - 1))
    return type(f"Int{bits}UnitScale", (IntActPerTensor,), {
        "bit_width": bits, "scaling_impl_type": ScalingImplType.CONST,
        "min_val": -top, "max_val": top,
    })


def value_dtype_name(value_bits: int) -> str:
    return "BIPOLAR" if value_bits == 1 else f"INT{value_bits}"


class _Projection(nn.Sequential):
    """1x1 binary conv (per-channel weight scales) -> batch norm -> quantizer with the fixed
    scale 1."""

    def __init__(self, cin: int, cout: int, bits: int):
        super().__init__(
            binary_conv2d(cin, cout, 1),
            nn.BatchNorm2d(cout),
            qnn.QuantIdentity(act_quant=_unit_int_quant(bits)),
        )


# ------------------------------------------------------------------------------------------
# The integer arithmetic in torch int64 (the same integers as sim.kernels.attention)


def _signs(t: Tensor) -> Tensor:
    return torch.where(t >= 0, 1, -1).to(torch.int64)


def _lut_weights(lut: Tensor, affinity: Tensor, d: int) -> Tensor:
    return lut[torch.div(affinity + d, 2, rounding_mode="floor")]


def axial_integer(q: Tensor, k: Tensor, v: Tensor, x: Tensor, spec: AxialSpec) -> Tensor:
    """``I`` (int64, NCHW) from Q, K, x (signs taken) and integer-valued V, all NCHW."""
    qb, kb, xb = _signs(q), _signs(k), _signs(x)
    vi = torch.round(v).to(torch.int64)
    lut = torch.tensor(spec.lut, dtype=torch.int64)
    d, f, s = spec.proj_channels, spec.frac_bits, spec.shift
    w1 = _lut_weights(lut, torch.einsum("ndhi,ndhj->nhij", qb, kb), d)
    recip = torch.div(torch.full_like(w1[..., 0], 1 << s), w1.sum(-1), rounding_mode="floor")
    n1 = torch.einsum("nhij,nchj->nchi", w1, vi)
    r = torch.bitwise_right_shift(n1 * recip[:, None], s - f)
    w2 = _lut_weights(lut, torch.einsum("ndhw,ndgw->nwhg", qb, kb), d)
    den2 = w2.sum(-1).permute(0, 2, 1)
    n2 = torch.einsum("nwhg,ncgw->nchw", w2, r)
    y = torch.div(n2, den2[:, None], rounding_mode="floor")
    gains = torch.tensor(spec.gains, dtype=torch.int64)
    return gains[None, :, None, None] * xb + y


def full_integer(q: Tensor, k: Tensor, v: Tensor, x: Tensor, spec: AxialSpec) -> Tensor:
    """The non-axial ablation: ``Y = floor(2^F num / den)`` over all pixels, one pass."""
    n, c, h, w = v.shape
    qb, kb = _signs(q).flatten(2), _signs(k).flatten(2)
    vi = torch.round(v).to(torch.int64).flatten(2)
    lut = torch.tensor(spec.lut, dtype=torch.int64)
    wts = _lut_weights(lut, torch.einsum("ndi,ndj->nij", qb, kb), spec.proj_channels)
    num = torch.einsum("nij,ncj->nci", wts, vi) << spec.frac_bits
    y = torch.div(num, wts.sum(-1)[:, None], rounding_mode="floor").view(n, c, h, w)
    gains = torch.tensor(spec.gains, dtype=torch.int64)
    return gains[None, :, None, None] * _signs(x) + y


# ------------------------------------------------------------------------------------------
# Float surrogates (gradients only)


def _smooth_weights(qk: Tensor, spec: AxialSpec, temperature: float, weight_bits: int) -> Tensor:
    """LUT weights forward (approximately), ``(2^B - 1) exp(t (a - d))`` backward."""
    d = spec.proj_channels
    smooth = ((1 << weight_bits) - 1) * torch.exp(temperature * (qk - d))
    exact = _lut_weights(torch.tensor(spec.lut, dtype=qk.dtype), qk.detach().round().long(), d)
    return smooth + (exact - smooth).detach()


def _axial_surrogate(q, k, v, xs, gains, spec, temperature, weight_bits) -> Tensor:
    w1 = _smooth_weights(torch.einsum("ndhi,ndhj->nhij", q, k), spec, temperature, weight_bits)
    r = (1 << spec.frac_bits) * torch.einsum("nhij,nchj->nchi", w1, v) / w1.sum(-1)[:, None]
    w2 = _smooth_weights(torch.einsum("ndhw,ndgw->nwhg", q, k), spec, temperature, weight_bits)
    y = torch.einsum("nwhg,ncgw->nchw", w2, r) / w2.sum(-1).permute(0, 2, 1)[:, None]
    return gains[None, :, None, None] * xs + y


def _full_surrogate(q, k, v, xs, gains, spec, temperature, weight_bits) -> Tensor:
    n, c, h, w = v.shape
    wts = _smooth_weights(torch.einsum("ndi,ndj->nij", q.flatten(2), k.flatten(2)), spec,
                          temperature, weight_bits)
    y = (1 << spec.frac_bits) * torch.einsum("nij,ncj->nci", wts, v.flatten(2)) / wts.sum(-1)[:, None]
    return gains[None, :, None, None] * xs + y.view(n, c, h, w)


class _ExportCore(torch.autograd.Function):
    """The integer core as one ONNX node (used while exporting)."""

    @staticmethod
    def forward(ctx, q, k, v, x, spec: AxialSpec, value_dtype: str):
        return axial_integer(q, k, v, x, spec).to(v.dtype)

    @staticmethod
    def symbolic(g, q, k, v, x, spec: AxialSpec, value_dtype: str):
        node = g.op(f"{EXPORT_DOMAIN}::{EXPORT_OP}", q, k, v, x, frac_bits_i=spec.frac_bits,
                    lut_i=list(spec.lut), gains_i=list(spec.gains), value_dtype_s=value_dtype)
        return node.setType(v.type())


# ------------------------------------------------------------------------------------------


class BinaryAxialAttention(nn.Module):
    """The two-part binary attention block (module docstring); binary in, binary out.

    ``channels``: C of the input and output; ``proj_channels``: d of Q and K; ``value_bits``:
    width of V (1 = +-1); ``frac_bits``: F of the row-pass fixed point; ``weight_bits``: width
    of the LUT weights (``E <= 2^B - 1``); ``temperature``: ``t`` of the LUT (default
    ``1/sqrt(d)``); ``mode``: ``"axial"``, ``"full"``, ``"float"`` or ``"none"``.
    The output activation is ``self.act`` (a ``BinaryAct``); ``share_act_with`` makes it share
    the scale of another ``BinaryAct`` (e.g. of a tensor it is concatenated with).
    """

    def __init__(
        self,
        channels: int,
        proj_channels: int = 16,
        *,
        value_bits: int = 1,
        frac_bits: int = 8,
        weight_bits: int = 8,
        temperature: float | None = None,
        mode: str = "axial",
        share_act_with: BinaryAct | None = None,
    ):
        super().__init__()
        if mode not in MODES:
            raise ModelError(f"BinaryAxialAttention: mode must be one of {MODES}, not {mode!r}")
        for what, value, lo, hi in (("channels", channels, 1, None),
                                    ("proj_channels", proj_channels, 1, None),
                                    ("value_bits", value_bits, 1, 16),
                                    ("frac_bits", frac_bits, 0, MAX_FRAC_BITS)):
            if not isinstance(value, int) or value < lo or (hi is not None and value > hi):
                bound = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
                raise ModelError(f"BinaryAxialAttention: {what} must be an integer {bound}, "
                                 f"not {value!r}")
        self.mode = mode
        self.channels, self.proj_channels = channels, proj_channels
        self.value_bits, self.frac_bits, self.weight_bits = value_bits, frac_bits, weight_bits
        self.temperature = 1.0 / math.sqrt(proj_channels) if temperature is None else temperature
        try:
            self.lut = affinity_lut(proj_channels, weight_bits, self.temperature)
        except ValueError as exc:
            raise ModelError(f"BinaryAxialAttention: {exc}") from exc
        if mode == "none":
            return
        if mode == "float":
            self.q = nn.Conv2d(channels, proj_channels, 1)
            self.k = nn.Conv2d(channels, proj_channels, 1)
            self.v = nn.Conv2d(channels, channels, 1)
            self.gamma = nn.Parameter(torch.ones(channels))
        else:
            self.q = _Projection(channels, proj_channels, 1)
            self.k = _Projection(channels, proj_channels, 1)
            self.v = _Projection(channels, channels, value_bits)
            self.gain = nn.Parameter(torch.full((channels,), float(1 << frac_bits)))
        self.out_bn = nn.BatchNorm2d(channels)
        self.act = BinaryAct(share_with=share_act_with)

    @property
    def gain_max(self) -> int:
        return 1 << (self.frac_bits + GAIN_EXTRA_BITS)

    def integer_gains(self) -> tuple[int, ...]:
        """The residual gains ``P_c`` the forward uses (rounded, clamped to [0, gain_max])."""
        return tuple(int(p) for p in self.gain.detach().round().clamp(0, self.gain_max))

    def spec(self, height: int, width: int) -> AxialSpec:
        """The layer's arithmetic for an ``height x width`` map (checked)."""
        vmin, vmax = (-1, 1) if self.value_bits == 1 else (
            -(1 << (self.value_bits - 1)), (1 << (self.value_bits - 1)) - 1)
        spec = AxialSpec(self.channels, self.proj_channels, height, width, vmin, vmax,
                         self.frac_bits, self.lut, self.integer_gains())
        try:
            spec.check()
        except ValueError as exc:
            raise ModelError(f"BinaryAxialAttention: {exc}") from exc
        return spec

    def projections(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Q, K (+-1) and V (integers), NCHW float tensors."""
        return self.q(x), self.k(x), self.v(x)

    def integer_output(self, x: Tensor) -> Tensor:
        """``I`` (int64, NCHW) for the binary input ``x``: what the hardware layer outputs."""
        if self.mode not in ("axial", "full"):
            raise ModelError(f"BinaryAxialAttention: mode {self.mode!r} has no integer output")
        q, k, v = self.projections(x)
        spec = self.spec(*(int(s) for s in x.shape[-2:]))
        core = axial_integer if self.mode == "axial" else full_integer
        return core(q, k, v, x, spec)

    def _core(self, x: Tensor) -> Tensor:
        q, k, v = self.projections(x)
        spec = self.spec(*(int(s) for s in x.shape[-2:]))
        if torch.onnx.is_in_onnx_export():
            if self.mode != "axial":
                raise ModelError(f"BinaryAxialAttention: mode {self.mode!r} is a torch-only "
                                 "ablation; only mode 'axial' exports (and maps to hardware)")
            return _ExportCore.apply(q, k, v, x, spec, value_dtype_name(self.value_bits))
        core, surrogate = ((axial_integer, _axial_surrogate) if self.mode == "axial"
                           else (full_integer, _full_surrogate))
        with torch.no_grad():
            exact = core(q, k, v, x, spec).to(x.dtype)
        if not torch.is_grad_enabled():
            return exact
        gains = self.gain + (self.gain.round().clamp(0, self.gain_max) - self.gain).detach()
        xs = x + (torch.where(x >= 0, 1.0, -1.0) - x).detach()
        approx = surrogate(q, k, v, xs, gains, spec, self.temperature, self.weight_bits)
        return exact + (approx - approx.detach())

    def _float_attention(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q, k, v = self.q(x).flatten(2), self.k(x).flatten(2), self.v(x).flatten(2)
        att = torch.softmax(torch.einsum("ndi,ndj->nij", q, k) * self.temperature, dim=-1)
        out = torch.einsum("nij,ncj->nci", att, v).view(n, c, h, w)
        return x + self.gamma[None, :, None, None] * out

    def forward(self, x: Tensor) -> Tensor:
        x = getattr(x, "value", x)  # a Brevitas QuantTensor's values
        if self.mode == "none":
            return x
        if self.mode == "float":
            z = self._float_attention(x)
        else:
            z = self._core(x) * (2.0 ** -self.frac_bits)
        return self.act(self.out_bn(z))

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, proj_channels={self.proj_channels}, mode={self.mode}, "
                f"value_bits={self.value_bits}, frac_bits={self.frac_bits}, "
                f"weight_bits={self.weight_bits}")


def attention_ops(height: int, width: int, channels: int, proj_channels: int,
                  mode: str = "axial", weight_bits: int = 8, value_bits: int = 1) -> dict[str, int]:
    """Operation counts of the activation-by-activation part (projections excluded) for one
    frame, in the convention OPs = BOPs / 64 + FLOPs (a multiply-accumulate is one op).

    ``"axial"``/``"full"`` (binary): each pixel pairs with the W + H pixels of its row and
    column, or with all H*W; per pair a d-bit XNOR popcount (d BOPs) and C weight x value
    products (``weight_bits * value_bits`` BOPs each); FLOPs are the fixed-point steps per
    pixel (axial: a reciprocal, C scalings, C column divisions; full: one division per
    channel). ``"float"``: full-precision non-local attention over all pairs: d + C
    multiply-accumulates and one exponential per pair, C normalizations per pixel.
    """
    n = height * width
    if mode not in ("axial", "full", "float"):
        raise ModelError(f"attention_ops: mode must be axial, full or float, not {mode!r}")
    pairs = n * (height + width) if mode == "axial" else n * n
    if mode == "float":
        bops, flops = 0, pairs * (proj_channels + channels + 1) + n * channels
    else:
        bops = pairs * (proj_channels + channels * weight_bits * value_bits)
        flops = n * (2 * channels + 1) if mode == "axial" else n * channels
    return {"pairs": pairs, "affinity": pairs * proj_channels, "aggregation": pairs * channels,
            "bops": bops, "flops": flops, "ops": bops // 64 + flops}
