"""Operation counts of a network at a stated input size: BOPs, FLOPs and
OPs = BOPs / 64 + FLOPs, per module and in total, against the full-precision twin.

``count_ops(model, (H, W))`` runs one forward pass (batch 1, eval mode) with forward hooks on
the countable modules and returns an ``OpReport``: one ``Row`` per call (a module called three
times gives three rows, ``up#1`` ... ``up#3``), each with the module's own ``Count`` and the
``Count`` of its full-precision counterpart (``twin``). ``OpReport.speedup`` is twin OPs /
OPs. ``count_network(name, size, width, num_classes)`` builds a registered network first.

Conventions (one multiply-accumulate, MAC, is one operation; batch 1; per frame):

* Conv: MACs = C_out * H_out * W_out * (C_in / groups) * k_h * k_w, plus one FLOP per output
  element for a bias. **BOPs** when the weights are 1 bit and the input takes only the two
  values +-s (a binary tensor, padding included): an XNOR-popcount conv. Every other conv
  counts **FLOPs**: the binary-weight stem over 8-bit pixels, the 8-bit classifier, float convs.
* Batch norm: 1 FLOP per output element (a scale and shift). In the binary network it folds
  with the sign into a threshold in hardware; it is still counted, as in the twin.
* Sign and ReLU activations, quantizers, -1 / zero padding, concatenation, nearest
  upsampling: 0 (comparisons and data movement).
* Bilinear x f upsampling, separable as the MBU computes it: 2 MACs per element of the
  row-interpolated map (C x fH x W) plus 2 per element of the output (C x fH x fW): FLOPs
  (the integer sum it interpolates is multi-bit).
* MBU (``MultiBranchUpsample``, K branches of C_in -> C_out): K binary dilated 3x3 convs
  (BOPs; the twin's float convs: FLOPs), the gates (K MACs per element of the sum; a plain
  sum: K - 1 adds), the x2 upsampling above, batch norm on the output: FLOPs.
* Attention (``BinaryAxialAttention``, C channels, d = proj_channels, N = H W pixels): the
  three 1x1 projections (N C (2d + C) MACs; binary: BOPs, float mode: FLOPs plus their
  biases), the projections' batch norms (N (2d + C) FLOPs, binary modes), the
  activation-by-activation core as :func:`brevitas_models.attention.attention_ops` counts it,
  the residual add and the output batch norm (N C FLOPs each). Its twin is full-precision
  non-local attention (``mode="float"``, softmax over all N^2 pairs): the attention it
  replaces.
* The twin of every other module is the same module in full precision: all its operations
  are FLOPs. Counting the network ``demo_fp`` gives the twin of ``demo`` without attention
  (it has none); a test checks that.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from brevitas_models.attention import BinaryAxialAttention, attention_ops
from brevitas_models.errors import ModelError
from brevitas_models.mbu import FloatMultiBranchUpsample, MultiBranchUpsample
from brevitas_models.nets import NETWORKS, build

BOPS_PER_OP = 64
FLOAT_BITS = 32
INPUT_SEED = 0


@dataclass(frozen=True)
class Count:
    """Binary operations and floating-point (multi-bit) operations."""

    bops: int = 0
    flops: int = 0

    @property
    def ops(self) -> float:
        return self.bops / BOPS_PER_OP + self.flops

    def __add__(self, other: Count) -> Count:
        return Count(self.bops + other.bops, self.flops + other.flops)

    def as_float(self) -> Count:
        """The same operations in full precision: every BOP becomes a FLOP."""
        return Count(0, self.bops + self.flops)


# ------------------------------------------------------------------------------------------
# Formulas (the conventions above), shared by the module handlers and usable on their own


def conv_macs(c_in: int, c_out: int, kernel: tuple[int, int], out_hw: tuple[int, int],
              groups: int = 1) -> int:
    """Multiply-accumulates of one conv layer for one frame."""
    return c_out * out_hw[0] * out_hw[1] * (c_in // groups) * kernel[0] * kernel[1]


def upsample_flops(channels: int, height: int, width: int, factor: int, mode: str) -> int:
    """x ``factor`` upsampling of a C x H x W map: nearest 0; bilinear, separable, 2 MACs per
    element of the row pass (C x fH x W) and of the column pass (C x fH x fW)."""
    if mode == "nearest":
        return 0
    if mode != "bilinear":
        raise ModelError(f"op count: upsampling mode {mode!r} is not counted (nearest, bilinear)")
    tall = channels * factor * height * width
    return 2 * tall + 2 * tall * factor


def mbu_count(c_in: int, c_out: int, height: int, width: int, branches: int, *,
              gated: bool = True, mode: str = "bilinear", binary: bool = True) -> Count:
    """The MBU block on an H x W input (output 2H x 2W), binary or its float twin."""
    macs = branches * conv_macs(c_in, c_out, (3, 3), (height, width))
    gates = (branches if gated else branches - 1) * c_out * height * width
    flops = gates + upsample_flops(c_out, height, width, 2, mode) + c_out * 4 * height * width
    return Count(macs, flops) if binary else Count(0, macs + flops)


def attention_count(channels: int, proj_channels: int, height: int, width: int,
                    mode: str = "axial", *, weight_bits: int = 8, value_bits: int = 1) -> Count:
    """The whole attention block (projections, core, residual, output batch norm) on a
    C x H x W map; ``mode`` as ``BinaryAxialAttention`` (``"float"``: non-local attention)."""
    if mode == "none":
        return Count()
    n, c, d = height * width, channels, proj_channels
    core = attention_ops(height, width, c, d, mode, weight_bits, value_bits)
    projection_macs = n * c * (2 * d + c)
    tail = 2 * n * c  # residual add, output batch norm
    if mode == "float":
        return Count(0, projection_macs + n * (2 * d + c) + core["flops"] + tail)
    return Count(projection_macs + core["bops"], n * (2 * d + c) + core["flops"] + tail)


# ------------------------------------------------------------------------------------------
# Module handlers: (module, input tensor, output tensor) -> (description, count, twin)


def _plain(t) -> Tensor:
    return getattr(t, "value", t)  # a Brevitas QuantTensor's values


def _is_binary(t: Tensor) -> bool:
    magnitude = t.detach().abs()
    return bool((magnitude > 0).all() and (magnitude == magnitude.flatten()[0]).all())


def weight_bits(conv: nn.Module) -> int:
    """Bit width of a conv's weights: its Brevitas quantizer's, else 32 (float)."""
    quant = getattr(conv, "weight_quant", None)
    if quant is not None and getattr(quant, "is_quant_enabled", False):
        return int(conv.quant_weight().bit_width)
    return FLOAT_BITS


def _conv(m: nn.Conv2d, x: Tensor, y: Tensor) -> tuple[str, Count, Count]:
    macs = conv_macs(m.in_channels, m.out_channels, m.kernel_size, y.shape[-2:], m.groups)
    bias = y[0].numel() if m.bias is not None else 0
    bits, binary_input = weight_bits(m), _is_binary(x)
    binary = bits == 1 and binary_input
    shape = f"conv {m.kernel_size[0]}x{m.kernel_size[1]}"
    shape += f" s{m.stride[0]}" if m.stride[0] != 1 else ""
    shape += f" d{m.dilation[0]}" if m.dilation[0] != 1 else ""
    if bits == FLOAT_BITS:
        operands = "float"
    else:
        operands = f"W{bits}A1" if binary_input else f"W{bits} x multi-bit input"
    count = Count(macs, bias) if binary else Count(0, macs + bias)
    return f"{shape} {m.in_channels}->{m.out_channels} {operands}", count, count.as_float()


def _batch_norm(m: nn.BatchNorm2d, x: Tensor, y: Tensor) -> tuple[str, Count, Count]:
    count = Count(0, y[0].numel())
    return "batch norm", count, count


def _upsample(m: nn.Upsample, x: Tensor, y: Tensor) -> tuple[str, Count, Count]:
    c, h, w = x.shape[1:]
    factor = y.shape[-1] // w
    count = Count(0, upsample_flops(c, h, w, factor, m.mode))
    return f"{m.mode} x{factor}", count, count


def _mbu(m: nn.Module, x: Tensor, y: Tensor) -> tuple[str, Count, Count]:
    c_in, h, w = x.shape[1:]
    binary = isinstance(m, MultiBranchUpsample)
    args = (c_in, y.shape[1], h, w, len(m.dilations))
    count = mbu_count(*args, gated=m.gated, mode=m.mode, binary=binary)
    twin = mbu_count(*args, gated=m.gated, mode=m.mode, binary=False)
    kind = f"MBU K={len(m.dilations)} {m.mode}{'' if m.gated else ' plain sum'}"
    return kind + ("" if binary else " float"), count, twin


def _attention(m: BinaryAxialAttention, x: Tensor, y: Tensor) -> tuple[str, Count, Count]:
    c, h, w = x.shape[1:]
    args = (c, m.proj_channels, h, w)
    count = attention_count(*args, m.mode, weight_bits=m.weight_bits, value_bits=m.value_bits)
    twin = attention_count(*args, "float") if m.mode != "none" else Count()
    return f"attention {m.mode} d={m.proj_channels}", count, twin


Handler = Callable[[nn.Module, Tensor, Tensor], tuple[str, Count, Count]]
# checked in order; a handled module's children are not visited
HANDLERS: tuple[tuple[type, Handler], ...] = (
    ((MultiBranchUpsample, FloatMultiBranchUpsample), _mbu),
    (BinaryAxialAttention, _attention),
    (nn.Conv2d, _conv),
    (nn.BatchNorm2d, _batch_norm),
    (nn.Upsample, _upsample),
)


# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One call of one module: its operations and those of its full-precision twin."""

    module: str
    kind: str
    output: tuple[int, ...]  # C, H, W
    count: Count
    twin: Count


