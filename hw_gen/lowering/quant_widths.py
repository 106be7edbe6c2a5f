"""Bit widths the lowering can carry exactly, checked before anything is rewritten.

An activation quantizer (a ``Quant`` on a computed tensor) becomes a MultiThreshold with
``2**bits - 1`` thresholds per channel: its bit width must be a whole number from 2 to
:data:`MAX_ACTIVATION_BITS` (FINN's ConvertQONNXtoFINN converts up to 8 bits and leaves a
wider quantizer a float node; binary activations are ``BipolarQuant``). A weight or bias
quantizer's bit width must be a whole number from 1 to :data:`MAX_CONSTANT_BITS`.
"""

from __future__ import annotations

import math

from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.errors import HwGenError

MAX_ACTIVATION_BITS = 8
MAX_CONSTANT_BITS = 32


def check_quant_widths(model: ModelWrapper) -> None:
    """A one-line error naming the first ``Quant`` node whose bit width cannot be lowered."""
    for node in model.get_nodes_by_op_type("Quant"):
        constant = model.get_initializer(node.input[0]) is not None
        what = "weight/bias quantizer" if constant else "activation quantizer"
        if len(node.input) < 4 or model.get_initializer(node.input[3]) is None:
            raise HwGenError(f"node {node.name} (Quant): the bit width is not a constant")
        value = model.get_initializer(node.input[3])
        if value.size != 1:
            raise HwGenError(f"node {node.name} (Quant): the bit width is not a scalar "
                             f"(shape {tuple(value.shape)})")
        bits = float(value.reshape(-1)[0])
        low, high = (1, MAX_CONSTANT_BITS) if constant else (2, MAX_ACTIVATION_BITS)
        if not math.isfinite(bits) or not bits.is_integer():
            raise HwGenError(f"node {node.name} ({what}): bit width {bits:g} is not a whole "
                             "number")
        if not low <= bits <= high:
            hint = (" (binary activations are exported as BipolarQuant)"
                    if not constant and bits == 1 else "")
            raise HwGenError(f"node {node.name} ({what}): bit width {bits:g} is outside "
                             f"{low}..{high}, what the lowering supports{hint}")
