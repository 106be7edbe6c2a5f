"""Multi-branch parallel upsampling (MBU): the definition of our MultiBranchUpsample layer.

Inputs (NHWC):

* ``x`` (N, H, W, Cin): a bipolar map, values -1/+1;
* ``weights`` (K, Cout, Cin, 3, 3): -1/+1, branch ``k`` a 3x3 convolution with dilation
  ``Dilations[k]``;
* ``gains`` (K, Cout): nonnegative integers ``G[k, c]``, each branch's per-channel gate in
  fixed point (the real gate is ``G / 2^F``; ``F`` lives in the scale after the layer).

Branch ``k`` pads ``x`` with -1 (our models' padding of binary activations) by ``d_k`` on every
side and computes the integer accumulator ``acc_k[n, y, x, c] = sum W[k, c, i, a, b] *
xpad[n, y + (a - 1) d_k, x + (b - 1) d_k, i]``. The branch sum ``S = sum_k G[k, c] * acc_k`` is
an exact integer; the layer outputs ``S`` upsampled x2 (nearest, or the unnormalized integer
bilinear sum of :mod:`sim.kernels.upsample`, 16 times torch's ``align_corners=False`` value).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

import sim.bitconv as bitconv
from sim.bitconv import map_tiles, pack_pixels, weight_words, window_words_major
from sim.bundle import Node
from sim.datatypes import dtype, wrap
from sim.exact import packed_matches
from sim.kernels import register, register_fusion
from sim.kernels.matrix import threshold_bits, threshold_output
from sim.kernels.upsample import bilinear_gain, upsample
from sim.layout import columns_into
from sim.packedmap import ONE_BIT_TYPES, PackedMap, pack_channel_bits

FACTOR = 2
TAPS = 9
# The widest fixed-point gate (unsigned bits) the torch block and the lowering accept.
MAX_GATE_BITS = 16


def check_dilations(dilations: list[int], h: int, w: int) -> None:
    """Each dilation ``d`` must satisfy ``1 <= d < min(H, W)``: at a larger one the branch's
    off-centre taps read only padding, never a neighbour in the map."""
    for k, d in enumerate(dilations):
        if d < 1 or d >= min(h, w):
            raise ValueError(
                f"dilation {d} of branch {k} does not fit a {h}x{w} map "
                f"(needs 1 <= d < {min(h, w)})"
            )


def _check_weights(x: np.ndarray, weights: np.ndarray, dilations: list[int]) -> None:
    k_branches, cout = weights.shape[:2]
    if weights.shape != (k_branches, cout, x.shape[-1], 3, 3) or k_branches != len(dilations):
        raise ValueError(
            f"weights have shape {weights.shape}, expected (K, Cout, Cin, 3, 3) with "
            f"K={len(dilations)}, Cin={x.shape[-1]}"
        )


def branch_accumulators(x: np.ndarray, weights: np.ndarray, dilations: list[int],
                        channel_major: bool = False) -> Iterator[np.ndarray]:
    """Each branch's ``acc`` (N, H, W, Cout) int32 of -1/+1 ``x`` (N, H, W, Cin), -1 padding,
    one branch at a time (with ``channel_major`` as (Cout, N * H * W)): XNOR popcounts over
    packed windows (``acc = 2 * matches - 9 Cin``), -1 padding being the bit 0 of the packed
    map's zero bytes."""
    weights = np.asarray(weights)
    _check_weights(x, weights, dilations)
    n, h, w, cin = x.shape
    dmax = max(dilations)
    packed = x.bits if isinstance(x, PackedMap) else pack_pixels(np.asarray(x) > 0)
    padded = np.zeros((n, h + 2 * dmax, w + 2 * dmax, packed.shape[-1]), dtype=np.uint8)
    padded[:, dmax : dmax + h, dmax : dmax + w] = packed
    k_bits = TAPS * cin

    def accumulator(rows, ww):
        acc = packed_matches(rows[0], ww, k_bits, channel_major=True, words_major=True)
        acc *= 2
        acc -= k_bits
        return acc

    for k, d in enumerate(dilations):
        # (Cout, Cin, 3, 3) -> (3, 3, Cin, Cout) -> (9 Cin, Cout), taps in the windows' order
        w_bits = (weights[k].transpose(2, 3, 1, 0).reshape(k_bits, -1) > 0).astype(np.uint8)
        ww = weight_words(w_bits, TAPS, cin)
        # the dilation-d windows of the map padded by d sit inside the one padded by dmax
        part = padded[:, dmax - d : dmax + h + d, dmax - d : dmax + w + d]
        acc = map_tiles([part], (3, 3), (1, 1), (d, d), lambda rows, ww=ww: accumulator(rows, ww),
                        window_words_major, channel_major=True, transpose=not channel_major)
        yield acc if channel_major else acc.reshape(n, h, w, -1)