@dataclass
class OpReport:
    """Per-module rows in call order and the totals, at ``size`` = (H, W)."""

    net: str
    size: tuple[int, int]
    rows: list[Row] = field(default_factory=list)

    @property
    def total(self) -> Count:
        return sum((r.count for r in self.rows), Count())

    @property
    def twin_total(self) -> Count:
        return sum((r.twin for r in self.rows), Count())

    @property
    def speedup(self) -> float:
        return _ratio(self.twin_total.ops, self.total.ops)

    def to_dict(self) -> dict:
        def entry(c: Count) -> dict:
            return {"bops": c.bops, "flops": c.flops, "ops": c.ops}

        return {
            "net": self.net, "size": list(self.size),
            "rows": [{"module": r.module, "kind": r.kind, "output": list(r.output),
                      **entry(r.count), "twin": entry(r.twin)} for r in self.rows],
            "total": entry(self.total), "twin_total": entry(self.twin_total),
            "speedup": self.speedup,
        }

    def table(self, markdown: bool = False) -> str:
        header = ["module", "op", "output", "BOPs", "FLOPs", "OPs", "twin OPs", "speedup"]
        body = [[r.module, r.kind, "x".join(map(str, r.output)), f"{r.count.bops:,}",
                 f"{r.count.flops:,}", f"{r.count.ops:,.0f}", f"{r.twin.ops:,.0f}",
                 _fmt_ratio(r.twin.ops, r.count.ops)] for r in self.rows]
        total, twin = self.total, self.twin_total
        body.append(["total", "", "", f"{total.bops:,}", f"{total.flops:,}", f"{total.ops:,.0f}",
                     f"{twin.ops:,.0f}", _fmt_ratio(twin.ops, total.ops)])
        title = f"{self.net} at {self.size[0]}x{self.size[1]} (OPs = BOPs/{BOPS_PER_OP} + FLOPs)"
        return f"{title}\n\n{format_table(header, body, markdown)}"


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b else "-"


