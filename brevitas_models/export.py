"""QONNX export of our networks, and a check of the export against torch.

``export_qonnx`` writes the model with Brevitas' TorchScript-based QONNX exporter
(``dynamo=False``: required with torch 2.13), cleans it with qonnx's ``cleanup_model`` and, by
default, applies the exact rewrites of :mod:`brevitas_models.qonnx_fixups` so that FINN's
``ConvertQONNXtoFINN`` accepts it (activation ``BipolarQuant`` at unit scale followed by a
scalar ``Mul``; our ``-s`` pads become ``-1`` pads on the +-1 tensor).

``check_export`` runs qonnx's executor (``execute_onnx``; onnxruntime cannot run
``BipolarQuant``) and compares with torch: logits within float rounding, identical arg-max
labels, and identical integers at every quantized activation: each activation ``Quant`` /
``BipolarQuant`` output of the graph must equal (``np.array_equal``) the integer tensor of a
distinct torch ``QuantIdentity`` call.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import torch
from brevitas.export import export_qonnx as brevitas_export_qonnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.cleanup import cleanup_model

from brevitas_models.errors import ModelError
from brevitas_models.qonnx_fixups import finn_ready

# Logit agreement between torch and qonnx's executor: float32 rounding of a different
# summation order, relative to the largest logit magnitude.
LOGIT_RTOL = 1e-5


def export_qonnx(
    model: torch.nn.Module,
    example_input: torch.Tensor,
    path: str | Path,
    *,
    dynamo: bool = False,
    for_finn: bool = True,
) -> Path:
    """Export ``model`` (switched to eval mode, float32, outside any autocast region: mixed
    precision is for training only) to QONNX at ``path``; returns the path."""
    if dynamo:
        raise ModelError("export_qonnx: dynamo=True does not export Brevitas quantizers with torch 2.13")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval().float()
    example_input = example_input.float()
    with torch.no_grad(), warnings.catch_warnings(), torch.autocast("cpu", enabled=False), \
            torch.autocast("cuda", enabled=False):
        # The -s pad value is read as a Python float: the tracer warns that it is a constant.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        brevitas_export_qonnx(model, example_input, str(path), dynamo=False)
    wrapped = cleanup_model(ModelWrapper(str(path)))
    if for_finn:
        wrapped = finn_ready(wrapped)
    wrapped.save(str(path))
    return path


@dataclass
class ExportCheck:
    """What ``check_export`` measured."""

    max_logit_diff: float
    logit_tolerance: float
    labels_equal: bool
    integer_tensors_checked: list[str] = field(default_factory=list)
    integer_mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.max_logit_diff <= self.logit_tolerance
            and self.labels_equal
            and not self.integer_mismatches
        )


def _quant_activation_modules(model: torch.nn.Module) -> list[qnn.QuantIdentity]:
    return [m for m in model.modules() if isinstance(m, qnn.QuantIdentity)]


def _torch_integer_activations(model: torch.nn.Module, x: torch.Tensor):
    """Run ``model`` on ``x``; return logits and the integer tensor of every ``QuantIdentity``
    call."""
    records: list[np.ndarray] = []

    def hook(module, _inputs, output):
        value = output.value if hasattr(output, "value") else output
        scale = module.act_quant.scale()
        records.append(torch.round(value / scale).to(torch.int64).numpy())

    handles = [m.register_forward_hook(hook) for m in _quant_activation_modules(model)]
    try:
        model.eval()
        with torch.no_grad():
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return logits.numpy(), records


def _onnx_integer_activations(model: ModelWrapper, context: dict) -> list[tuple[str, np.ndarray]]:
    """Integer value of every activation ``Quant``/``BipolarQuant`` output, in graph order."""
    found = []
    for node in model.graph.node:
        if node.op_type not in ("Quant", "BipolarQuant"):
            continue
        if model.get_initializer(node.input[0]) is not None:
            continue
        scale = model.get_initializer(node.input[1])
        values = context[node.output[0]] / scale
        found.append((node.name, np.round(values).astype(np.int64)))
    return found


def _execute(wrapped: ModelWrapper, x: np.ndarray) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Run the graph on ``x`` in chunks of the graph's batch size; returns the output and the
    integer activations, concatenated over the chunks."""
    name = wrapped.graph.input[0].name
    batch = wrapped.get_tensor_shape(name)[0]
    if x.shape[0] % batch:
        raise ModelError(f"check_export: {x.shape[0]} samples do not split into graph batches of {batch}")
    outputs, ints = [], []
    for start in range(0, x.shape[0], batch):
        context = execute_onnx(wrapped, {name: x[start : start + batch]}, return_full_exec_context=True)
        outputs.append(context[wrapped.graph.output[0].name])
        ints.append(_onnx_integer_activations(wrapped, context))
    merged = [(n, np.concatenate([chunk[i][1] for chunk in ints])) for i, (n, _) in enumerate(ints[0])]
    return np.concatenate(outputs), merged


def check_export(model: torch.nn.Module, onnx_path: str | Path, x: torch.Tensor) -> ExportCheck:
    """Compare the QONNX model at ``onnx_path`` (run by qonnx's executor) with torch on ``x``."""
    logits, torch_ints = _torch_integer_activations(model, x)
    out, onnx_ints = _execute(ModelWrapper(str(onnx_path)), x.numpy())
    if out.shape != logits.shape:
        raise ModelError(f"check_export: QONNX output shape {out.shape} != torch {logits.shape}")
    if len(onnx_ints) != len(torch_ints):
        raise ModelError(
            f"check_export: {len(onnx_ints)} quantized activations in the QONNX graph, "
            f"{len(torch_ints)} quantizer calls in torch"
        )
    # The exporter's node order need not be torch's call order (parallel branches), so each
    # graph tensor is matched with a distinct torch quantizer output equal to it.
    unused = list(torch_ints)
    checked, mismatches = [], []
    for name, onnx_int in onnx_ints:
        checked.append(name)
        match = next(
            (i for i, t in enumerate(unused) if t.shape == onnx_int.shape and np.array_equal(t, onnx_int)), None
        )
        if match is None:
            mismatches.append(name)
        else:
            unused.pop(match)
    tolerance = LOGIT_RTOL * max(1.0, float(np.abs(logits).max()))
    return ExportCheck(
        max_logit_diff=float(np.abs(out - logits).max()),
        logit_tolerance=tolerance,
        labels_equal=bool(np.array_equal(out.argmax(1), logits.argmax(1))),
        integer_tensors_checked=checked,
        integer_mismatches=mismatches,
    )