def branch_sum(x: np.ndarray, weights: np.ndarray, gains: np.ndarray,
               dilations: list[int]) -> np.ndarray:
    """The integer branch sum ``S`` (N, H, W, Cout) before upsampling: int16 or int32 where the
    bound ``sum_k max_c G[k, c] * 9 Cin`` times the bilinear gain fits, else int64."""
    total = _branch_sum_channels(x, weights, gains, dilations)
    n, h, w, _ = np.shape(x)
    out = np.empty((n * h * w, total.shape[0]), dtype=total.dtype)
    columns_into(out, total)
    return out.reshape(n, h, w, -1)


def _branch_sum_channels(x, weights: np.ndarray, gains: np.ndarray,
                         dilations: list[int]) -> np.ndarray:
    """:func:`branch_sum` channels-major, (Cout, N * H * W)."""
    gains = np.asarray(gains, dtype=np.int64)
    expected = (len(dilations), np.asarray(weights).shape[1])
    if gains.shape != expected:
        raise ValueError(f"gains have shape {gains.shape}, expected (K, Cout) = {expected}")
    bound = int(gains.max(initial=0)) * len(dilations) * TAPS * np.shape(x)[-1]
    reach = bound * bilinear_gain(FACTOR)
    wide = np.int16 if reach < 1 << 15 else np.int32 if reach < 1 << 31 else np.int64
    total = None
    for k, acc in enumerate(branch_accumulators(x, weights, dilations, channel_major=True)):
        term = acc.astype(wide, copy=False) * gains[k].astype(wide)[:, None]
        if total is None:
            total = term
        else:
            total += term
    return total


def _checked_input(x, weights: np.ndarray, gains: np.ndarray, dilations: list[int]):
    """The layer's input checks; ``x`` as an array of -1/+1 or a BIPOLAR packed map."""
    if isinstance(x, PackedMap) and not x.bipolar:
        x = x.unpack()
    if not isinstance(x, PackedMap):
        x = np.asarray(x)
        if not _all_signs(x):
            raise ValueError("input must hold -1/+1 values")
    if not _all_signs(np.asarray(weights)):
        raise ValueError("weights must hold -1/+1 values")
    if np.asarray(gains).size and np.asarray(gains).min() < 0:
        raise ValueError("gains must be nonnegative")
    check_dilations(dilations, x.shape[1], x.shape[2])
    return x


def multi_branch_upsample(x: np.ndarray, weights: np.ndarray, gains: np.ndarray,
                          dilations: list[int], mode: str) -> np.ndarray:
    """The layer's output: ``S`` upsampled x2 (N, 2H, 2W, Cout), in the narrowest of int16,
    int32 and int64 that the bound of :func:`branch_sum` allows."""
    x = _checked_input(x, weights, gains, dilations)
    total = branch_sum(x, weights, gains, dilations)
    return upsample(total, FACTOR, mode, int16_fits=total.dtype == np.int16)


