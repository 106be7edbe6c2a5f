"""The multi-branch parallel upsampling block (MBU), as the hardware computes it.

``MultiBranchUpsample(in_ch, out_ch, in_act, dilations=(1, 2, 3, 4), gated=True,
mode="bilinear", frac_bits=6, gate_bits=8)`` takes a binary activation ``x = s * b``
(``b`` in {-1, +1}, ``s`` the per-tensor scale of ``in_act``) and computes, in integers:

* branch ``k``: ``b`` padded with -1 by ``d_k`` (our models' padding), a binary 3x3 conv with
  dilation ``d_k`` and UNIT weight scale: the integer accumulator ``acc_k`` in [-9 Cin, 9 Cin];
* the per-branch, per-output-channel gate ``gamma_k[c] = sigmoid(g_k[c]) * beta_k[c]``
  (``beta = exp(log_beta) > 0`` learned) in unsigned fixed point: ``G_k[c] =
  clamp(round(gamma_k[c] * 2^F), 0, 2^B - 1)`` (``B = gate_bits``, ``F = frac_bits``,
  straight-through rounding in training), so the branch sum ``S = sum_k G_k * acc_k`` is an
  exact integer; ``gated=False`` is the plain sum (``G = 1``, ``F = 0``);
* ``U``: ``S`` upsampled x2, nearest, or bilinear as the integer sum with weights 1/4, 3/4 per
  axis (torch's ``align_corners=False`` borders) times 16, as ``sim/kernels/upsample.py``;
* ``v = U * s / (2^F * u)`` (``u`` = 16 bilinear, 1 nearest), then batch norm and the sign
  activation ``act``; the lowering folds ``s / (2^F u)``, batch norm and sign into FINN
  thresholds on ``U``.

The forward pass computes ``acc``, ``S`` and ``U`` exactly (integer-valued float32 while every
value stays below 2^24, float64 beyond), so training sees the integers the hardware computes
(``sim/kernels/mbu.py`` and the ``MultiBranchUpsample`` layer). When traced for export it emits
the same function as plain graph ops that ``hw_gen/lowering/mbu.py`` recognises: per branch
``Pad(-s) -> Conv(dilation d_k, +-1 weights) -> Mul(G_k / 2^F)``, ``Add``s, ``Resize`` x2, batch
norm, sign.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from brevitas.core.function_wrapper import TensorClampSte
from brevitas.function.ops_ste import round_ste
from brevitas.quant.base import SignedBinaryClampedConst
from brevitas.quant.solver import WeightQuantSolver
from brevitas.quant_tensor import QuantTensor
import brevitas.nn as qnn
from torch import Tensor, nn

from brevitas_models.errors import ModelError
from brevitas_models.layers import BinaryAct, MinusOnePad
from sim.kernels.mbu import FACTOR, MAX_GATE_BITS, check_dilations
from sim.kernels.upsample import axis_taps, bilinear_gain

MODES = ("bilinear", "nearest")
MAX_FRAC_BITS = 16
FLOAT32_EXACT = 1 << 24


def upsample2(x: Tensor, mode: str) -> Tensor:
    """Torch's x2 upsampling as exported (Resize): bilinear ``align_corners=False`` or nearest."""
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=FACTOR, mode="bilinear", align_corners=False)
    return F.interpolate(x, scale_factor=FACTOR, mode="nearest")


class BinaryWeightUnit(SignedBinaryClampedConst, WeightQuantSolver):
    """Binary weights ``sign(w)`` (``sign(0) = +1``) with the constant scale 1, clamped out of
    place (``TensorClampSte``), straight-through: the branch's conv output is ``s`` times an
    integer accumulator. Exports as ``BipolarQuant`` with scale 1."""

    tensor_clamp_impl = TensorClampSte
    scaling_const = 1.0


