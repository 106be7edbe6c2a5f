"""The reference side of the three-way check: the integer activations of the source model.

From torch: forward hooks on Brevitas' activation quantizers (the quant proxies inside
QuantIdentity, QuantReLU, QuantHardTanh, ... and the input/output quantizers of quant
layers) record ``value / scale`` in execution order. From QONNX: qonnx's executor runs the
exported graph as it was exported and each activation ``Quant``/``BipolarQuant``'s integers
are derived from its input (:mod:`hw_gen.threeway.quant_ints`); they are named after the
quantizers of the cleaned-up graph (step ``qonnx_cleanup``), paired in graph order. :func:`torch_reference` pairs the two, quantizer by quantizer,
and proves the pairing by value: every QONNX activation equals its torch activation
integer for integer, or the reference cannot be built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.errors import HwGenError
from hw_gen.lowering.activation_tags import activation_quants, quant_scale
from hw_gen.threeway.quant_ints import quant_integers
from hw_gen.verify import exact_argmax

# |value / scale - round(value / scale)| above this (plus float32's relative rounding of
# scale * q, which grows with q) is not a quantized tensor.
_GRID_TOLERANCE = 1e-3
_FLOAT32_RELATIVE = 2.0**-20


@dataclass
class Activation:
    """One quantized activation: its id (QONNX quantizer output name), integers in torch
    layout (batch first), the QONNX scale (scalar or broadcastable to NCHW) and origin."""

    id: str
    index: int
    op_type: str
    values: np.ndarray
    scale: np.ndarray
    source: str

    @property
    def bipolar(self) -> bool:
        return self.op_type == "BipolarQuant"


@dataclass
class Reference:
    """What the lowered graphs must reproduce on input ``x``."""

    kind: str  # "torch" or "qonnx"
    x: np.ndarray
    activations: list[Activation]
    labels: np.ndarray | None
    notes: list[str] = field(default_factory=list)
    logits: np.ndarray | None = None  # the model's float output

    def by_id(self) -> dict[str, Activation]:
        return {a.id: a for a in self.activations}


def to_integers(value: np.ndarray, scale: np.ndarray, what: str) -> np.ndarray:
    """``value / scale`` as int64; an error naming ``what`` if it is off the integer grid."""
    ratio = np.asarray(value, dtype=np.float64) / np.asarray(scale, dtype=np.float64)
    ints = np.rint(ratio)
    slack = np.abs(ratio - ints) - _FLOAT32_RELATIVE * np.abs(ints)
    off = float(np.max(slack)) if ratio.size else 0.0
    if off > _GRID_TOLERANCE:
        raise HwGenError(f"{what}: value / scale is {off:.3g} away from an integer")
    return ints.astype(np.int64)


def qonnx_activations(model: ModelWrapper, x: np.ndarray) -> tuple[list[Activation], np.ndarray]:
    """Run the QONNX graph with qonnx's executor, frame by frame; every activation quantizer's
    integers and the graph's first output."""
    from qonnx.core.onnx_exec import execute_onnx

    name = model.graph.input[0].name
    out_name = model.graph.output[0].name
    quants = activation_quants(model)
    frames = [
        execute_onnx(model, {name: np.asarray(x[i : i + 1], dtype=np.float32)}, True)
        for i in range(x.shape[0])
    ]
    acts = []
    for index, node in enumerate(quants):
        scale = quant_scale(model, node)
        ints = quant_integers(model, node, np.concatenate([f[node.input[0]] for f in frames], 0))
        value = np.concatenate([f[node.output[0]] for f in frames], 0)
        if not np.allclose(value, scale * ints, rtol=1e-5, atol=1e-6 * float(np.max(scale))):
            raise HwGenError(f"QONNX {node.name} ({node.op_type}): qonnx's output is not "
                             "scale * round(input / scale)")
        acts.append(Activation(node.output[0], index, node.op_type, ints, scale, "qonnx"))
    logits = np.concatenate([f[out_name] for f in frames], 0)
    return acts, logits


