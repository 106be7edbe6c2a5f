"""A QONNX quantizer's integers, computed from its *input* the way Brevitas computes them:
``q = clip(round(x / scale) + zero_point)``, the activation's integer being ``q - zero_point``
(its value is ``scale * (q - zero_point)``). Dividing the float output by the scale would
accept whatever the output holds; this derivation does not depend on it."""

from __future__ import annotations

import numpy as np
from onnx import NodeProto
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.errors import HwGenError
from hw_gen.lowering.graph import attr

_ROUNDING = {
    "ROUND": np.rint,  # half to even, as Brevitas and qonnx
    "FLOOR": np.floor,
    "CEIL": np.ceil,
    "ROUND_TO_ZERO": np.trunc,
}


def _constant(model: ModelWrapper, node: NodeProto, index: int, what: str) -> np.ndarray:
    value = model.get_initializer(node.input[index])
    if value is None:
        raise HwGenError(f"{node.name} ({node.op_type}): {what} is not a constant")
    return np.asarray(value, dtype=np.float64)


def quant_range(bits: float, signed: bool, narrow: bool) -> tuple[int, int]:
    """The integer range of a quantizer (as qonnx's ``min_int``/``max_int``)."""
    b = int(bits)
    if signed:
        return (-(2 ** (b - 1)) + int(narrow), 2 ** (b - 1) - 1)
    return (0, 2**b - 1 - int(narrow))


def quant_integers(model: ModelWrapper, node: NodeProto, x: np.ndarray) -> np.ndarray:
    """The integers ``q - zero_point`` of ``node`` (Quant or BipolarQuant) for its input ``x``."""
    x = np.asarray(x, dtype=np.float64)
    if node.op_type == "BipolarQuant":
        return np.where(x >= 0, 1, -1).astype(np.int64)
    scale = _constant(model, node, 1, "scale")
    zero = _constant(model, node, 2, "zero point")
    bits = _constant(model, node, 3, "bit width")
    if bits.size != 1:
        raise HwGenError(f"{node.name} (Quant): bit width is not a scalar")
    mode = str(attr(node, "rounding_mode", "ROUND")).upper()
    if mode not in _ROUNDING:
        raise HwGenError(f"{node.name} (Quant): rounding mode {mode} is not supported")
    lo, hi = quant_range(float(bits.reshape(-1)[0]), bool(attr(node, "signed", 1)),
                         bool(attr(node, "narrow", 0)))
    q = np.clip(_ROUNDING[mode](x / scale) + zero, lo, hi)
    return np.asarray(q - zero, dtype=np.float64).round().astype(np.int64)
