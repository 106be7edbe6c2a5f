"""MVAU, VVAU and Thresholding: products, accumulator wrap, multi-threshold activation.

FINN semantics (matrixvectoractivation.py, vectorvectoractivation.py, thresholding.py):

- MVAU weights are (MW, MH), thresholds (MH, n) or (1, n). ``binaryXnorMode=1`` takes 0/1
  activations and weights and yields the number of matching bits (XNOR popcount); BIPOLAR
  activations with BIPOLAR weights yield the same popcount of their 0/1 encodings; otherwise
  a plain integer product. With activation the output is ``count + ActVal``, or
  ``2*count - 1`` for a BIPOLAR output (MVAU/VVAU then ignore ActVal).
- The accumulator wraps to ``accDataType`` before thresholds or output, as the hardware's
  fixed-width accumulator does. FINN's Python execution keeps the unbounded value instead.
- Thresholding outputs ``count + ActVal``, and for a BIPOLAR output ``2*(count + ActVal) - 1``.
- PE, SIMD and mem_mode do not change results.

Products are exact by construction: XNOR popcount on packed words; inputs of at most four
bits times BINARY/BIPOLAR weights one bit plane at a time (popcount of AND); anything else
a BLAS product whose exactness bound comes from the declared data types (``sim.exact``).
"""

from __future__ import annotations

import numpy as np

from sim.bitconv import map_rows, pack_pixels
from sim.bundle import Node, SimError
from sim.datatypes import as_int64, dtype, wrap
from sim.exact import max_abs, matmul_int, matmul_method, plane_dot, xnor_popcount
from sim.kernels import register
from sim.packedmap import ONE_BIT_TYPES, PackedMap, wrapped_bits
from sim.thresholds import integer_thresholds, count_thresholds


def activate(
    node: Node, acc: np.ndarray, thresholds: np.ndarray | None, bound: int | None = None,
    channel_axis: int = -1,
) -> np.ndarray:
    """MVAU/VVAU tail: wrap to the accumulator type, then threshold unless noActivation
    (channels along ``channel_axis``). ``bound``, where the caller knows one, is a bound on
    ``|acc|`` from the data types: an accumulator type that holds it cannot wrap, and the
    wrap's scan is skipped."""
    acc = _accumulator(node, acc, bound)
    if node.attr("noActivation"):
        return acc
    if thresholds is None:
        raise SimError(f"{node.label()}: noActivation=0 but no threshold input")
    return threshold_output(node, acc, thresholds, channel_axis)


def activate_bits(node: Node, acc: np.ndarray, thresholds: np.ndarray, bound: int | None,
                  channel_axis: int = -1) -> np.ndarray:
    """:func:`activate` of a thresholded MVAU/VVAU whose output is declared BINARY or
    BIPOLAR, as the bit (uint8 0/1) the executor's wrap to that type keeps."""
    acc = _accumulator(node, acc, bound)
    if thresholds is None:
        raise SimError(f"{node.label()}: noActivation=0 but no threshold input")
    return threshold_bits(node, acc, thresholds, channel_axis)


def _accumulator(node: Node, acc: np.ndarray, bound: int | None) -> np.ndarray:
    acc_type = dtype(node.attr("accDataType"))
    if bound is not None and acc_type.min <= -bound and bound <= acc_type.max:
        if bound < 1 << 31 and not (acc.dtype.kind in "iu" and acc.dtype.itemsize <= 4):
            return acc.astype(np.int32)
        if acc.dtype.kind not in "iu":
            return as_int64(acc)
        return acc
    wrapped = wrap(acc, acc_type)  # in the type's container: int32 up to 32 bits
    return wrapped if wrapped.dtype.kind in "iu" else as_int64(wrapped)


def _act_val(node: Node) -> int:
    """ActVal, which an MVAU/VVAU with a BIPOLAR output ignores."""
    if node.op_type in ("MVAU", "VVAU") and node.attr("outputDataType") == "BIPOLAR":
        return 0
    return int(node.attr("ActVal"))


def threshold_output(node: Node, x: np.ndarray, thresholds: np.ndarray,
                     channel_axis: int = -1) -> np.ndarray:
    """``count + ActVal`` of the thresholds each value reaches (channels along
    ``channel_axis``), or for a BIPOLAR
    output ``2 * count - 1`` (MVAU/VVAU) / ``2 * (count + ActVal) - 1`` (Thresholding)."""
    count = count_thresholds(x, thresholds, channel_axis=channel_axis, narrow=True)
    act_val = _act_val(node)
    if count.dtype != np.int64 and abs(act_val) >= 1 << 14:
        count = count.astype(np.int64)
    if act_val:
        count += act_val
    if node.attr("outputDataType") == "BIPOLAR":
        count *= 2
        count -= 1
    return count


