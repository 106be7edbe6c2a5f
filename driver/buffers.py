"""Images to DMA bytes and DMA bytes to outputs, with FINN's driver packing from ``sim.packing``."""

from __future__ import annotations

import numpy as np

from driver.errors import DriverError
from driver.iospec import Port
from sim.datatypes import dtype as finn_dtype
from sim.packing import DRIVER_PACKING, pack_bytes, unpack_bytes


def quantize_pixels(images: np.ndarray, port: Port) -> np.ndarray:
    """uint8 pixels -> the integers the accelerator takes, as the model's input quantizer
    computes them (``round_half_even(k * pixel_scale / scale)``, clipped to its range)."""
    q = port.extra.get("quant")
    if q is None:
        return images.astype(np.int64)
    value = images.astype(np.float64) * float(q["pixel_scale"]) / float(q["scale"])
    bits, signed = int(q["bits"]), bool(q["signed"])
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return np.clip(np.rint(value), lo, hi).astype(np.int64)


def check_images(images: object, port: Port) -> np.ndarray:
    """A batch of uint8 images N x H x W x C for ``port``, or a one-line error."""
    if not isinstance(images, np.ndarray):
        raise DriverError(f"images: a numpy array expected, got {type(images).__name__}")
    want = port.shape[1:]
    if images.dtype != np.uint8:
        raise DriverError(f"images: dtype {images.dtype}, the accelerator takes uint8 pixels "
                          f"(N, {', '.join(map(str, want))})")
    if images.ndim != len(want) + 1 or tuple(images.shape[1:]) != want:
        raise DriverError(f"images: shape {tuple(images.shape)}, the accelerator takes "
                          f"(N, {', '.join(map(str, want))}) uint8 (N x H x W x C)")
    if images.shape[0] == 0:
        raise DriverError("images: an empty batch")
    return images


def to_dma_bytes(values: np.ndarray, port: Port) -> np.ndarray:
    """(N, *shape[1:]) integers -> (N, frame_bytes) uint8, as the input DMA reads them."""
    n = values.shape[0]
    folded = values.reshape((n,) + port.folded_shape[1:])
    packed = pack_bytes(folded, finn_dtype(port.dtype), **DRIVER_PACKING)
    return packed.reshape(n, -1)


def from_dma_bytes(raw: np.ndarray, port: Port) -> np.ndarray:
    """(N, frame_bytes) uint8 from the output DMA -> (N, *shape[1:]) values."""
    n = raw.shape[0]
    packed = raw.reshape((n,) + port.packed_shape[1:])
    folded = unpack_bytes(packed, finn_dtype(port.dtype), (n,) + port.folded_shape[1:],
                          **DRIVER_PACKING)
    return folded.reshape((n,) + port.shape[1:])