class MultiBranchUpsample(nn.Module):
    """K parallel dilated binary 3x3 convs, fixed-point gated integer sum, x2 upsampling,
    batch norm, sign. See the module docstring for the arithmetic."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        in_act: BinaryAct,
        *,
        dilations: tuple[int, ...] = (1, 2, 3, 4),
        gated: bool = True,
        mode: str = "bilinear",
        frac_bits: int = 6,
        gate_bits: int = 8,
        beta_init: float = 1.0,
        share_act_with: BinaryAct | None = None,
        return_quant_tensor: bool = False,
    ):
        super().__init__()
        name = "MultiBranchUpsample"
        dilations = tuple(dilations)
        if not dilations or any(not isinstance(d, int) or d < 1 for d in dilations):
            raise ModelError(f"{name}: dilations {dilations} must be positive integers (one per branch)")
        if mode not in MODES:
            raise ModelError(f"{name}: mode must be one of {MODES}, got {mode!r}")
        if in_act is None:
            raise ModelError(f"{name}: needs in_act, the BinaryAct of its input (the -1 pad value)")
        if gated:
            if not 1 <= gate_bits <= MAX_GATE_BITS or not 0 <= frac_bits <= MAX_FRAC_BITS:
                raise ModelError(
                    f"{name}: gate_bits={gate_bits} (1..{MAX_GATE_BITS}) and frac_bits={frac_bits} "
                    f"(0..{MAX_FRAC_BITS}) out of range"
                )
            top = (2**gate_bits - 1) / 2**frac_bits
            if not 2.0**-frac_bits <= beta_init <= top:
                raise ModelError(
                    f"{name}: gate scale beta_init={beta_init:g} is out of the fixed-point range "
                    f"[{2.0**-frac_bits:g}, {top:g}] of UINT{gate_bits} with {frac_bits} fractional bits"
                )
        else:
            frac_bits, gate_bits = 0, 1
        self.in_ch, self.out_ch = in_ch, out_ch
        self.dilations, self.gated, self.mode = dilations, gated, mode
        self.frac_bits, self.gate_bits = frac_bits, gate_bits
        self._in_act = (in_act,)  # referenced, not owned
        self.pads = nn.ModuleList(MinusOnePad(d, in_act) for d in dilations)
        self.convs = nn.ModuleList(
            qnn.QuantConv2d(in_ch, out_ch, 3, dilation=d, bias=False, weight_quant=BinaryWeightUnit)
            for d in dilations
        )
        k = len(dilations)
        if gated:
            self.gate_logit = nn.Parameter(torch.zeros(k, out_ch))
            self.log_beta = nn.Parameter(torch.full((k, out_ch), math.log(beta_init)))
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = BinaryAct(share_with=share_act_with, return_quant_tensor=return_quant_tensor)

    # -- the integers -----------------------------------------------------------------------

    def gates(self) -> Tensor:
        """``G`` (K, out_ch): integer-valued, straight-through rounded fixed-point gates."""
        if not self.gated:
            return torch.ones(len(self.dilations), self.out_ch)
        gamma = torch.sigmoid(self.gate_logit) * torch.exp(self.log_beta)
        return torch.clamp(round_ste(gamma * 2.0**self.frac_bits), 0, 2**self.gate_bits - 1)

    def upsample_gain(self) -> int:
        return bilinear_gain(FACTOR) if self.mode == "bilinear" else 1

    def _exact_dtype(self) -> torch.dtype:
        bound = (len(self.dilations) * (2**self.gate_bits - 1) * 9 * self.in_ch
                 * self.upsample_gain())
        return torch.float32 if bound < FLOAT32_EXACT else torch.float64

    def integer_sum(self, b: Tensor) -> Tensor:
        """``U`` (N, out_ch, 2H, 2W): the upsampled integer branch sum of a -1/+1 tensor ``b``."""
        _, _, h, w = b.shape
        try:
            check_dilations(list(self.dilations), h, w)
        except ValueError as exc:
            raise ModelError(f"MultiBranchUpsample: {exc}") from exc
        dtype = self._exact_dtype()
        b = b.to(dtype)
        gates = self.gates().to(dtype)
        s = 0
        for k, (d, conv) in enumerate(zip(self.dilations, self.convs)):
            weight = conv.quant_weight().value.to(dtype)
            acc = F.conv2d(F.pad(b, (d, d, d, d), value=-1.0), weight, dilation=d)
            s = s + gates[k][None, :, None, None] * acc
        return self._upsample_exact(s)

    def _upsample_exact(self, s: Tensor) -> Tensor:
        if self.mode == "nearest":
            return s.repeat_interleave(FACTOR, dim=2).repeat_interleave(FACTOR, dim=3)
        rows, cols = axis_taps(s.shape[2], FACTOR), axis_taps(s.shape[3], FACTOR)

        def axis(t: Tensor, taps, dim: int) -> Tensor:
            shape = [1, 1, 1, 1]
            shape[dim] = -1
            w1 = torch.as_tensor(taps.w_first, dtype=t.dtype).reshape(shape)
            w2 = torch.as_tensor(taps.w_second, dtype=t.dtype).reshape(shape)
            first = t.index_select(dim, torch.as_tensor(taps.first))
            second = t.index_select(dim, torch.as_tensor(taps.second))
            return w1 * first + w2 * second

        return axis(axis(s, rows, 2), cols, 3)

    def output_scale(self) -> Tensor:
        """What ``U`` is multiplied by before batch norm: ``s / (2^F * u)``."""
        return self._in_act[0].scale() / (2.0**self.frac_bits * self.upsample_gain())

    # -- forward ----------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(x, QuantTensor):
            x = x.value
        if torch.jit.is_tracing():
            return self.act(self.bn(self._graph_form(x)))
        scale = self._in_act[0].scale()
        u = self.integer_sum(x / scale)
        return self.act(self.bn(u.to(x.dtype) * self.output_scale().to(x.dtype)))

    def _graph_form(self, x: Tensor) -> Tensor:
        """The same function as plain ops, for export: the gates become constants."""
        gates = torch.from_numpy(self.gates().detach().numpy() / 2.0**self.frac_bits)
        total = None
        for k, (pad, conv) in enumerate(zip(self.pads, self.convs)):
            y = conv(pad(x))
            if self.gated:
                y = y * gates[k].reshape(1, -1, 1, 1).to(y.dtype)
            total = y if total is None else total + y
        return upsample2(total, self.mode)

    # -- what the hardware layer takes -------------------------------------------------------

    def hardware_parameters(self) -> dict:
        """The layer's constants: ``weights`` (K, out, in, 3, 3) of -1/+1, ``gains`` (K, out)
        integers, ``frac_bits``, ``dilations``, ``mode``."""
        with torch.no_grad():
            weights = np.stack([c.quant_weight().value.numpy() for c in self.convs])
            gains = self.gates().numpy()
        return {
            "weights": weights.astype(np.int64), "gains": gains.astype(np.int64),
            "frac_bits": self.frac_bits, "dilations": list(self.dilations), "mode": self.mode,
        }

    def extra_repr(self) -> str:
        return (f"{self.in_ch}, {self.out_ch}, dilations={self.dilations}, gated={self.gated}, "
                f"mode={self.mode}, frac_bits={self.frac_bits}, gate_bits={self.gate_bits}")


class FloatMultiBranchUpsample(nn.Module):
    """The block's full-precision twin (for ``demo_fp`` and op counting): K float dilated 3x3
    convs (zero padding, no bias), float gates ``sigmoid(g) * beta`` (or a plain sum), x2
    upsampling, batch norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, *, dilations: tuple[int, ...] = (1, 2, 3, 4),
                 gated: bool = True, mode: str = "bilinear"):
        super().__init__()
        if mode not in MODES:
            raise ModelError(f"FloatMultiBranchUpsample: mode must be one of {MODES}, got {mode!r}")
        self.dilations, self.gated, self.mode = tuple(dilations), gated, mode
        self.convs = nn.ModuleList(
            nn.Conv2d(in_ch, out_ch, 3, padding=d, dilation=d, bias=False) for d in self.dilations
        )
        if gated:
            self.gate_logit = nn.Parameter(torch.zeros(len(self.dilations), out_ch))
            self.log_beta = nn.Parameter(torch.zeros(len(self.dilations), out_ch))
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        total = 0
        for k, conv in enumerate(self.convs):
            y = conv(x)
            if self.gated:
                gate = torch.sigmoid(self.gate_logit[k]) * torch.exp(self.log_beta[k])
                y = y * gate[None, :, None, None]
            total = total + y
        return self.act(self.bn(upsample2(total, self.mode)))
