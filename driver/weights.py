"""``Accelerator.load_weights``: the runtime-writable layers' new values, from the npz that
``hw-gen weights NEW.onnx --package PKG -o weights.npz`` writes (one integer tensor per
layer under its name, the 32-bit words of its AXI-lite memory under ``<name>.axilite``, and
``__package__``: the model hash of the package it was made for)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from driver.errors import DriverError
from driver.iospec import IOSpec


def read_weights(path: str | Path, spec: IOSpec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{layer: (integer tensor, uint32 AXI-lite words)}``, checked against the package."""
    path = Path(path)
    if not spec.runtime_weights:
        raise DriverError(f"{spec.path.parent}: built without --runtime-weights, no layer "
                          "can be written")
    if not path.exists():
        raise DriverError(f"{path}: no such weights file (make it with `hw-gen weights`)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise DriverError(f"{path}: not an npz of weights ({exc})") from None
    made_for = str(arrays.get("__package__", ""))
    if made_for != spec.model_sha256:
        raise DriverError(f"{path}: made for the package of model {made_for!r}, this one "
                          f"was built from {spec.model_sha256!r}")
    out = {}
    for layer in spec.runtime_weights:
        name = layer["name"]
        if name not in arrays or name + ".axilite" not in arrays:
            raise DriverError(f"{path}: no values for layer {name}")
        values, words = arrays[name], arrays[name + ".axilite"]
        if list(values.shape) != list(layer["shape"]):
            raise DriverError(f"{path}: layer {name} has shape {list(values.shape)}, the "
                              f"package's is {layer['shape']}")
        if words.dtype != np.uint32 or words.ndim != 1:
            raise DriverError(f"{path}: layer {name}: AXI-lite words must be 1-D uint32")
        out[name] = (values, words)
    return out
