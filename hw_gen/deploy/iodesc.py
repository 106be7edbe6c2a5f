"""The accelerator's I/O description (``io.json``, read by ``driver/iospec.py``) and its
sim bundle, from a build's lowered graph (``OUT/dataflow.onnx``).

The accelerator is the graph's hardware layers. Its input must be the graph input (the
UINT8 NHWC pixels of the input interface); its outputs are the hardware tensors that leave
the hardware: the ``labels`` graph output, or integer scores followed in software by
transposes, a scale and a bias (recorded so the driver gives the model's logits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.bundle import write_bundle
from hw_gen.errors import HwGenError
from hw_gen.lowering.interface import LABELS_NAME
from sim.datatypes import dtype as sim_dtype
from sim.packing import DRIVER_PACKING, pack_bytes

BUNDLE_STEM = "accelerator.sim"
PIXEL_SCALE = 1.0 / 255.0  # the models take 8-bit pixels as k / 255


def _is_hw(node) -> bool:
    from finn.util.fpgadataflow import is_fpgadataflow_node

    return is_fpgadataflow_node(node)


def hardware_model(model: ModelWrapper) -> tuple[ModelWrapper, list[str]]:
    """A copy of ``model`` with only its hardware layers, and the names of its outputs."""
    graph = model.graph
    hw = [n for n in graph.node if _is_hw(n)]
    if not hw:
        raise HwGenError("the graph has no hardware layers: nothing to deploy")
    produced = {t for n in hw for t in n.output}
    graph_outputs = {o.name for o in graph.output}
    for node in hw:
        for t in node.input:
            if t in produced or model.get_initializer(t) is not None:
                continue
            if t != graph.input[0].name:
                src = model.find_producer(t)
                raise HwGenError(f"hardware layer {node.name} reads {t}, computed in software "
                                 f"by {src.name if src else '?'} ({src.op_type if src else '?'})"
                                 ": the accelerator must start at the graph input")
    outputs = [t for n in hw for t in n.output
               if t in graph_outputs or any(not _is_hw(c) for c in model.find_consumers(t))]
    hw_model = ModelWrapper(helper.make_model(helper.make_graph(
        [n for n in hw], graph.name, [graph.input[0]],
        [helper.make_tensor_value_info(t, 1, model.get_tensor_shape(t)) for t in outputs],
        initializer=[i for i in graph.initializer
                     if any(i.name in n.input for n in hw)],
        value_info=[v for v in graph.value_info
                    if v.name not in outputs and v.name != graph.input[0].name]), opset_imports=model.model.opset_import))
    for name in [graph.input[0].name] + outputs + [t for n in hw for t in n.output]:
        hw_model.set_tensor_datatype(name, model.get_tensor_datatype(name))
    return hw_model, outputs


def software_tail(model: ModelWrapper, tensor: str) -> dict[str, Any]:
    """What the model does to a hardware output in software: ``labels``, or ``scores`` with
    the transpose, scale and bias to the model's logits (``scale`` null if more than that)."""
    if tensor == LABELS_NAME:
        return {"kind": "labels"}
    perm: list[int] | None = None
    scale: Any = 1.0
    bias: Any = 0.0
    ops = []
    t = tensor
    graph_outputs = {o.name for o in model.graph.output}
    while t not in graph_outputs:
        consumers = model.find_consumers(t) or []
        if len(consumers) != 1:
            break
        node = consumers[0]
        ops.append(node.op_type)
        const = model.get_initializer(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "Transpose" and scale == 1.0 and bias == 0.0:
            p = list(helper.get_attribute_value(node.attribute[0]))
            perm = p if perm is None else [perm[i] for i in p]
        elif node.op_type == "Mul" and const is not None:
            scale, bias = np.asarray(scale) * const, np.asarray(bias) * const
        elif node.op_type == "Add" and const is not None:
            bias = np.asarray(bias) + const
        else:
            return {"kind": "scores", "scale": None, "software": ops}
        t = node.output[0]
    rank = len(model.get_tensor_shape(tensor))
    return {"kind": "scores", "perm": perm or list(range(rank)), "model_output": t,
            "scale": np.asarray(scale, dtype=np.float32).tolist(),
            "bias": np.asarray(bias, dtype=np.float32).tolist()}


def input_quant(model: ModelWrapper, name: str, info: dict[str, Any]) -> dict[str, Any]:
    """The model's input quantizer, as the input interface found it (``context.json``): the
    graph takes its integers q (the model input is ``q * scale``)."""
    dt = model.get_tensor_datatype(name)
    if dt.name != "UINT8" or info.get("kind") != "uint8_nhwc":
        raise HwGenError(f"graph input {name} is {dt.name} ({info.get('kind', '?')}): the "
                         "driver takes 8-bit pixels (the model's first node must be an "
                         "unsigned 8-bit Quant with zero point 0)")
    return {"scale": float(info["scale"]), "signed": False, "bits": 8,
            "pixel_scale": PIXEL_SCALE}


def _port(name: str, dma: str, dt: str, shape, folded) -> dict[str, Any]:
    folded = [int(s) for s in folded]
    dummy = np.zeros(folded, dtype=np.int64)
    if dt == "BIPOLAR":
        dummy += 1
    packed = pack_bytes(dummy, sim_dtype(dt), **DRIVER_PACKING).shape
    return {"name": name, "dma": dma, "dtype": dt, "shape": [int(s) for s in shape],
            "folded_shape": folded, "packed_shape": [int(s) for s in packed]}


def write_io(dataflow: Path, dest: Path, meta: dict[str, Any],
             input_info: dict[str, Any]) -> dict[str, Any]:
    """Write ``dest/accelerator.sim.{json,npz}`` and return the I/O description."""
    from hw_gen.lowering.pipeline import load_model

    model = load_model(dataflow)
    hw_model, outputs = hardware_model(model)
    json_path, _ = write_bundle(hw_model, dest / BUNDLE_STEM)
    import json

    bundle = json.loads(json_path.read_text())
    folded = {e["name"]: e["folded_shape"] for e in bundle["inputs"] + bundle["outputs"]}
    inp = model.graph.input[0].name
    in_port = _port(inp, "idma0", model.get_tensor_datatype(inp).name,
                    model.get_tensor_shape(inp), folded[inp])
    in_port["quant"] = input_quant(model, inp, input_info)
    out_ports = []
    for i, t in enumerate(outputs):
        if folded.get(t) is None:
            producer = model.find_producer(t)
            folded[t] = getCustomOp(producer).get_folded_output_shape(
                list(producer.output).index(t))
        port = _port(t, f"odma{i}", model.get_tensor_datatype(t).name,
                     model.get_tensor_shape(t), folded[t])
        port.update(software_tail(model, t))
        out_ports.append(port)
    io = {"format": "hwgen-io", "version": 1, "bundle": json_path.name,
          "inputs": [in_port], "outputs": out_ports, **meta}
    from hw_gen.runtime_weights.extract import ACCEL_ONNX
    from hw_gen.runtime_weights.mark import writable_layers

    layers = writable_layers(hw_model)
    if layers:  # what `hw-gen weights` lowers a retrained model against
        hw_model.save(str(dest / ACCEL_ONNX))
        io["runtime_weights"] = layers
    return io
