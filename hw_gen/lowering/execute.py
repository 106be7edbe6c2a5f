"""Run a (partly) lowered graph with FINN's Python execution on the input the torch model takes."""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from qonnx.core.datatype import DataType


def graph_input(model: ModelWrapper, x: np.ndarray) -> np.ndarray:
    """The graph's input for a torch input ``x`` (float, NCHW, pixels k/255 where the graph
    takes UINT8 NHWC pixels: the lowered graph's input after the input interface step)."""
    name = model.graph.input[0].name
    if model.get_tensor_datatype(name) == DataType["UINT8"] and len(x.shape) == 4 and list(
        model.get_tensor_shape(name)[1:]
    ) == [x.shape[2], x.shape[3], x.shape[1]]:
        pixels = np.rint(np.asarray(x, dtype=np.float64) * 255.0)
        return np.ascontiguousarray(pixels.transpose(0, 2, 3, 1)).astype(np.float32)
    return np.asarray(x, dtype=np.float32)


def finn_execute(
    model: ModelWrapper, x: np.ndarray, return_context: bool = False
) -> dict[str, np.ndarray]:
    """FINN's Python execution, one frame at a time (FINN graphs have batch 1)."""
    import finn.core.onnx_exec as oxe

    inp = graph_input(model, x)
    name = model.graph.input[0].name
    frames = []
    for i in range(inp.shape[0]):
        frames.append(oxe.execute_onnx(model, {name: inp[i : i + 1]}, return_context))
    constant = {t.name for t in model.graph.initializer}
    return {
        k: v if k in constant or np.ndim(v) == 0 else np.concatenate([f[k] for f in frames], 0)
        for k, v in frames[0].items()
    }