def rename_like(acts: list[Activation], model: ModelWrapper, what: str) -> list[Activation]:
    """The activations of the exported graph named after the quantizers of ``model`` (its
    cleaned-up copy: same quantizers in the same order, other tensor names)."""
    quants = activation_quants(model)
    kinds = [a.op_type for a in acts]
    if kinds != [n.op_type for n in quants]:
        raise HwGenError(f"{what}: its {len(acts)} activation quantizers do not pair with the "
                         f"{len(quants)} of the cleaned-up graph")
    return [Activation(n.output[0], a.index, a.op_type, a.values, a.scale, a.source)
            for a, n in zip(acts, quants)]


def _torch_activations(
    torch_model, x: np.ndarray
) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """(quantizer module name, integers) in execution order, and the model's output."""
    import torch
    from brevitas.proxy.runtime_quant import ActQuantProxyFromInjectorBase
    from brevitas.quant_tensor import QuantTensor

    records: list[tuple[str, np.ndarray]] = []
    busy = [False]

    def hook(name):
        def record(module, args, out):
            if busy[0] or not module.is_quant_enabled:
                return
            busy[0] = True
            try:
                if isinstance(out, QuantTensor):
                    value, scale = out.value, out.scale
                else:
                    value, scale = out, module.scale()
                records.append((name, to_integers(value.detach().numpy(), scale.detach().numpy(),
                                                  f"torch {name}")))
            finally:
                busy[0] = False

        return record

    handles = [
        m.register_forward_hook(hook(n))
        for n, m in torch_model.named_modules()
        if isinstance(m, ActQuantProxyFromInjectorBase)
    ]
    try:
        with torch.no_grad():
            out = torch_model(torch.as_tensor(x, dtype=torch.float32))
    finally:
        for h in handles:
            h.remove()
    out = getattr(out, "value", out)
    return records, np.asarray(out.detach().numpy(), dtype=np.float64)


def torch_reference(torch_model, qonnx_model: ModelWrapper, x: np.ndarray) -> Reference:
    """The torch model's activations on ``x``, each paired with its QONNX quantizer.

    The k-th activation quantizer of the QONNX graph is paired with the k-th quantizer torch
    runs; the pair must agree integer for integer (qonnx's executor on the QONNX graph). A
    pair that disagrees is replaced by the first unpaired torch activation that agrees; with
    none, or with a torch activation left over, the pairing fails with an error naming it.
    """
    torch_records, logits = _torch_activations(torch_model, x)
    qonnx_acts, _ = qonnx_activations(qonnx_model, x)
    used: set[int] = set()
    paired = []
    notes = []
    for act in qonnx_acts:
        k = act.index
        if k < len(torch_records) and k not in used and _same(torch_records[k][1], act.values):
            choice = k
        else:
            choice = next((i for i, (_, v) in enumerate(torch_records)
                           if i not in used and _same(v, act.values)), None)
            if choice is None:
                raise HwGenError(
                    f"QONNX activation {act.id} ({act.op_type}) equals no torch quant "
                    f"activation on this input (torch ran {len(torch_records)} quantizers)"
                )
            notes.append(f"{act.id} paired by value with torch {torch_records[choice][0]} "
                         f"(call {choice}), not by order")
        used.add(choice)
        module, values = torch_records[choice]
        paired.append(Activation(act.id, act.index, act.op_type, values, act.scale,
                                 f"torch {module}"))
    left = [f"{name} (call {i})" for i, (name, _) in enumerate(torch_records) if i not in used]
    if left:
        raise HwGenError(f"torch quant activations without a QONNX quantizer: {', '.join(left)}")
    return Reference("torch", x, paired, exact_argmax(logits), notes, logits=logits)


def qonnx_reference(
    qonnx_model: ModelWrapper, x: np.ndarray, exported: ModelWrapper | None = None
) -> Reference:
    """The QONNX graph as the torch model's stand-in (the export check establishes that the
    two agree): its activations, labels and logits on ``x`` by qonnx's executor. With
    ``exported`` (the file as exported, before any rewrite) that graph is executed, its
    activations named after ``qonnx_model``'s quantizers."""
    if exported is None:
        acts, logits = qonnx_activations(qonnx_model, x)
    else:
        from qonnx.transformation.infer_shapes import InferShapes

        acts, logits = qonnx_activations(exported.transform(InferShapes()), x)  # shapes only
        acts = rename_like(acts, qonnx_model, "the exported model")
    return Reference("qonnx", x, acts, exact_argmax(logits), logits=logits)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b)
