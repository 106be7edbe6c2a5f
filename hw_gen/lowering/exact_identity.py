"""Only exact identities are removed while lowering.

qonnx's ``RemoveIdentityOps`` (run inside FINN's ``Streamline``, ``ConvertQONNXtoFINN`` and
several other passes) drops an Add/Sub within 1e-5 of 0 and a Mul/Div within about 1e-5 of 1
(``np.isclose``'s tolerances). A batch norm with unit statistics and eps 1e-5 is a
``Mul(0.999995)``: dropping it moves the thresholds after it and changes activations (0.4999976
becomes 1). :func:`exact_identities` makes every ``RemoveIdentityOps`` remove only arithmetic
ops whose constant is exactly 0 or 1; other identities (Pad of zeros, Identity, Dropout) are
left to qonnx's own pass unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation import remove

_HIDDEN = "HwgenNearIdentity"
_NEUTRAL = {"Add": 0.0, "Sub": 0.0, "Mul": 1.0, "Div": 1.0}


def _near_identities(model: ModelWrapper) -> list:
    """Arithmetic nodes with a constant close to, but not exactly, their neutral value."""
    found = []
    for node in model.graph.node:
        neutral = _NEUTRAL.get(node.op_type)
        if neutral is None or len(node.input) < 2:
            continue
        value = model.get_initializer(node.input[1])
        if value is None or np.all(value == neutral):
            continue
        if np.isclose(value, np.full_like(value, neutral), atol=1e-5).all():
            found.append(node)
    return found


@contextmanager
def exact_identities() -> Iterator[None]:
    """Within the block, ``RemoveIdentityOps`` keeps near-identities (see the module doc)."""
    original = remove.RemoveIdentityOps.apply

    def apply(self, model):
        # hide near-identities from qonnx's pass behind an op type it does not remove
        for node in _near_identities(model):
            node.op_type = _HIDDEN + node.op_type
        result, modified = original(self, model)
        for graph in (model.graph, result.graph):  # the pass may return a copy
            for node in graph.node:
                if node.op_type.startswith(_HIDDEN):
                    node.op_type = node.op_type[len(_HIDDEN):]
        return result, modified

    remove.RemoveIdentityOps.apply = apply
    try:
        yield
    finally:
        remove.RemoveIdentityOps.apply = original
