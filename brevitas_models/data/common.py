"""What every data set of this package shares: the ignore index and the image convention."""

from __future__ import annotations

import numpy as np
import torch

# Label value that metrics and the loss skip.
IGNORE_INDEX = 255


def to_float_image(pixels: np.ndarray) -> torch.Tensor:
    """``uint8`` H x W x 3 -> float32 3 x H x W tensor ``pixel / 255``; the network's UINT8
    input quantizer recovers exactly ``pixel`` from it."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected a uint8 H x W x 3 image, got {pixels.dtype} {pixels.shape}")
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).float() / 255.0
