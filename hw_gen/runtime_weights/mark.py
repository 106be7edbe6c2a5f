"""Which layers FINN can make runtime-writable, and the record of them in the package.

FINN streams the weights of an MVAU from a memory with an AXI-lite port when the layer has
``mem_mode=internal_decoupled`` and ``runtime_writeable_weights=1``; a thresholding layer
with ``runtime_writeable_weights=1`` does the same for its thresholds. Thresholds absorbed
into an MVAU stay in its HLS (FINN writes only the MVAU's weights at run time). FINN's own
driver writes layer ``i`` (the i-th writable MVAU/thresholding layer in graph order) through
``StreamingDataflowPartition_<p>/s_axilite_<i>`` of the overlay, ``p`` the accelerator's
partition (1: after the input DMA's partition).
"""

from __future__ import annotations

from typing import Any

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

ACCEL_PARTITION = 1
KINDS = (("MVAU", "weights"), ("Thresholding", "thresholds"))


def layer_kind(op_type: str) -> str | None:
    """``weights`` for FINN's MVAU, ``thresholds`` for its thresholding layer, else None."""
    for prefix, kind in KINDS:
        if op_type == prefix or op_type.startswith(prefix + "_"):
            return kind
    return None


def _is_hw(node) -> bool:
    from finn.util.fpgadataflow import is_fpgadataflow_node

    return is_fpgadataflow_node(node)


def _candidates(model: ModelWrapper):
    """(node, kind, FINN instance) of every hardware MVAU and thresholding layer."""
    for node in model.graph.node:
        kind = layer_kind(node.op_type)
        if kind is not None and _is_hw(node):
            yield node, kind, getCustomOp(node)


def mark_writable(model: ModelWrapper) -> list[str]:
    """Make every MVAU's weights and every thresholding layer's thresholds runtime-writable
    (in place); returns the layers' names."""
    names = []
    for node, _, inst in _candidates(model):
        if "mem_mode" in inst.get_nodeattr_types():
            inst.set_nodeattr("mem_mode", "internal_decoupled")
        inst.set_nodeattr("runtime_writeable_weights", 1)
        names.append(node.name)
    return names


def writable_layers(model: ModelWrapper) -> list[dict[str, Any]]:
    """The runtime-writable layers of a lowered graph, in FINN's AXI-lite order."""
    layers = []
    for node, kind, inst in _candidates(model):
        if not inst.get_nodeattr("runtime_writeable_weights"):
            continue
        tensor = node.input[1]
        layers.append({
            "name": node.name, "op_type": node.op_type, "kind": kind, "tensor": tensor,
            "shape": [int(s) for s in model.get_initializer(tensor).shape],
            "dtype": inst.get_nodeattr("weightDataType"),
            "axilite": f"StreamingDataflowPartition_{ACCEL_PARTITION}/s_axilite_{len(layers)}",
        })
    return layers


def apply_runtime_weights(model: ModelWrapper) -> tuple[ModelWrapper, list[str]]:
    """The build's ``--runtime-weights``: mark the layers, then size their accumulators for
    any weights of their data type (FINN's width minimization does so for writable layers)
    and check the graph's data types again."""
    from hw_gen.lowering.widths import check_datatypes, minimize_widths

    names = mark_writable(model)
    model = minimize_widths(model)
    check_datatypes(model)
    return model, names