def threshold_bits(node: Node, x: np.ndarray, thresholds: np.ndarray,
                   channel_axis: int = -1) -> np.ndarray:
    """The bit (uint8 0/1) the wrap to the declared one-bit output type keeps of
    :func:`threshold_output`: ``(count + ActVal) mod 2`` where the output is BINARY and not
    BIPOLAR by attribute, or BIPOLAR by both (one comparison where there is one threshold a
    channel); otherwise the bit of the values."""
    declared = node.out_dtypes[0]
    parity = (node.attr("outputDataType") == "BIPOLAR") == (declared == "BIPOLAR")
    thr = np.asarray(thresholds)
    if not parity:
        return wrapped_bits(threshold_output(node, x, thr, channel_axis), declared == "BIPOLAR")
    flip = _act_val(node) & 1
    if thr.ndim == 2 and thr.shape[1] == 1 and x.dtype.kind in "iu" and x.dtype.itemsize <= 4:
        t = integer_thresholds(x.dtype, thr)[:, 0]
        shape = [1] * x.ndim
        shape[channel_axis] = t.shape[0]
        bits = np.greater_equal(x, t.reshape(shape)).view(np.uint8)
    else:
        bits = count_thresholds(x, thr, channel_axis=channel_axis, narrow=True)
        bits = (bits & 1).astype(np.uint8)
    if flip:
        bits ^= 1
    return bits


def as_bits(values: np.ndarray, bipolar: bool, what: str, node: Node) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype.kind not in "iu":
        v = as_int64(v)
    bits = (v + 1) >> 1 if bipolar else v
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        enc = "-1/+1" if bipolar else "0/1"
        raise SimError(f"{node.label()}: {what} must hold {enc} values for an XNOR product")
    return bits.astype(np.uint8, copy=False)


# Inputs of at most this many bits times {0,1} / {-1,+1} weights go through bit planes.
PLANE_MAX_BITS = 4


def plane_route(idt: str, wdt: str) -> bool:
    """Few-bit integer inputs times BINARY or BIPOLAR weights: a popcount per input bit."""
    i = dtype(idt)
    return i.kind in ("int", "ternary") and i.bits <= PLANE_MAX_BITS and wdt in ("BINARY", "BIPOLAR")


def product_bound(node: Node, w: np.ndarray) -> int | None:
    """A bound on the MVAU's ``|accumulator|`` from its input type and weights."""
    if node.attr("binaryXnorMode") or (
        node.attr("inputDataType") == "BIPOLAR" and node.attr("weightDataType") == "BIPOLAR"
    ):
        return w.shape[0]  # a count of agreeing bits
    i = dtype(node.attr("inputDataType"))
    if not i.is_integer:
        return None
    return max(abs(int(i.min)), abs(int(i.max))) * max_abs(w) * w.shape[0]


def _rows(node: Node, a: np.ndarray, w: np.ndarray, thresholds, bound: int | None) -> np.ndarray:
    """The MVAU's output of input rows ``a``, blocks of rows on the tile threads."""
    return map_rows(lambda rows: activate(node, _product(node, rows, w, bound), thresholds, bound),
                    a)


def product_route(node: Node) -> str:
    """How an MVAU multiplies: "xnor" (binaryXnorMode), "bipolar" (BIPOLAR x BIPOLAR, the
    same popcount of the 0/1 encodings), "plane" (few-bit inputs times BINARY/BIPOLAR weights,
    a popcount per input bit) or "matmul" (an integer product)."""
    idt, wdt = node.attr("inputDataType"), node.attr("weightDataType")
    if node.attr("binaryXnorMode"):
        return "xnor"
    if idt == "BIPOLAR" and wdt == "BIPOLAR":
        return "bipolar"
    return "plane" if plane_route(idt, wdt) else "matmul"


