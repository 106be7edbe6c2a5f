"""Write a FINN dataflow graph as a sim bundle (``<stem>.json`` + ``<stem>.npz``).

The format is documented in :mod:`sim.bundle`. StreamingDataflowPartition nodes are inlined
(their child models' nodes replace them), so a parent graph with partitions runs as one
flat graph. Every node must have a sim kernel; anything else is refused with one line
naming the node and its op type. Output is deterministic: sorted JSON keys, nodes in a
stable topological order, a zip archive with fixed timestamps.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

import sim
from sim.bundle import FORMAT, VERSION, bundle_paths
from sim.kernels import get_kernel, normalise_op_type

# Attributes of FINN's hardware layers that record build products (paths, reports,
# simulation handles) rather than what a layer computes; kept out of bundles so that a
# bundle does not depend on where FINN built.
_BUILD_ATTRS = frozenset(
    {
        "code_gen_dir_cppsim",
        "executable_path",
        "res_hls",
        "cpp_interface",
        "hls_style",
        "gen_top_module",
        "debug_log_path",
    }
)
_WINDOW_OPS = ("ConvolutionInputGenerator", "Im2Col")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class BundleError(ValueError):
    """The graph cannot be written as a sim bundle; the message names the node."""


def _is_hw(node: NodeProto) -> bool:
    for attr in node.attribute:
        if attr.name == "backend":
            return helper.get_attribute_value(attr) in (b"fpgadataflow", "fpgadataflow")
    return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise BundleError(f"attribute value of type {type(value).__name__} cannot be stored")


def _hw_base_attrs(inst: Any) -> set[str]:
    from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp

    return set(HWCustomOp.get_nodeattr_types(inst))


def _raw_attrs(node: NodeProto) -> dict[str, Any]:
    return {a.name: _jsonable(helper.get_attribute_value(a)) for a in node.attribute}


def _node_attrs(node: NodeProto, hw: bool) -> dict[str, Any]:
    """Attributes under their ONNX/FINN names, custom ops' defaults filled in."""
    if not node.domain or node.domain == "ai.onnx":
        return _raw_attrs(node)
    inst = getCustomOp(node)
    keys = set(inst.get_nodeattr_types())
    if hw:
        keys -= _hw_base_attrs(inst) | _BUILD_ATTRS
    # a plain qonnx op may carry ONNX attributes it does not declare (MaxPoolNHWC: dilations)
    attrs = {} if hw else _raw_attrs(node)
    for key in sorted(keys):
        try:
            value = inst.get_nodeattr(key)
        except Exception as err:  # qonnx raises bare Exceptions for unset required attrs
            raise BundleError(
                f"node {node.name} ({node.op_type}): attribute {key!r}: {err}"
            ) from err
        attrs[key] = _jsonable(value)
    return attrs


def _out_dtypes(model: ModelWrapper, node: NodeProto, hw: bool) -> list[str]:
    names = [model.get_tensor_datatype(t).name for t in node.output]
    if hw:
        inst = getCustomOp(node)
        for i in range(len(node.output)):
            names[i] = inst.get_output_datatype(i).name
    return names


def sim_node(node: NodeProto) -> sim.Node:
    """One FINN hardware node as sim's kernels see it (no shape declarations)."""
    hw = _is_hw(node)
    inst = getCustomOp(node)
    return sim.Node(
        name=node.name, op_type=normalise_op_type(node.op_type), impl_op_type=node.op_type,
        domain=node.domain, hw=hw, inputs=list(node.input), outputs=list(node.output),
        attrs=_node_attrs(node, hw),
        out_dtypes=[inst.get_output_datatype(i).name for i in range(len(node.output))],
        in_shapes=[None] * len(node.input), out_shapes=[None] * len(node.output),
    )


