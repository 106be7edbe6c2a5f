"""Per-layer stream schedules derived from the folding.

A layer is modelled as one pipelined loop of ``T`` iterations per frame (one iteration per
clock when nothing stalls). Its schedule says at which iteration it reads each word of each
input stream and writes each word of each output stream. Stalls on an empty input delay every
later iteration (:mod:`hw_gen.hwmodel.fifosim`). The schedules:

- matrix-vector unit (MVAU): per input vector, it reads its MW/SIMD words during the first
  neuron fold (iterations 0..MW/SIMD-1), then writes one PE-wide word at the end of each of
  the MH/PE folds (iteration (n+1)*MW/SIMD - 1): ``T = vectors * MW/SIMD * MH/PE``, FINN's
  own cycle formula;
- sliding window, FINN's RTL generator (default style): the window's elements in the RTL's
  order, one word per cycle, each two cycles after the input word it reads; one input word per
  cycle while the line buffer has room; frames do not overlap. Other generators (HLS, the
  parallel style): an output word of window (oy, ox) waits for the window's last input pixel,
  reads spread over FINN's cycle count;
- padding: an output pixel waits for the input pixel at or before it in raster order;
- nearest upsampling: an output pixel waits for its source pixel;
- duplicate streams: one word in, one word per output out per iteration; add (two streams):
  one word of each in, one out, spread over the layer's cycles;
- concat: per pixel, the words of input 0, then of input 1, ..., one word written per read;
- our layers' upsamplers and multi-branch upsampling: proportional, plus the input rows their
  line buffers look ahead (one row for bilinear, the largest dilation for multi-branch);
- attention: the row pass reads all four inputs in lockstep, the column pass writes the
  output once the frame is in;
- everything else (thresholds, width converters, ...): reads and writes spread evenly over the
  layer's cycles, an output never before the proportional share of its input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.custom_op.registry import getCustomOp


@dataclass
class Schedule:
    """One frame of a layer: ``T`` iterations; ``reads[i]``/``writes[o]``: the iteration of
    each word of input i / output o (non-decreasing)."""

    T: int
    reads: list[np.ndarray]
    writes: list[np.ndarray]
    need: np.ndarray | None = None  # one input, one output: input words each write needs


def words(shape) -> int:
    return int(np.prod(shape[:-1]))


def _attr(inst, name, default=None):
    try:
        return inst.get_nodeattr(name)
    except Exception:  # noqa: BLE001  (an op without the attribute)
        return default


def _spread(n: int, T: int) -> np.ndarray:
    return (np.arange(n, dtype=np.int64) * T) // max(n, 1)


def _strict(a: np.ndarray) -> np.ndarray:
    """At most one word per iteration: each at least one after the previous."""
    k = np.arange(len(a), dtype=np.int64)
    return np.maximum.accumulate(a - k) + k


def _pattern(need: np.ndarray, n_in: int, T: int) -> Schedule:
    """A one-input, one-output schedule from ``need`` (input words each output word needs).

    Reducing (fewer outputs than inputs): reads spread over T, each write at its even share
    of T but not before the read of the last word it needs. Expanding (padding, windows,
    upsampling): writes spread over T less the words needed before the first write, each read
    as late as the first write that needs it allows; the frame starts at the first read.
    """
    n_out = len(need)
    need = np.clip(np.maximum.accumulate(need), 1, n_in)
    if n_out < n_in:
        reads = _spread(n_in, T)
        even = ((np.arange(1, n_out + 1, dtype=np.int64) * T) // n_out) - 1
        return Schedule(T, [reads], [_strict(np.maximum(even, reads[need - 1]))], need)
    span = max(n_out, T - int(need[0]))
    writes = _spread(n_out, span)
    first_use = np.searchsorted(need, np.arange(1, n_in + 1), side="left")
    latest = writes[np.minimum(first_use, n_out - 1)]
    k = np.arange(n_in, dtype=np.int64)
    reads = np.minimum.accumulate((latest - k)[::-1])[::-1] + k
    shift = max(0, -int(reads[0]))
    return Schedule(max(T, int(writes[-1]) + shift + 1), [reads + shift], [writes + shift],
                    need)


def _proportional_need(n_in: int, n_out: int, lookahead: int = 0) -> np.ndarray:
    j = np.arange(1, n_out + 1, dtype=np.int64)
    return np.minimum(n_in, -(-j * n_in // n_out) + lookahead)


def _pixel_need(n_out: int, out_hw, per_out_pixel: int, need_of_pixel) -> np.ndarray:
    """Need (input words) of every output word, from the need of its output pixel."""
    oh, ow = out_hw
    q = np.arange(n_out, dtype=np.int64) // per_out_pixel
    oy, ox = q // ow, q % ow
    return np.maximum.accumulate(need_of_pixel(oy, ox))


def _mvau(inst, n_in: int, n_out: int) -> Schedule:
    sf = inst.get_nodeattr("MW") // inst.get_nodeattr("SIMD")
    nf = inst.get_nodeattr("MH") // inst.get_nodeattr("PE")
    vectors = n_in // sf
    base = np.arange(vectors, dtype=np.int64)[:, None] * (sf * nf)
    reads = (base + np.arange(sf)[None, :]).reshape(-1)
    writes = (base + (np.arange(1, nf + 1) * sf - 1)[None, :]).reshape(-1)
    need = (np.arange(vectors * nf, dtype=np.int64) // nf + 1) * sf
    return Schedule(vectors * sf * nf, [reads], [writes], need)


def _swg_elements(inst, n_out: int) -> np.ndarray | None:
    """The input word (0-based) each output word reads, in FINN's RTL order: per window, the
    elements (ky, kx, channel fold), or (channel fold, ky, kx) when depthwise; None when the
    generator emits whole windows per word."""
    h, w = inst.get_nodeattr("IFMDim")
    oh, ow = inst.get_nodeattr("OFMDim")
    kh, kw = inst.get_nodeattr("ConvKernelDim")
    sy, sx = inst.get_nodeattr("Stride")
    dy, dx = inst.get_nodeattr("Dilation")
    cf = inst.get_nodeattr("IFMChannels") // inst.get_nodeattr("SIMD")
    if n_out != oh * ow * kh * kw * cf or h == 1 or w == 1:
        return None
    oy, ox = np.divmod(np.arange(oh * ow, dtype=np.int64), ow)
    ky, kx, c = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(cf), indexing="ij")
    if _attr(inst, "depthwise", 0) and cf > 1:
        ky, kx, c = (np.moveaxis(a, 2, 0) for a in (ky, kx, c))
    y = oy[:, None] * sy + ky.reshape(-1)[None, :] * dy
    x = ox[:, None] * sx + kx.reshape(-1)[None, :] * dx
    return ((y * w + x) * cf + c.reshape(-1)[None, :]).reshape(-1)


def _swg_stream(elem: np.ndarray, n_in: int, buffer: int) -> Schedule:
    """FINN's RTL generator (swg_template_default): one output word per cycle, each once the
    input word it reads is buffered; one input word per cycle while the buffer has room (the
    oldest buffered word is no longer needed by any later output). Frames do not overlap."""
    need = np.maximum.accumulate(elem) + 1
    oldest_needed = np.minimum.accumulate(elem[::-1])[::-1]
    # outputs that must have left before input word i can overwrite word i - buffer
    before = np.searchsorted(oldest_needed, np.arange(n_in, dtype=np.int64) - buffer,
                             side="right")
    reads = np.arange(n_in, dtype=np.int64)
    for _ in range(len(elem) + n_in):
        writes = _strict(reads[need - 1] + 2)  # buffered, fetched, then on the output
        gate = np.where(before > 0, writes[np.maximum(before, 1) - 1], 0)  # after that fetch
        new = _strict(np.maximum(reads, gate))
        if np.array_equal(new, reads):
            break
        reads = new
    return Schedule(int(max(reads[-1], writes[-1])) + 1, [reads], [writes], need)


def _swg(inst, n_in: int, n_out: int, T: int) -> Schedule:
    rtl_default = hasattr(inst, "select_impl_style") and inst.select_impl_style() == "default"
    elem = _swg_elements(inst, n_out) if rtl_default else None
    if elem is not None:
        return _swg_stream(elem, n_in, int(inst.get_buffer_depth()))
    h, w = inst.get_nodeattr("IFMDim")
    oh, ow = inst.get_nodeattr("OFMDim")
    kh, kw = inst.get_nodeattr("ConvKernelDim")
    sy, sx = inst.get_nodeattr("Stride")
    dy, dx = inst.get_nodeattr("Dilation")
    in_per_px = n_in // (h * w)
    out_per_px = n_out // (oh * ow)

    def need(oy, ox):
        y = np.minimum(h - 1, oy * sy + (kh - 1) * dy)
        x = np.minimum(w - 1, ox * sx + (kw - 1) * dx)
        return (y * w + x + 1) * in_per_px

    return _pattern(_pixel_need(n_out, (oh, ow), out_per_px, need), n_in, T)


def _padding(inst, n_in: int, n_out: int, T: int) -> Schedule:
    h, w = inst.get_nodeattr("ImgDim")
    top, left, bottom, right = inst.get_nodeattr("Padding")
    oh, ow = h + top + bottom, w + left + right
    in_per_px = n_in // (h * w)

    def need(oy, ox):
        iy, ix = oy - top, np.clip(ox - left, -1, w - 1)
        count = np.where(iy < 0, 0, np.where(iy >= h, h * w, iy * w + ix + 1))
        return count * in_per_px

    return _pattern(_pixel_need(n_out, (oh, ow), n_out // (oh * ow), need), n_in, T)


def _nearest(inst, n_in: int, n_out: int, T: int) -> Schedule:
    oh, ow = inst.get_nodeattr("HO"), inst.get_nodeattr("WO")
    h, w = inst.get_nodeattr("HI"), inst.get_nodeattr("WI")
    in_per_px = n_in // (h * w)

    def need(oy, ox):
        return ((oy * h // oh) * w + ox * w // ow + 1) * in_per_px

    return _pattern(_pixel_need(n_out, (oh, ow), n_out // (oh * ow), need), n_in, T)


def _concat(n_ins: list[int], n_out: int) -> Schedule:
    pixels = np.gcd.reduce(n_ins)
    per_px = [n // pixels for n in n_ins]
    step = sum(per_px)
    base = np.arange(pixels, dtype=np.int64)[:, None] * step
    reads, offset = [], 0
    for k in per_px:
        reads.append((base + offset + np.arange(k)[None, :]).reshape(-1))
        offset += k
    return Schedule(pixels * step, reads, [np.arange(n_out, dtype=np.int64)])


def _lookahead_words(inst, op: str, n_in: int) -> int:
    """Input words an upsampler of ours reads ahead of the proportional share (line buffers)."""
    if op.startswith("FoldedUpsample") and _attr(inst, "Mode") == "bilinear":
        return n_in // max(1, inst.get_nodeattr("HI"))
    if op.startswith("MultiBranchUpsample"):
        h = inst.get_nodeattr("IFMDim")[0]
        return max(inst.get_nodeattr("Dilations")) * (n_in // max(1, h))
    return 0


def _attention(inst, n_ins: list[int], n_out: int, T: int) -> Schedule:
    spec = inst.validate()
    row_pass = T * spec.width // (spec.height + spec.width + 1)
    reads = [_spread(n, row_pass) for n in n_ins]
    writes = row_pass + _spread(n_out, T - row_pass)
    return Schedule(T, reads, [writes])


def layer_schedule(node, model) -> Schedule:
    """The schedule of one hardware layer of the FIFO'd graph (FIFOs excluded)."""
    inst = getCustomOp(node)
    op = node.op_type
    n_ins = [words(inst.get_folded_input_shape(i)) for i, t in enumerate(node.input)
             if model.get_initializer(t) is None]
    n_outs = [words(inst.get_folded_output_shape(o)) for o in range(len(node.output))]
    T = max([int(inst.get_exp_cycles()), *n_ins, *n_outs])
    if op.startswith("MVAU"):
        return _mvau(inst, n_ins[0], n_outs[0])
    if op.startswith("ConvolutionInputGenerator"):
        return _swg(inst, n_ins[0], n_outs[0], T)
    if op.startswith("FMPadding"):
        return _padding(inst, n_ins[0], n_outs[0], T)
    if op.startswith("UpsampleNearestNeighbour"):
        return _nearest(inst, n_ins[0], n_outs[0], T)
    if op.startswith("StreamingConcat"):
        return _concat(n_ins, n_outs[0])
    if op.startswith("DuplicateStreams"):
        k = np.arange(n_ins[0], dtype=np.int64)
        return Schedule(n_ins[0], [k], [k] * len(n_outs))
    if (op.startswith(("AddStreams", "Elementwise")) and len(n_ins) == 2
            and n_ins[0] == n_ins[1] == n_outs[0]):
        k = np.arange(n_ins[0], dtype=np.int64)
        return Schedule(max(T, n_ins[0]), [k * T // n_ins[0]] * 2, [k * T // n_ins[0]])
    if op.startswith("AxialAttention"):
        return _attention(inst, n_ins, n_outs[0], T)
    if len(n_ins) == 1 and len(n_outs) == 1:
        need = _proportional_need(n_ins[0], n_outs[0], _lookahead_words(inst, op, n_ins[0]))
        return _pattern(need, n_ins[0], T)
    reads = [_spread(n, T) for n in n_ins]
    writes = []
    for n_out in n_outs:
        even = ((np.arange(1, n_out + 1, dtype=np.int64) * T) // n_out) - 1
        w = even
        for r, n_in in zip(reads, n_ins):
            w = np.maximum(w, r[_proportional_need(n_in, n_out) - 1])
        writes.append(_strict(w))
    return Schedule(T, reads, writes)
