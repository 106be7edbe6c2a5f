"""``hw-gen sim``: run a lowered graph in sim on the input the torch model takes and return
what the torch model returns (float logits, same layout) or the per-pixel labels.

The sim bundle is kept beside the graph (``dataflow.onnx`` -> ``dataflow.sim.json`` and
``dataflow.sim.npz``) with a record of the graph's content hash, and rewritten unless the
record matches the graph and the bundle files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

import sim
from hw_gen.bundle import BundleError, write_bundle
from hw_gen.errors import HwGenError
from hw_gen.fingerprint import FINGERPRINT_NAME, file_digest, finn_version
from hw_gen.finn_adapter import init_finn
from hw_gen.lowering.execute import graph_input
from hw_gen.lowering.interface import LABELS_NAME
from sim.bundle import bundle_paths

# x * 255 farther than this from an integer is not an 8-bit pixel
_PIXEL_TOLERANCE = 1e-3


def bundle_stem(graph: Path) -> Path:
    return graph.with_name(graph.stem + ".sim")


def load_graph(graph: str | Path) -> ModelWrapper:
    """The lowered graph, with FINN initialised (its layers' classes describe the bundle);
    FINN's build folder goes beside the graph, as ``hw-gen lower`` puts it."""
    path = Path(graph)
    if not path.exists():
        raise HwGenError(f"graph file not found: {path}")
    init_finn(path.resolve().parent / "finn_build")
    from hw_gen.lowering.pipeline import load_model

    return load_model(path)


def _bundle_record(graph: Path) -> dict:
    """What a bundle is made from: the graph's bytes, FINN's version (its layer classes
    describe the bundle) and the bundle files themselves."""
    json_path, npz_path = bundle_paths(bundle_stem(graph))
    return {"graph": file_digest(graph), "finn": finn_version(),
            "bundle": [file_digest(p) if p.exists() else None for p in (json_path, npz_path)]}


def fresh_bundle(graph: str | Path, model: ModelWrapper) -> sim.Bundle:
    """The sim bundle beside ``graph``, (re)written unless the record beside it
    (``GRAPH.sim.fingerprint.json``) says it was made from this very graph and is intact."""
    path = Path(graph)
    stem = bundle_stem(path)
    record = stem.with_name(stem.name + "." + FINGERPRINT_NAME)
    json_path, _ = bundle_paths(stem)
    saved = None
    if record.exists():
        try:
            saved = json.loads(record.read_text())
        except json.JSONDecodeError:
            saved = None
    if saved != _bundle_record(path):
        record.unlink(missing_ok=True)  # no record while the bundle is being rewritten
        try:
            write_bundle(model, stem)
        except BundleError as exc:
            raise HwGenError(f"{path.name}: {exc}") from exc
        record.write_text(json.dumps(_bundle_record(path), sort_keys=True))
    return sim.load_bundle(json_path)


def torch_input_shape(model: ModelWrapper) -> tuple[int, ...]:
    """The per-frame shape of the input the torch model takes: NCHW for a graph that takes
    UINT8 NHWC pixels (the input interface's), else the graph input's own shape."""
    name = model.graph.input[0].name
    shape = tuple(int(s) for s in model.get_tensor_shape(name)[1:])
    if model.get_tensor_datatype(name) == DataType["UINT8"] and len(shape) == 3:
        h, w, c = shape
        return (c, h, w)
    return shape


def check_input(model: ModelWrapper, x: np.ndarray, what: str) -> None:
    """A one-line error unless ``x`` is a batch of inputs the torch model takes."""
    want = torch_input_shape(model)
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        layout = "NCHW" if len(want) == 3 else "batch-first"
        raise HwGenError(f"{what}: shape {tuple(x.shape)}, the graph takes "
                         f"(N, {', '.join(map(str, want))}) ({layout} float)")
    if x.dtype.kind not in "fiu":
        raise HwGenError(f"{what}: dtype {x.dtype} is not numeric")
    if x.shape[0] == 0:
        raise HwGenError(f"{what}: an empty batch (0 frames)")
    if x.size and not np.all(np.isfinite(x)):
        raise HwGenError(f"{what}: holds NaN or infinite values")
    name = model.graph.input[0].name
    if model.get_tensor_datatype(name) == DataType["UINT8"]:
        k = np.asarray(x, dtype=np.float64) * 255.0
        if k.size and (k.min() < -_PIXEL_TOLERANCE or k.max() > 255 + _PIXEL_TOLERANCE
                       or np.abs(k - np.rint(k)).max() > _PIXEL_TOLERANCE):
            raise HwGenError(f"{what}: the graph takes 8-bit pixels; values must be k/255 "
                             "for integers k in 0..255")


def model_input_graph(model_path: str | Path) -> ModelWrapper:
    """The exported model with the input interface applied: what :func:`check_input` and
    :func:`default_input` read (whether it takes 8-bit pixels, and its input shape)."""
    from hw_gen.lowering.interface import make_uint8_input
    from hw_gen.lowering.pipeline import load_model
    from hw_gen.lowering.steps import qonnx_cleanup

    model, _ = make_uint8_input(qonnx_cleanup(load_model(model_path), None))
    return model


def default_input(model: ModelWrapper, frames: int = 1, seed: int = 0) -> np.ndarray:
    """A seeded input the model takes (torch layout): 8-bit pixels ``k/255`` for a graph with
    the 8-bit input interface, values on the grid of an input quantizer ``scale * q`` for any
    integer ``q`` of its range, else floats in [-1, 1)."""
    from hw_gen.threeway.quant_ints import quant_range

    rng = np.random.default_rng(seed)
    shape = (frames,) + torch_input_shape(model)
    name = model.graph.input[0].name
    if model.get_tensor_datatype(name) == DataType["UINT8"]:
        return rng.integers(0, 256, shape) / 255.0
    consumers = model.find_consumers(name) or []
    quant = consumers[0] if len(consumers) == 1 and consumers[0].op_type == "Quant" else None
    if quant is not None:
        from hw_gen.lowering.graph import attr, scalar_initializer

        scale = scalar_initializer(model, quant.input[1])
        bits = scalar_initializer(model, quant.input[3])
        if scale is not None and bits is not None and float(bits).is_integer() and bits >= 1:
            lo, hi = quant_range(bits, bool(attr(quant, "signed", 1)),
                                 bool(attr(quant, "narrow", 0)))
            return rng.integers(lo, hi + 1, shape) * scale
    return rng.uniform(-1.0, 1.0, shape)


def load_input(path: str | Path) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise HwGenError(f"input file not found: {p}")
    if not p.is_file():
        raise HwGenError(f"{p}: not a .npy array (not a file)")
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise HwGenError(f"{p}: not a .npy array ({exc})") from exc
    if not isinstance(x, np.ndarray):
        x.close()
        raise HwGenError(f"{p}: not a .npy array (an .npz archive; save one array with np.save)")
    return x


def output_name(model: ModelWrapper, labels: bool, graph: str) -> str:
    names = [o.name for o in model.graph.output]
    if labels:
        if LABELS_NAME not in names:
            raise HwGenError(f"{graph} has no '{LABELS_NAME}' output (lowered with "
                             "--outputs logits?); run without --labels for the logits")
        return LABELS_NAME
    logits = [n for n in names if n != LABELS_NAME]
    if not logits:
        raise HwGenError(f"{graph} has only the '{LABELS_NAME}' output; use --labels")
    return logits[0]


def run_graph(
    graph: str | Path, x: np.ndarray, labels: bool = False, progress: bool = False,
    what: str = "input",
) -> np.ndarray:
    """Run the lowered ``graph`` in sim on ``x`` (what the torch model takes: float NCHW,
    pixels k/255 for an 8-bit input). Returns the float logits as torch returns them, or with
    ``labels`` the label of each pixel (N, H, W) (or of each frame, (N,)), int64."""
    path = Path(graph)
    model = load_graph(path)
    check_input(model, x, what)
    name = output_name(model, labels, path.name)
    bundle = fresh_bundle(path, model)
    inputs = {bundle.inputs[0].name: graph_input(model, x)}
    try:
        if progress:
            from tqdm import tqdm

            with tqdm(total=len(bundle.nodes), desc="sim", unit="node", leave=False,
                      disable=None) as bar:
                out = sim.run(bundle, inputs, on_node=lambda node: bar.update(1))[name]
        else:
            out = sim.run(bundle, inputs)[name]
    except sim.SimError as exc:
        raise HwGenError(f"{path.name}: {exc}") from exc
    if labels:
        squeezed = out.reshape(out.shape[:-1]) if out.shape[-1] == 1 else out
        return squeezed.astype(np.int64)
    return np.asarray(out, dtype=np.float32)
