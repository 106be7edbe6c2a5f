"""Seeded random networks of stock Brevitas layers, for the lowering's acceptance sweep.

``random_net(seed)`` returns a small eval-mode network and a :class:`NetSpec` (a readable
line per layer and the set of :data:`FEATURES` it contains). Every choice is drawn from
``random.Random(seed)``; generation always yields a valid network. The space:

* input: 1 or 3 channels, H and W each in 5..13 (odd and even), through an unsigned 8-bit
  quantizer of constant scale float32(1/255), so a raw pixel k is the input k/255;
* a stem block on the pixels, 1 or 2 units, maybe one follow-up block (a padded 3x3 conv
  right after an upsampling or a binary add), at most 3 blocks in all (``max_blocks``; more
  units for larger values), then the classifier;
* units: ``conv`` (a block), ``pool`` (MaxPool2d, kernel 2 or 3, stride 2), ``res`` (1 or 2
  shape-keeping blocks joined to the unit's input or to a 1x1-conv shortcut), ``updown`` (a
  stride-2 3x3 block, maybe a shape-keeping block, nearest x2 ``nn.Upsample``, joined to the
  unit's input when the shapes agree);
* a block: QuantConv2d (kernel 1 or 3, dilation 1-4 with kernel 3, stride 1 or 2, 2-16 output
  channels, no bias), BatchNorm2d with random statistics, an activation. Weights: binary
  (SignedBinaryWeightPerTensorConst) or 2-8-bit integers (Int8WeightPer{Tensor,Channel}Float
  with ``weight_bit_width``). Padding of kernel-3 convs: none, or "same" (d) or 1..d; on
  multi-bit inputs zero padding (``padding=``); on binary inputs the net's one style, zero
  padding (users' style) or -1 padding by ``F.pad(x, value=-scale)`` (our models' style);
* activations: binary (SignedBinaryActPerTensorConst, scale 1, sometimes 1/2, 2 or a random
  value), or 2-8-bit unsigned (QuantReLU) or signed (QuantIdentity) integers with a constant
  scale (a power of two, or a generic float32 so that no two scales are in an exact ratio);
* joins: add, re-quantized after the add (same quantizer, twice its scale when that is a
  power of two, or another one), or channel concat, of equal-shape tensors with the same
  quantizer (kind, bits and scale);
* tie blocks: no batch norm, power-of-two weight and activation scales, so exact rounding
  ties (half to even, sign at 0) occur;
* classifier: 1x1 QuantConv2d, binary or 8-bit weights, 2-5 classes, giving the logits.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from brevitas import nn as qnn
from brevitas.inject.enum import ScalingImplType
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
)
from torch import nn

from brevitas_models.stock_nets import _randomize_bn

MIN_SIZE, MAX_SIZE = 5, 13
MIN_CHANNELS, MAX_CHANNELS = 2, 16
MAX_BLOCKS = 3  # default; larger nets for longer sweeps through random_net(max_blocks=)
PIXEL_SCALE = 1.0 / 255.0

# Every feature the sweep asserts coverage of (see NetSpec.features).
FEATURES = (
    "kernel1", "kernel3", "stride1", "stride2", "dilation1", "dilation2", "dilation3",
    "dilation4", "pad_none", "pad_zero_binary", "pad_zero_multibit", "pad_minus1",
    "dilation_padded", "odd_size", "stride2_odd", "act_bits1", "act_bits2", "act_bits3",
    "act_bits4", "act_bits5", "act_bits6", "act_bits7", "act_bits8", "act_signed",
    "act_unsigned", "act_binary_scaled", "weights_binary", "weights_int",
    "weights_int_per_channel", "add_skip", "add_binary", "add_multibit", "concat_skip",
    "concat_binary", "concat_multibit", "conv_shortcut", "upsample", "upsample_join",
    "upsample_then_padded_conv", "add_binary_then_minus1_pad", "maxpool", "maxpool_binary",
    "maxpool_multibit", "tie_block", "classifier_binary", "classifier_int8",
)


@dataclass(frozen=True)
class QSpec:
    """An activation quantizer: kind ("binary", "uint", "int"), bit width and scale; ``const``
    is the quantizer's constant (its largest value) when ``scale`` was derived from it."""

    kind: str
    bits: int
    scale: float
    const: float | None = None

    @property
    def levels(self) -> int:
        """The integer the scale divides the quantizer's constant by."""
        return {"binary": 1, "uint": 2**self.bits - 1, "int": 2 ** (self.bits - 1)}[self.kind]

    def __str__(self) -> str:
        name = "bin" if self.kind == "binary" else f"{self.kind}{self.bits}"
        return f"{name}@{self.scale:.6g}"

    @property
    def pot_scale(self) -> bool:
        """True if the scale is an exact power of two."""
        return math.frexp(self.scale)[0] == 0.5