def _product(node: Node, a: np.ndarray, w: np.ndarray, bound: int | None) -> np.ndarray:
    """The MVAU's exact accumulator, (rows of ``a``, MH) int64, by the cheapest exact path."""
    idt, wdt = node.attr("inputDataType"), node.attr("weightDataType")
    route = product_route(node)
    if route in ("xnor", "bipolar"):
        bipolar = route == "bipolar"
        return xnor_popcount(as_bits(a, bipolar, "input", node),
                             as_bits(w, bipolar, "weights", node))
    if route == "plane":
        i = dtype(idt)
        return plane_dot(a, i.bits, i.signed, as_bits(w, wdt == "BIPOLAR", "weights", node),
                         wdt == "BIPOLAR")
    a = as_int64(a) if a.dtype.kind == "f" else a
    method = "auto" if bound is None else matmul_method(bound, 1, 1)
    return matmul_int(a, as_int64(w), method=method)


@register("MVAU", reshape=True, packed_inputs=True)
def mvau(node: Node, inputs: list) -> np.ndarray:
    x, w = inputs[0], inputs[1]
    mw, mh = int(node.attr("MW")), int(node.attr("MH"))
    if w.shape != (mw, mh):
        raise SimError(f"{node.label()}: weights have shape {w.shape}, expected (MW, MH) = ({mw}, {mh})")
    bound = product_bound(node, w)
    if isinstance(x, PackedMap):
        if not (x.bipolar and x.shape[-1] == mw and product_route(node) == "matmul"):
            x = x.unpack()
        else:  # the -1/+1 values straight from the bits: whole bytes unpack in one row
            a = (np.unpackbits(x.bits.reshape(-1)).reshape(-1, mw) if mw % 8 == 0 else
                 np.unpackbits(x.bits.reshape(-1, x.bits.shape[-1]), axis=-1, count=mw))
            a = a.view(np.int8)
            a <<= 1
            a -= 1
            out = _rows(node, a, w, inputs[2] if len(inputs) > 2 else None, bound)
            return out.reshape(x.shape[:-1] + (mh,))
    if x.shape[-1] != mw and x.size % mw:
        raise SimError(f"{node.label()}: input shape {x.shape} does not hold vectors of MW={mw}")
    a = x.reshape(-1, mw)
    out = _rows(node, a, w, inputs[2] if len(inputs) > 2 else None, bound)
    lead = x.shape[:-1] if x.shape[-1] == mw else (a.shape[0],)
    return out.reshape(lead + (mh,))


@register("VVAU", reshape=True)
def vvau(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x, w = inputs[0], inputs[1]
    kh, kw = (int(k) for k in node.attr("Kernel"))
    channels = int(node.attr("Channels"))
    kk = kh * kw
    if node.attr("binaryXnorMode", 0):
        raise SimError(
            f"{node.label()}: binaryXnorMode=1 is not supported (FINN's own execution of VVAU "
            "ignores it, so there is no reference to match)"
        )
    if w.shape != (channels, 1, kh, kw):
        raise SimError(f"{node.label()}: weights have shape {w.shape}, expected ({channels}, 1, {kh}, {kw})")
    if x.ndim != 4 or x.shape[-1] != kk * channels:
        raise SimError(f"{node.label()}: input shape {x.shape}, expected (N, H, W, {kk * channels})")
    # FINN's VVAU reads a window generator's output as (k, c); any other producer's as
    # (c // PE, k, PE), the interleaving of a depthwise stream folded by PE.
    pe = channels if node.derived.get("input_from_window", False) else int(node.attr("PE"))
    n, h, wd, _ = x.shape
    xs = as_int64(x).reshape(n, h, wd, channels // pe, kk, pe).transpose(0, 1, 2, 4, 3, 5)
    xs = xs.reshape(n, h, wd, kk, channels)
    wk = as_int64(w).reshape(channels, kk).T  # (kk, C)
    bipolar = node.attr("inputDataType") == "BIPOLAR" and node.attr("weightDataType") == "BIPOLAR"
    acc = np.einsum("nhwkc,kc->nhwc", xs, wk)
    if bipolar:
        acc = (acc + kk) >> 1
    return activate(node, acc, inputs[2] if len(inputs) > 2 else None)


@register("Thresholding", reshape=True, packs=True)
def thresholding(node: Node, inputs: list[np.ndarray], packed: bool = False) -> np.ndarray | PackedMap:
    x = inputs[0]
    out_type = node.out_dtypes[0]
    if packed and out_type in ONE_BIT_TYPES and np.ndim(x) == 4:
        bits = threshold_bits(node, np.asarray(x), inputs[1])
        return PackedMap(pack_pixels(bits), bits.shape[-1], out_type == "BIPOLAR")
    return threshold_output(node, x, inputs[1])