def format_table(header: Sequence[str], body: Sequence[Sequence[str]], markdown: bool) -> str:
    """A Markdown table, or plain text with aligned columns (numbers right-aligned)."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    for row in body:
        lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    size = tuple(size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in size):
        raise ModelError(f"op count: input size must be two positive integers (H W), got {size}")
    return size  # type: ignore[return-value]


def count_ops(model: nn.Module, size: Sequence[int], in_channels: int = 3) -> OpReport:
    """Count ``model``'s operations on one ``in_channels`` x H x W frame (see module doc)."""
    size = _check_size(size)
    name = getattr(model, "name", type(model).__name__)
    report = OpReport(name, size)
    calls: list[tuple[str, nn.Module, Handler, Tensor, Tensor]] = []
    hooks, handled = [], []
    for path, module in model.named_modules():
        if any(p == "" or path.startswith(p + ".") for p in handled):
            continue
        handler = next((h for kinds, h in HANDLERS if isinstance(module, kinds)), None)
        if handler is None:
            continue
        handled.append(path)

        def hook(mod, inputs, output, path=path, handler=handler):
            calls.append((path or name, mod, handler, _plain(inputs[0]), _plain(output)))

        hooks.append(module.register_forward_hook(hook))
    x = torch.rand((1, in_channels, *size), generator=torch.Generator().manual_seed(INPUT_SEED))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    except (RuntimeError, ValueError, ModelError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"op count: network {name!r} does not run at {size[0]}x{size[1]}: "
                         f"{first[:200]}") from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    seen: dict[str, int] = {}
    for path, *_ in calls:
        seen[path] = seen.get(path, 0) + 1
    index: dict[str, int] = {}
    for path, mod, handler, x_in, y in calls:
        index[path] = index.get(path, 0) + 1
        label = f"{path}#{index[path]}" if seen[path] > 1 else path
        kind, count, twin = handler(mod, x_in, y)
        report.rows.append(Row(label, kind, tuple(y.shape[1:]), count, twin))
    return report