@dataclass
class NetSpec:
    """What a generated net contains: input shape, one readable line per layer, features."""

    seed: int
    input_shape: tuple[int, int, int, int]
    layers: list[str] = field(default_factory=list)
    features: set[str] = field(default_factory=set)

    def describe(self) -> str:
        n, c, h, w = self.input_shape
        head = f"random_net({self.seed}): input {c}x{h}x{w}"
        return "\n".join([head] + [f"  {line}" for line in self.layers])


@dataclass
class _Tensor:
    index: int  # position in RandomNet's value list
    c: int
    h: int
    w: int
    q: QSpec
    after_up: bool = False  # produced by (or joined from) an upsampling


class PadConst(nn.Module):
    """Constant padding of H and W on each side (our models' -1 padding of binary values)."""

    def __init__(self, amount: int, value: float) -> None:
        super().__init__()
        self.amount = amount
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (self.amount,) * 4, value=self.value)


class Block(nn.Sequential):
    """[PadConst] -> QuantConv2d -> [BatchNorm2d] -> activation."""


class AddRequant(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.act = act

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.act(a + b)


class Concat(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=1)


class RandomNet(nn.Module):
    """Runs ``steps`` in order; step i reads the values listed in ``wiring[i]`` (value 0 is
    the quantized input) and appends one value. The last value is the output."""

    def __init__(self, inp: nn.Module, steps: list[nn.Module], wiring: list[tuple[int, ...]]):
        super().__init__()
        self.inp = inp
        self.steps = nn.ModuleList(steps)
        self.wiring = wiring

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = [self.inp(x)]
        for step, sources in zip(self.steps, self.wiring):
            values.append(step(*[values[i] for i in sources]))
        return values[-1]


def make_act(q: QSpec) -> nn.Module:
    """A Brevitas activation with constant scale ``q.scale`` (checked)."""
    const = q.const if q.const is not None else q.scale * q.levels
    if q.kind == "binary":
        quant = SignedBinaryActPerTensorConst.let(min_val=-const, max_val=const)
        act = qnn.QuantIdentity(act_quant=quant)
    else:
        quant = _int_act_quant(q.kind == "int", q.bits, const)
        act = (qnn.QuantReLU if q.kind == "uint" else qnn.QuantIdentity)(act_quant=quant)
    actual = float(act.act_quant.scale())
    if actual != q.scale:
        raise AssertionError(f"quantizer {q} has scale {actual!r}")
    return act


def input_quant() -> nn.Module:
    """The input quantizer: unsigned 8 bits, constant scale float32(1/255)."""
    return qnn.QuantIdentity(act_quant=_int_act_quant(False, 8, 1.0))


def _int_act_quant(signed: bool, bits: int, const: float):
    """Brevitas' per-tensor integer activation quantizer with the constant ``const``."""
    base = Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat
    return base.let(scaling_impl_type=ScalingImplType.CONST, scaling_const=const,
                    max_val=const, min_val=-const if signed else 0.0, bit_width=bits)


def _f32(value: float) -> float:
    return float(np.float32(value))


def _out_size(size: int, k: int, s: int, d: int, p: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


class _Builder:
    """Draws one network; every choice falls back to a valid one, so generation never fails."""

    def __init__(self, seed: int, max_blocks: int) -> None:
        self.max_blocks = max_blocks
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.steps: list[nn.Module] = []
        self.wiring: list[tuple[int, ...]] = []
        self.spec = NetSpec(seed, (1, 0, 0, 0))
        self.hidden_convs = 0
        self.last_add_binary = -1  # value index of the latest add of binary tensors
        # how binary activations are padded: users' style (zero padding on the conv) or our
        # models' style (-1, an explicit pad); a net uses one (see padding.ZeroPadToInt2)
        self.binary_pad = self.rng.choice(["zero", "minus1"])

    # --- choices -------------------------------------------------------------------------
    def random_q(self) -> QSpec:
        r = self.rng
        if r.random() < 0.45:
            kind, bits, pot = "binary", 1, r.random() < 0.9
            exponent = 0 if r.random() < 0.8 else r.choice([-1, 1])
        else:
            kind, bits, pot = r.choice(["uint", "int"]), r.randint(2, 8), r.random() < 0.5
            exponent = r.randint(-4, 0)
        if pot:
            return QSpec(kind, bits, 2.0**exponent)
        # a generic float32 constant: no exact rational relation between two scales, so
        # torch's float arithmetic meets no exact rounding tie that the integers do not
        spec = QSpec(kind, bits, 1.0)
        const = _f32(r.uniform(0.05, 1.0) * 4 / bits * spec.levels)
        return QSpec(kind, bits, _f32(np.float32(const) / np.float32(spec.levels)), const)

    # --- bookkeeping ---------------------------------------------------------------------
    def add_step(self, module: nn.Module, sources: list[_Tensor], c: int, h: int, w: int,
                 q: QSpec, line: str, after_up: bool = False) -> _Tensor:
        self.steps.append(module)
        self.wiring.append(tuple(t.index for t in sources))
        index = len(self.steps)
        names = ", ".join(f"v{t.index}" for t in sources)
        self.spec.layers.append(f"v{index} = {line}({names}) -> {c}x{h}x{w} {q}")
        return _Tensor(index, c, h, w, q, after_up)

    def feature(self, *names: str) -> None:
        self.spec.features.update(names)

    def note_act(self, q: QSpec) -> None:
        self.feature(f"act_bits{q.bits}")
        if q.kind == "int":
            self.feature("act_signed")
        elif q.kind == "uint":
            self.feature("act_unsigned")
        elif q.scale != 1.0:
            self.feature("act_binary_scaled")

    # --- layers --------------------------------------------------------------------------
    def block(self, x: _Tensor, q: QSpec, *, same: bool = False, stride: int | None = None,
              k: int | None = None, c: int | None = None, input_is_pixels: bool = False,
              pad: bool = False) -> _Tensor:
        """One conv block with activation ``q``. ``same``: keep H and W (stride 1, padding
        d*(k-1)/2); ``c``: output channels; ``pad``: a padded 3x3 conv if it fits."""
        r = self.rng
        binary_in = x.q.kind == "binary" and not input_is_pixels
        # a tie block needs power-of-two scales in and out (q may be fixed by a join)
        tie = not input_is_pixels and x.q.pot_scale and q.pot_scale and r.random() < 0.25
        k = k if k is not None else (3 if pad or r.random() < 0.7 else 1)
        d = r.randint(1, 4) if k == 3 else 1
        if same:
            s = 1
        elif stride is not None:
            s = stride
        else:
            s = 2 if r.random() < 0.3 and min(x.h, x.w) >= 4 else 1
        padded = self.binary_pad if binary_in else "zero"
        kind = padded if same or pad else r.choice(["none", padded])
        if k == 1:
            kind, p = "none", 0
        else:
            p = 0 if kind == "none" else (d if same or r.random() < 0.75 else r.randint(1, d))
        # fall back until the window fits and the output keeps at least 2x2 pixels
        while k == 3 and min(_out_size(x.h, k, s, d, p), _out_size(x.w, k, s, d, p)) < 2:
            if d > 1:
                d -= 1
                p = min(p, d) if not same else d
            elif s == 2 and stride is None:
                s = 1
            else:
                k, d, p, kind = 1, 1, 0, "none"
        if min(_out_size(x.h, k, s, d, p), _out_size(x.w, k, s, d, p)) < 1:
            s = 1
        h, w = _out_size(x.h, k, s, d, p), _out_size(x.w, k, s, d, p)
        c = c if c is not None else r.randint(MIN_CHANNELS, MAX_CHANNELS)
        # weights
        wr = r.random()
        if tie:
            scale = 2.0 ** r.randint(-2, 0)
            wq, wdesc = SignedBinaryWeightPerTensorConst.let(scaling_const=scale), "wbin-pot"
            kw: dict = {}
            self.feature("tie_block", "weights_binary")
        elif wr < 0.75:
            wq, wdesc, kw = SignedBinaryWeightPerTensorConst, "wbin", {}
            self.feature("weights_binary")
        else:
            bits = r.randint(2, 8)
            per_channel = wr > 0.92
            wq = Int8WeightPerChannelFloat if per_channel else Int8WeightPerTensorFloat
            kw = {"weight_bit_width": bits}
            wdesc = f"wint{bits}" + ("-pc" if per_channel else "")
            self.feature("weights_int", *(["weights_int_per_channel"] if per_channel else []))
        modules: list[nn.Module] = []
        conv_pad = 0
        if kind == "minus1":
            modules.append(PadConst(p, -x.q.scale))
        elif kind == "zero":
            conv_pad = p
        conv = qnn.QuantConv2d(x.c, c, k, stride=s, padding=conv_pad, dilation=d, bias=False,
                               weight_quant=wq, **kw)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=self.gen))
        modules.append(conv)
        if not tie:
            bn = nn.BatchNorm2d(c)
            _randomize_bn(bn, self.gen)
            modules.append(bn)
        modules.append(make_act(q))
        self.hidden_convs += 1
        # features
        self.feature(f"kernel{k}", f"stride{s}", f"dilation{d}")
        pad_feature = {"none": "pad_none", "minus1": "pad_minus1",
                       "zero": "pad_zero_binary" if binary_in else "pad_zero_multibit"}[kind]
        self.feature(pad_feature)
        if kind != "none" and d > 1:
            self.feature("dilation_padded")
        if x.h % 2 or x.w % 2:
            self.feature("odd_size", *(["stride2_odd"] if s == 2 else []))
        if kind != "none" and x.after_up:
            self.feature("upsample_then_padded_conv")
        if kind == "minus1" and self.last_add_binary == x.index:
            self.feature("add_binary_then_minus1_pad")
        self.note_act(q)
        pad_desc = {"none": "", "zero": f" pad0x{p}", "minus1": f" pad-1x{p}"}[kind]
        line = (f"conv{k}x{k} s{s} d{d}{pad_desc} {wdesc}" + ("" if tie else " bn")
                + (" tie" if tie else ""))
        return self.add_step(Block(*modules), [x], c, h, w, q, line)

    def join(self, a: _Tensor, b: _Tensor) -> _Tensor:
        r = self.rng
        up = a.after_up or b.after_up
        p_add = 0.7 if a.q.kind == "binary" and self.binary_pad == "minus1" else 0.5
        if a.c == b.c and r.random() < p_add:
            q = a.q
            if q.kind != "binary":
                # twice the scale: an odd sum is an exact tie (only with power-of-two scales
                # is that tie exact in torch's float arithmetic too)
                twice = QSpec(q.kind, q.bits, q.scale * 2) if q.pot_scale else self.random_q()
                q = r.choice([q, twice, self.random_q()])
                if q.kind == "binary":
                    q = a.q
            self.note_act(q)
            self.feature("add_skip", "add_binary" if a.q.kind == "binary" else "add_multibit")
            out = self.add_step(AddRequant(make_act(q)), [a, b], a.c, a.h, a.w, q, "add+quant",
                                after_up=up)
            if a.q.kind == "binary":
                self.last_add_binary = out.index
        else:
            self.feature("concat_skip",
                         "concat_binary" if a.q.kind == "binary" else "concat_multibit")
            out = self.add_step(Concat(), [a, b], a.c + b.c, a.h, a.w, a.q, "concat", after_up=up)
        if up:
            self.feature("upsample_join")
        return out

    def pool(self, x: _Tensor) -> _Tensor:
        k = 3 if min(x.h, x.w) >= 3 and self.rng.random() < 0.3 else 2
        h, w = (x.h - k) // 2 + 1, (x.w - k) // 2 + 1
        self.feature("maxpool", "maxpool_binary" if x.q.kind == "binary" else "maxpool_multibit")
        return self.add_step(nn.MaxPool2d(k, 2), [x], x.c, h, w, x.q, f"maxpool{k} s2")

    def upsample(self, x: _Tensor) -> _Tensor:
        self.feature("upsample")
        return self.add_step(nn.Upsample(scale_factor=2, mode="nearest"), [x], x.c, 2 * x.h,
                             2 * x.w, x.q, "upsample2x nearest", after_up=True)

    # --- units ---------------------------------------------------------------------------
    def unit(self, x: _Tensor) -> _Tensor:
        r = self.rng
        budget = self.max_blocks - self.hidden_convs
        options = ["conv"] if budget >= 1 else []
        if min(x.h, x.w) >= 4:
            options += ["pool"] * (2 if min(x.h, x.w) >= 6 else 1)
        if budget >= 1:
            options += ["res", "res"]
        if budget >= 1 and min(x.h, x.w) >= 4:
            options += ["updown", "updown"]
        if not options:
            return x
        kind = r.choice(options)
        if kind == "conv":
            return self.block(x, self.random_q() if r.random() < 0.4 else x.q)
        if kind == "pool":
            return self.pool(x)
        if kind == "res":
            short = x
            if budget >= 2 and r.random() < 0.3:
                short = self.block(x, x.q, k=1, same=True)
                self.feature("conv_shortcut")
                budget -= 1
            n = 2 if budget >= 2 and r.random() < 0.5 else 1
            y = x
            for i in range(n):
                last = i == n - 1
                c = short.c if last and r.random() < 0.75 else None
                y = self.block(y, x.q if last else self.random_q(), same=True, c=c)
            return self.join(short, y)
        # updown: a stride-2 block, maybe a shape-preserving one, nearest x2 upsampling
        second = budget >= 2 and r.random() < 0.5
        c = x.c if not second and r.random() < 0.75 else None
        y = self.block(x, self.random_q() if second else x.q, stride=2, k=3, c=c)
        if second:
            y = self.block(y, x.q, same=True, c=x.c if r.random() < 0.75 else None)
        u = self.upsample(y)
        if (u.h, u.w) == (x.h, x.w):
            return self.join(x, u)
        return u

    # --- whole net -----------------------------------------------------------------------
    def build(self) -> tuple[RandomNet, NetSpec]:
        r = self.rng
        cin, h, w = r.choice([1, 3]), r.randint(MIN_SIZE, MAX_SIZE), r.randint(MIN_SIZE, MAX_SIZE)
        self.spec.input_shape = (1, cin, h, w)
        x = _Tensor(0, cin, h, w, QSpec("uint", 8, _f32(PIXEL_SCALE)))
        x = self.block(x, self.random_q(), input_is_pixels=True)
        for _ in range(r.randint(1, max(2, self.max_blocks - 1))):
            x = self.unit(x)
        # a padded conv right after an upsampling or a binary add, where the budget allows
        follows = x.after_up or x.index == self.last_add_binary
        if follows and self.hidden_convs < self.max_blocks and r.random() < 0.7:
            x = self.block(x, self.random_q() if r.random() < 0.4 else x.q, pad=True)
        classes = r.randint(2, 5)
        if r.random() < 0.7:
            wq, kw, desc = SignedBinaryWeightPerTensorConst, {}, "wbin"
            self.feature("classifier_binary")
        else:
            wq, kw, desc = Int8WeightPerTensorFloat, {"weight_bit_width": 8}, "wint8"
            self.feature("classifier_int8")
        conv = qnn.QuantConv2d(x.c, classes, 1, bias=False, weight_quant=wq, **kw)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=self.gen))
        self.steps.append(conv)
        self.wiring.append((x.index,))
        self.spec.layers.append(
            f"logits = classifier conv1x1 {desc}(v{x.index}) -> {classes}x{x.h}x{x.w}")
        net = RandomNet(input_quant(), self.steps, self.wiring)
        return net.eval(), self.spec


def random_net(seed: int, max_blocks: int = MAX_BLOCKS) -> tuple[RandomNet, NetSpec]:
    """The network of ``seed`` (eval mode) and its spec; the same seed gives the same net.
    ``max_blocks``: conv blocks before the classifier (units: up to ``max_blocks - 1``, >= 2)."""
    return _Builder(seed, max_blocks).build()


def random_input(spec: NetSpec, batch: int, seed: int) -> torch.Tensor:
    """``batch`` random 8-bit images k/255 for the net of ``spec``."""
    _, c, h, w = spec.input_shape
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, c, h, w), generator=gen).float() / 255.0
