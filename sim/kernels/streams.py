"""Stream plumbing and selection: fork, concat, split, crop, width converter, FIFO, DMA,
label select.

FINN semantics (duplicatestreams.py, concat.py, split.py, crop.py,
streamingdatawidthconverter.py, streamingfifo.py, labelselect.py):

- DuplicateStreams copies its input to each output; StreamingConcat / StreamingSplit join /
  cut along the channel (last) axis; DWC, FIFO and IODMA pass data through unchanged.
- LabelSelect returns the indices of the K largest values, largest first, through
  onnxruntime's TopK: equal values keep ascending index order (a stable sort).
"""

from __future__ import annotations

import numpy as np

from sim.bundle import Node, SimError
from sim.datatypes import as_int64
from sim.bitconv import map_rows
from sim.kernels import register
from sim.layout import copy_pixels
from sim.packedmap import PackedMap, unpacked


@register("DuplicateStreams", packed_inputs=True)
def duplicate_streams(node: Node, inputs: list) -> list:
    return [inputs[0]] * len(node.outputs)


@register("StreamingConcat", packed_inputs=True)
def streaming_concat(node: Node, inputs: list) -> np.ndarray | PackedMap:
    widths = [int(c) for c in node.attr("ChannelsPerStream")]
    got = [x.shape[-1] for x in inputs]
    if got != widths:
        raise SimError(f"{node.label()}: inputs have {got} channels, ChannelsPerStream is {widths}")
    if (all(isinstance(x, PackedMap) for x in inputs) and len({x.bipolar for x in inputs}) == 1
            and all(x.aligned for x in inputs[:-1])):  # whole bytes: the bits concatenate
        return PackedMap(_concat([x.bits for x in inputs]), sum(widths), inputs[0].bipolar)
    inputs = [unpacked(x) for x in inputs]
    if all(x.dtype.kind in "iu" for x in inputs):
        return _concat(inputs)  # common integer type, wrapped by the executor
    return _concat([as_int64(x) for x in inputs])


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate`` along the last axis, each part copied a pixel at a time."""
    kind = np.result_type(*parts)
    if any(p.dtype != kind for p in parts) or parts[0].ndim < 2:
        return np.concatenate(parts, axis=-1)
    out = np.empty(parts[0].shape[:-1] + (sum(p.shape[-1] for p in parts),), dtype=kind)
    start = 0
    for part in parts:
        copy_pixels(out[..., start : start + part.shape[-1]], part)
        start += part.shape[-1]
    return out


@register("StreamingSplit")
def streaming_split(node: Node, inputs: list[np.ndarray]) -> list[np.ndarray]:
    widths = [int(c) for c in node.attr("ChannelsPerStream")]
    if inputs[0].shape[-1] != sum(widths):
        raise SimError(f"{node.label()}: input has {inputs[0].shape[-1]} channels, expected {sum(widths)}")
    return np.split(inputs[0], np.cumsum(widths[:-1]), axis=-1)


@register("Crop")
def crop(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    if x.ndim != 4:
        raise SimError(f"{node.label()}: sim crops NHWC (4-D) tensors, got shape {x.shape}")
    h, w = (int(v) for v in node.attr("ImgDim"))
    north, south = int(node.attr("CropNorth")), int(node.attr("CropSouth"))
    west, east = int(node.attr("CropWest")), int(node.attr("CropEast"))
    return x[:, north : h - south, west : w - east, :]


@register("StreamingDataWidthConverter", "StreamingFIFO", "IODMA", packed_inputs=True)
def pass_through(node: Node, inputs: list) -> np.ndarray | PackedMap:
    return inputs[0]


def top_k_indices(x: np.ndarray, k: int, axis: int = -1, largest: bool = True) -> np.ndarray:
    """Indices of the k largest (smallest) values along ``axis``, ties in ascending index."""
    key = np.asarray(x)
    if k == 1 and key.dtype.kind in "iub":  # the first extreme index: ties in ascending order
        pick = np.argmax if largest else np.argmin
        if key.ndim > 1 and axis in (-1, key.ndim - 1):  # rows on the tile threads
            rows = map_rows(lambda part: pick(part, axis=-1), key.reshape(-1, key.shape[-1]))
            return rows.reshape(key.shape[:-1] + (1,))
        return np.expand_dims(pick(key, axis=axis), axis)
    if key.dtype.kind in "iub":
        key = key.astype(np.int64)
    order = np.argsort(-key if largest else key, axis=axis, kind="stable")
    return np.take(order, np.arange(k), axis=axis)


@register("LabelSelect")
def label_select(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    labels, k = int(node.attr("Labels")), int(node.attr("K"))
    if x.shape[-1] != labels:
        raise SimError(f"{node.label()}: input has {x.shape[-1]} labels, expected {labels}")
    return top_k_indices(x, k)