def inline_partitions(model: ModelWrapper) -> tuple[ModelWrapper, dict[str, str]]:
    """A copy of ``model`` with every StreamingDataflowPartition replaced by its child
    model's nodes (recursively); also returns node name -> partition node name."""
    model = ModelWrapper(copy.deepcopy(model.model))
    origin: dict[str, str] = {}
    while True:
        sdp = next((n for n in model.graph.node if n.op_type == "StreamingDataflowPartition"), None)
        if sdp is None:
            return model, origin
        child_path = getCustomOp(sdp).get_nodeattr("model")
        if not child_path or not Path(child_path).exists():
            raise BundleError(
                f"node {sdp.name} (StreamingDataflowPartition): model {child_path!r} not found"
            )
        child = ModelWrapper(child_path)
        if len(child.graph.input) != len(sdp.input) or len(child.graph.output) != len(sdp.output):
            raise BundleError(
                f"node {sdp.name} (StreamingDataflowPartition): I/O count differs from its model"
            )
        _rename_child(model, child, sdp)
        index = list(model.graph.node).index(sdp)
        model.graph.node.remove(sdp)
        for offset, child_node in enumerate(child.graph.node):
            model.graph.node.insert(index + offset, child_node)
            origin[child_node.name] = origin.get(sdp.name, sdp.name)
        boundary = {t.name for t in child.graph.input} | {t.name for t in child.graph.output}
        existing_inits = {i.name for i in model.graph.initializer}
        for init in child.graph.initializer:
            if init.name not in existing_inits:
                model.graph.initializer.append(init)
        for vi in child.graph.value_info:
            if vi.name not in boundary:
                model.graph.value_info.append(vi)
        for name in _child_tensor_names(child):
            if name not in boundary:
                model.set_tensor_datatype(name, child.get_tensor_datatype(name))


def _child_tensor_names(child: ModelWrapper) -> list[str]:
    names = {t for n in child.graph.node for t in list(n.input) + list(n.output) if t}
    return sorted(names)


def _rename_child(parent: ModelWrapper, child: ModelWrapper, sdp: NodeProto) -> None:
    """Give the child's boundary tensors the partition node's names, and move its internal
    tensors out of the way of the parent's names."""
    targets = {t.name: sdp.input[i] for i, t in enumerate(child.graph.input)}
    targets.update({t.name: sdp.output[i] for i, t in enumerate(child.graph.output)})
    taken = set(parent.get_all_tensor_names()) | {i.name for i in parent.graph.initializer}
    for name in _child_tensor_names(child):
        if name not in targets and name in taken:
            child.rename_tensor(name, f"{sdp.name}/{name}")
    # Two phases so that swapped or chained names cannot merge.
    for i, old in enumerate(list(targets)):
        child.rename_tensor(old, f"__boundary_{i}__")
    for i, new in enumerate(targets.values()):
        child.rename_tensor(f"__boundary_{i}__", new)


def _topological(model: ModelWrapper) -> list[NodeProto]:
    """Nodes in topological order; ties keep the graph's order."""
    nodes = list(model.graph.node)
    producer = {t: i for i, n in enumerate(nodes) for t in n.output}
    deps = [{producer[t] for t in n.input if t in producer} for n in nodes]
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < len(nodes):
        ready = [i for i in range(len(nodes)) if i not in placed and deps[i] <= placed]
        if not ready:
            stuck = next(n.name for i, n in enumerate(nodes) if i not in placed)
            raise BundleError(f"node {stuck}: the graph has a cycle")
        order.append(ready[0])
        placed.add(ready[0])
    return [nodes[i] for i in order]


def _folded(node: NodeProto | None, index: int, output: bool) -> list[int] | None:
    if node is None or not _is_hw(node):
        return None
    inst = getCustomOp(node)
    try:
        shape = inst.get_folded_output_shape(index) if output else inst.get_folded_input_shape(index)
    except Exception:  # not every layer defines folded shapes for every port
        return None
    return [int(s) for s in shape]


def _io_entry(model: ModelWrapper, name: str, output: bool) -> dict[str, Any]:
    """A graph input/output with the folded shape of the hardware layer at its end."""
    node = model.find_producer(name) if output else model.find_consumer(name)
    ports = [] if node is None else list(node.output if output else node.input)
    folded = _folded(node, ports.index(name), output) if node is not None else None
    return {"name": name, **_tensor_entry(model, name), "folded_shape": folded}


