"""``hw-gen weights NEW.onnx --package PKG -o weights.npz``: a retrained model's integer
weights and thresholds for a package built with ``--runtime-weights``.

The new model is lowered as a build lowers it (same board and clock); its hardware layers
must be the package's (``accelerator.onnx``: names, op types, tensor shapes). Its writable
tensors go into a copy of the built graph, whose data types must hold them (the check every
build runs); every other constant, which the hardware holds fixed (thresholds absorbed into
an MVAU, our own layers' parameters), must be unchanged. ``weights.npz`` holds per layer
``<layer>`` (the integer tensor as the graph holds it) and ``<layer>.axilite`` (the uint32
words FINN's ``make_weight_file(..., "decoupled_runtime")`` writes for its AXI-lite memory),
and ``__package__``: the model hash the package was built from.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.errors import DataTypeCheckError, HwGenError

ACCEL_ONNX = "accelerator.onnx"


def _package_layers(package: Path) -> tuple[dict, list[dict]]:
    io_path = package / "io.json"
    if not io_path.exists():
        raise HwGenError(f"--package {package}: no io.json (not a deploy package)")
    io = json.loads(io_path.read_text())
    layers = io.get("runtime_weights") or []
    if not layers or not (package / ACCEL_ONNX).exists():
        raise HwGenError(f"--package {package}: built without --runtime-weights (no writable "
                         "layers); rebuild with `hw-gen build --runtime-weights`")
    return io, layers


def _lower_new(model_path: Path, io: dict, work: Path) -> ModelWrapper:
    from hw_gen.deploy.iodesc import hardware_model
    from hw_gen.layers.naming import sanitize_node_names
    from hw_gen.lowering import lower

    result = lower(model_path, work, board=io["board"], clk_ns=float(io["clock_ns"]),
                   fold_board={"runtime_weights": True})
    if result.dataflow_path is None:
        raise HwGenError(f"{model_path}: the lowering did not finish")
    model = result.run.model
    sanitize_node_names(model)
    hw_model, outputs = hardware_model(model)
    _compare_software(model, outputs, result.run.context.facts.get("input", {}), io, model_path)
    return hw_model


def _compare_software(model: ModelWrapper, outputs: list[str], input_info: dict, io: dict,
                      model_path: Path) -> None:
    """What the driver does in software must not change: the input quantizer, and the
    transpose, scale and bias that turn each output's integer scores into logits."""
    from hw_gen.deploy.iodesc import input_quant, software_tail

    port = io["inputs"][0]
    if input_quant(model, model.graph.input[0].name, input_info) != port["quant"]:
        raise HwGenError(f"{model_path}: the input quantizer differs from the package's "
                         f"({port['quant']}); the driver applies the built one: rebuild")
    if len(outputs) != len(io["outputs"]):
        raise HwGenError(f"{model_path}: another architecture: {len(outputs)} accelerator "
                         f"outputs, the package has {len(io['outputs'])}")
    for port, tensor in zip(io["outputs"], outputs):
        tail = software_tail(model, tensor)
        for key in ("kind", "perm", "scale", "bias"):
            if tail.get(key) != port.get(key):
                raise HwGenError(f"{model_path}: output {port['name']}: {key} {tail.get(key)} "
                                 f"after the accelerator, the package applies {port.get(key)}; "
                                 "rebuild the accelerator for this model")


def _constants(model: ModelWrapper, node) -> list[tuple[str, np.ndarray | None]]:
    return [(t, model.get_initializer(t)) for t in node.input]


def _compare(built: ModelWrapper, new: ModelWrapper, writable: set[str],
             model_path: Path) -> None:
    ours = [(n.name, n.op_type) for n in built.graph.node]
    theirs = [(n.name, n.op_type) for n in new.graph.node]
    if ours != theirs:
        diff = next((f"{a[0]} ({a[1]}) built, {b[0]} ({b[1]}) in the new model"
                     for a, b in zip(ours, theirs) if a != b),
                    f"{len(ours)} hardware layers built, {len(theirs)} in the new model")
        raise HwGenError(f"{model_path}: another architecture than the package's: {diff}")
    for a, b in zip(built.graph.node, new.graph.node):
        for i, ((_, wa), (_, wb)) in enumerate(zip(_constants(built, a), _constants(new, b))):
            if wa is None or wb is None:
                continue
            if wa.shape != wb.shape:
                raise HwGenError(f"{model_path}: another architecture: layer {a.name} input {i}"
                                 f" has shape {list(wb.shape)}, built {list(wa.shape)}")
            if i == 1 and a.name in writable:
                continue
            if not np.array_equal(wa, wb):
                why = _why_fixed(getCustomOp(a), i)
                raise HwGenError(f"{model_path}: layer {a.name} ({a.op_type}) changes input {i}"
                                 f", but {why}: rebuild the accelerator for this model")


def _why_fixed(inst, index: int) -> str:
    from hw_gen.layers.base import HwgenLayer

    if isinstance(inst, HwgenLayer):
        return "our layers' parameters are fixed in their HLS"
    if index == 2 and inst.onnx_node.op_type.startswith("MVAU"):
        return "thresholds absorbed into an MVAU are fixed in FINN's HLS"
    return "it was built with fixed parameters"


def _axilite_words(inst, values: np.ndarray, work: Path) -> np.ndarray:
    dat = work / f"{inst.onnx_node.name}.dat"
    inst.make_weight_file(values, "decoupled_runtime", str(dat))
    return np.array([int(w, 16) for w in dat.read_text().split()], dtype=np.uint32)


def export_weights(model_path: str | Path, package: str | Path, out: str | Path) -> Path:
    """Write ``out`` (npz, see the module doc) for ``model_path`` and the package; raises
    :class:`HwGenError` naming the layer when the model cannot run on it."""
    model_path, package, out = Path(model_path), Path(package), Path(out)
    io, layers = _package_layers(package)
    built = ModelWrapper(str(package / ACCEL_ONNX))
    writable = {layer["name"]: layer for layer in layers}
    with tempfile.TemporaryDirectory(prefix="hwgen-weights-") as tmp:
        new = _lower_new(model_path, io, Path(tmp) / "lower")
        _compare(built, new, set(writable), model_path)
        arrays: dict[str, np.ndarray] = {}
        for node in built.graph.node:
            if node.name not in writable:
                continue
            values = new.get_initializer(node.input[1])
            built.set_initializer(node.input[1], values)
            arrays[node.name] = values
        from hw_gen.lowering.widths import check_datatypes

        try:
            check_datatypes(built)
        except DataTypeCheckError as exc:
            raise HwGenError(f"{model_path}: does not fit the built data types: "
                             f"{str(exc).removeprefix('data type check failed: ')}") from None
        for node in built.graph.node:
            if node.name in writable:
                arrays[node.name + ".axilite"] = _axilite_words(getCustomOp(node), arrays[node.name],
                                                                Path(tmp))
    arrays["__package__"] = np.array(io["model_sha256"])
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(out)
    return out
