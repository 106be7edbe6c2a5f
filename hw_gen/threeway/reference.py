"""The reference side of the three-way check: the integer activations of the source model.

From torch: forward hooks on Brevitas' activation quantizers (the quant proxies inside
QuantIdentity, QuantReLU, QuantHardTanh, ... and the input/output quantizers of quant
layers) record ``value / scale`` in execution order. From QONNX: qonnx's executor runs the
exported graph (step ``qonnx_cleanup``) and each activation ``Quant``/``BipolarQuant``
output divided by its scale. :func:`torch_reference` pairs the two, quantizer by quantizer,
and proves the pairing by value: every QONNX activation equals its torch activation
integer for integer, or the reference cannot be built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.errors import HwGenError
from hw_gen.lowering.activation_tags import activation_quants, quant_scale
from hw_gen.verify import exact_argmax

# |value / scale - round(value / scale)| above this is not a quantized tensor.
_GRID_TOLERANCE = 1e-3


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

    def by_id(self) -> dict[str, Activation]:
        return {a.id: a for a in self.activations}


def to_integers(value: np.ndarray, scale: np.ndarray, what: str) -> np.ndarray:
    """``value / scale`` as int64; an error naming ``what`` if it is off the integer grid."""
    ratio = np.asarray(value, dtype=np.float64) / np.asarray(scale, dtype=np.float64)
    ints = np.rint(ratio)
    off = float(np.max(np.abs(ratio - ints))) if ratio.size else 0.0
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
        value = np.concatenate([f[node.output[0]] for f in frames], 0)
        ints = to_integers(value, scale, f"QONNX {node.name} ({node.op_type})")
        acts.append(Activation(node.output[0], index, node.op_type, ints, scale, "qonnx"))
    logits = np.concatenate([f[out_name] for f in frames], 0)
    return acts, logits


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
    return Reference("torch", x, paired, exact_argmax(logits), notes)


def qonnx_reference(qonnx_model: ModelWrapper, x: np.ndarray) -> Reference:
    """The QONNX graph as the torch model's stand-in (the export check establishes that the
    two agree): its activations and labels on ``x`` by qonnx's executor."""
    acts, logits = qonnx_activations(qonnx_model, x)
    return Reference("qonnx", x, acts, exact_argmax(logits))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b)