def _tensor_entry(model: ModelWrapper, name: str) -> dict[str, Any]:
    shape = model.get_tensor_shape(name)
    return {
        "shape": None if shape is None else [int(s) for s in shape],
        "dtype": model.get_tensor_datatype(name).name,
    }


def bundle_spec(
    model: ModelWrapper, name: str = "model"
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The bundle's JSON document (without ``npz``/``npz_sha256``) and its arrays by npz key."""
    flat, origin = inline_partitions(model)
    nodes = _topological(flat)
    init_names = {i.name for i in flat.graph.initializer}
    node_specs = []
    used: set[str] = set()
    for index, node in enumerate(nodes):
        hw = _is_hw(node)
        op = normalise_op_type(node.op_type)
        label = node.name or f"#{index} (unnamed)"
        if get_kernel(op, hw) is None:
            kind = "hardware layer" if hw else "op type"
            raise BundleError(f"node {label}: {kind} {node.op_type} is not supported by sim")
        derived: dict[str, Any] = {}
        if op == "VVAU":
            producer = flat.find_producer(node.input[0])
            derived["input_from_window"] = producer is not None and (
                normalise_op_type(producer.op_type) in _WINDOW_OPS
            )
        node_specs.append(
            {
                "name": node.name or label,
                "op_type": op,
                "impl_op_type": node.op_type,
                "domain": node.domain,
                "hw": hw,
                "inputs": list(node.input),
                "outputs": list(node.output),
                "attrs": _node_attrs(node, hw),
                "out_dtypes": _out_dtypes(flat, node, hw),
                "derived": derived,
                "partition": origin.get(node.name),
            }
        )
        used.update(t for t in list(node.input) + list(node.output) if t)
    graph_io = [t.name for t in flat.graph.input] + [t.name for t in flat.graph.output]
    tensors = {t: _tensor_entry(flat, t) for t in sorted((used | set(graph_io)) - init_names)}
    arrays: dict[str, np.ndarray] = {}
    initializers = {}
    for i, init_name in enumerate(sorted(used & init_names)):
        key = f"init{i}"
        arr = flat.get_initializer(init_name)
        arrays[key] = np.ascontiguousarray(arr)
        initializers[init_name] = {
            "npz_key": key,
            "shape": [int(s) for s in arr.shape],
            "dtype": flat.get_tensor_datatype(init_name).name,
        }
    inputs = [
        _io_entry(flat, t.name, output=False) for t in flat.graph.input if t.name not in init_names
    ]
    outputs = [_io_entry(flat, t.name, output=True) for t in flat.graph.output]
    spec = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "inputs": inputs,
        "outputs": outputs,
        "tensors": tensors,
        "initializers": initializers,
        "nodes": node_specs,
    }
    return spec, arrays


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An npz archive (as np.savez writes it) with fixed timestamps, for identical bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def write_bundle(model: ModelWrapper, path_stem: str | Path) -> tuple[Path, Path]:
    """Write ``<path_stem>.json`` and ``<path_stem>.npz``; returns (json_path, npz_path)."""
    json_path, npz_path = bundle_paths(path_stem)
    spec, arrays = bundle_spec(model, name=json_path.stem)
    payload = _npz_bytes(arrays)
    spec["npz"] = npz_path.name
    spec["npz_sha256"] = hashlib.sha256(payload).hexdigest()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    npz_path.write_bytes(payload)
    json_path.write_text(json.dumps(spec, sort_keys=True, indent=1) + "\n")
    return json_path, npz_path


def to_sim_bundle(model: ModelWrapper, name: str = "model") -> sim.Bundle:
    """The bundle in memory, without files (same content as a written and read one)."""
    spec, arrays = bundle_spec(model, name=name)
    return sim.Bundle.from_parts(json.loads(json.dumps(spec)), arrays)