def count_network(name: str, size: Sequence[int], width: int | None = None,
                  num_classes: int | None = None) -> OpReport:
    """``count_ops`` of the registered network ``name`` (``nets.build``)."""
    size = _check_size(size)
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    return count_ops(build(name, width, input_size=size, **kwargs), size)


def weight_memory(model: nn.Module) -> dict[str, int]:
    """Parameters and their storage in bits: conv weights at their quantizer's bit width
    (1 binary, 8 classifier), a quantized bias at its bit width, every other parameter
    (scales, batch norm, gates, gains) 32 bits. Batch-norm running statistics excluded."""
    bits_of: dict[int, int] = {}
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            bits_of[id(module.weight)] = weight_bits(module)
            bias_quant = getattr(module, "bias_quant", None)
            if module.bias is not None and getattr(bias_quant, "is_quant_enabled", False):
                bits_of[id(module.bias)] = int(bias_quant.quant_injector.bit_width)
    params = bits = 0
    for p in model.parameters():
        params += p.numel()
        bits += p.numel() * bits_of.get(id(p), FLOAT_BITS)
    return {"params": params, "bits": bits}


def attention_comparison(height: int, width: int, channels: int, proj_channels: int,
                         value_bits: int = 1) -> dict[str, Count]:
    """Whole-block counts of the attention modes on one C x H x W map (``attention_count``)."""
    _check_size((height, width))
    return {mode: attention_count(channels, proj_channels, height, width, mode,
                                  value_bits=value_bits) for mode in ("axial", "full", "float")}


def attention_table(height: int, width: int, channels: int, proj_channels: int,
                    markdown: bool = False) -> str:
    """``attention_comparison`` and the core alone (``attention_ops``) as a table."""
    counts = attention_comparison(height, width, channels, proj_channels)
    reference = counts["float"].ops
    header = ["mode", "core OPs", "block BOPs", "block FLOPs", "block OPs", "float / mode"]
    body = [[mode, f"{attention_ops(height, width, channels, proj_channels, mode)['ops']:,}",
             f"{c.bops:,}", f"{c.flops:,}", f"{c.ops:,.0f}", _fmt_ratio(reference, c.ops)]
            for mode, c in counts.items()]
    title = (f"attention at {height}x{width}, C={channels}, d={proj_channels} "
             "(core: attention_ops, projections excluded)")
    return f"{title}\n\n{format_table(header, body, markdown)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m brevitas_models.opcount",
        description="BOPs, FLOPs and OPs = BOPs/64 + FLOPs per module of a network at an input "
                    "size, and the speedup against its full-precision twin (module docstring: "
                    "the conventions).")
    parser.add_argument("--net", default="demo", help=f"network name ({', '.join(NETWORKS)})")
    parser.add_argument("--size", nargs=2, type=int, default=(64, 64), metavar=("H", "W"))
    parser.add_argument("--width", type=int, default=None, help="base width (default per net)")
    parser.add_argument("--markdown", action="store_true", help="Markdown tables")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    parser.add_argument("--attention", nargs=2, type=int, metavar=("H", "W"),
                        help="also compare the attention modes on an H x W map")
    parser.add_argument("--channels", type=int, default=256, help="C for --attention (256)")
    parser.add_argument("--proj-channels", type=int, default=32, help="d for --attention (32)")
    args = parser.parse_args(argv)
    try:
        report = count_network(args.net, args.size, args.width)
        print(report.table(args.markdown))
        print(f"\nspeedup against the full-precision twin: {report.speedup:.1f}x")
        if args.attention:
            print("\n" + attention_table(*args.attention, args.channels, args.proj_channels,
                                         args.markdown))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report.to_dict(), f, indent=1)
    except (ModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