def _grid_channels(x, weights: np.ndarray, gains: np.ndarray,
                   dilations: list[int]) -> np.ndarray:
    """The branch sum channels-major as a grid, (Cout, N, H, W)."""
    x = _checked_input(x, weights, gains, dilations)
    n, h, w, _ = x.shape
    total = _branch_sum_channels(x, weights, gains, dilations)
    return total.reshape(total.shape[0], n, h, w)


def _all_signs(a: np.ndarray) -> bool:
    """Every value is -1 or +1 (true for an empty array)."""
    if not a.size:
        return True
    if a.dtype.kind not in "iu":
        return bool(np.isin(a, (-1, 1)).all())
    return int(a.min()) >= -1 and int(a.max()) <= 1 and np.count_nonzero(a) == a.size


def _gains_fit(node: Node, gains: np.ndarray) -> None:
    gate_type = dtype(str(node.attr("gateDataType")))
    if np.asarray(gains).size and np.asarray(gains).max() > gate_type.max:
        raise ValueError(f"a gain of {int(np.asarray(gains).max())} does not fit the gate type "
                         f"{gate_type.name}")


@register("MultiBranchUpsample", packed_inputs=True)
def multi_branch_upsample_kernel(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x, weights, gains = inputs
    _gains_fit(node, gains)
    return multi_branch_upsample(x, weights, gains, [int(d) for d in node.attr("Dilations")],
                                 str(node.attr("Mode")))


@register_fusion("MultiBranchUpsample", "Thresholding", packed_inputs=True, packs=True)
def mbu_thresholds(mbu: Node, thresholding: Node, mbu_inputs: list, rest: list[np.ndarray],
                   packed: bool = False) -> np.ndarray | PackedMap | None:
    """The MBU and the thresholds that read its output, channels-major: the upsampled sum is
    wrapped to the MBU's declared type and thresholded per channel without being built
    pixels-major; a one-bit result is packed where asked."""
    x, weights, gains = mbu_inputs
    thresholds = np.asarray(rest[0])
    _gains_fit(mbu, gains)
    grid = _grid_channels(x, weights, gains, [int(d) for d in mbu.attr("Dilations")])
    channels, n, h, w = grid.shape
    if thresholds.ndim != 2 or thresholds.shape[0] not in (1, channels):
        return None
    out_type = thresholding.out_dtypes[0]
    pack = packed and out_type in ONE_BIT_TYPES
    mode, int16 = str(mbu.attr("Mode")), grid.dtype == np.int16

    def group(cs: slice) -> np.ndarray:
        """Channels ``cs`` upsampled along whole rows, wrapped to the MBU's declared type,
        thresholded: packed bits (pixels, bytes) or values (channels, pixels)."""
        up = upsample(grid[cs], FACTOR, mode, int16_fits=int16, axes=(2, 3))
        up = wrap(up, mbu.out_dtypes[0]).reshape(up.shape[0], -1)
        t = thresholds if thresholds.shape[0] == 1 else thresholds[cs]
        if pack:
            return pack_channel_bits(threshold_bits(thresholding, up, t, channel_axis=0))
        return threshold_output(thresholding, up, t, channel_axis=0)

    # one group of whole bytes of channels a thread
    threads = max(1, bitconv.THREADS)
    size = -(-channels // threads)
    size = -(-size // 8) * 8
    slices = [slice(c, min(c + size, channels)) for c in range(0, channels, size)]
    parts = list(bitconv.pool().map(group, slices)) if threads > 1 and len(slices) > 1 else \
        [group(cs) for cs in slices]
    oh, ow = h * FACTOR, w * FACTOR
    if pack:
        bits = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
        return PackedMap(bits.reshape(n, oh, ow, -1), channels, out_type == "BIPOLAR")
    values = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    container = dtype(out_type).container if dtype(out_type).is_integer else values.dtype
    out = np.empty((n * oh * ow, channels), dtype=container)
    columns_into(out, values)
    return out.reshape(n, oh, ow, channels)
