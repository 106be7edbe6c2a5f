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

from sim.bundle import Node
from sim.datatypes import dtype
from sim.exact import matmul_int
from sim.kernels import register
from sim.kernels.upsample import upsample

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


def branch_accumulators(x: np.ndarray, weights: np.ndarray,
                        dilations: list[int]) -> Iterator[np.ndarray]:
    """Each branch's ``acc`` (N, H, W, Cout) int64 of -1/+1 ``x`` (N, H, W, Cin), -1 padding,
    one branch at a time."""
    x = np.asarray(x, dtype=np.int8)  # +-1: the windows stay small
    weights = np.asarray(weights, dtype=np.int8)
    n, h, w, cin = x.shape
    k_branches, cout = weights.shape[:2]
    if weights.shape != (k_branches, cout, cin, 3, 3) or k_branches != len(dilations):
        raise ValueError(
            f"weights have shape {weights.shape}, expected (K, Cout, Cin, 3, 3) with "
            f"K={len(dilations)}, Cin={cin}"
        )
    dmax = max(dilations)
    xpad = np.pad(x, ((0, 0), (dmax, dmax), (dmax, dmax), (0, 0)), constant_values=-1)
    for k, d in enumerate(dilations):
        windows = [
            xpad[:, dmax + (a - 1) * d: dmax + (a - 1) * d + h,
                 dmax + (b - 1) * d: dmax + (b - 1) * d + w, :]
            for a in range(3) for b in range(3)
        ]
        cols = np.concatenate(windows, axis=-1).reshape(-1, TAPS * cin)
        # (Cout, Cin, 3, 3) -> (3, 3, Cin, Cout) -> (9 Cin, Cout), taps in the windows' order
        wmat = weights[k].transpose(2, 3, 1, 0).reshape(TAPS * cin, cout)
        yield matmul_int(cols, wmat).reshape(n, h, w, cout)


def branch_sum(x: np.ndarray, weights: np.ndarray, gains: np.ndarray,
               dilations: list[int]) -> np.ndarray:
    """The integer branch sum ``S`` (N, H, W, Cout) before upsampling."""
    gains = np.asarray(gains, dtype=np.int64)
    expected = (len(dilations), np.asarray(weights).shape[1])
    if gains.shape != expected:
        raise ValueError(f"gains have shape {gains.shape}, expected (K, Cout) = {expected}")
    total = None
    for k, acc in enumerate(branch_accumulators(x, weights, dilations)):
        acc *= gains[k]
        total = acc if total is None else total + acc
    return total


def multi_branch_upsample(x: np.ndarray, weights: np.ndarray, gains: np.ndarray,
                          dilations: list[int], mode: str) -> np.ndarray:
    """The layer's output: ``S`` upsampled x2, int64 (N, 2H, 2W, Cout)."""
    x = np.asarray(x)
    if x.size and not np.isin(x, (-1, 1)).all():
        raise ValueError("input must hold -1/+1 values")
    if np.asarray(weights).size and not np.isin(weights, (-1, 1)).all():
        raise ValueError("weights must hold -1/+1 values")
    if np.asarray(gains).size and np.asarray(gains).min() < 0:
        raise ValueError("gains must be nonnegative")
    check_dilations(dilations, x.shape[1], x.shape[2])
    return upsample(branch_sum(x, weights, gains, dilations), FACTOR, mode)


@register("MultiBranchUpsample")
def multi_branch_upsample_kernel(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x, weights, gains = inputs
    gate_type = dtype(str(node.attr("gateDataType")))
    if np.asarray(gains).size and np.asarray(gains).max() > gate_type.max:
        raise ValueError(f"a gain of {int(np.asarray(gains).max())} does not fit the gate type "
                         f"{gate_type.name}")
    return multi_branch_upsample(x, weights, gains, [int(d) for d in node.attr("Dilations")],
                                 str(node.attr("Mode")))
