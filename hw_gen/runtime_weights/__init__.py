"""Runtime-writable weights: ``hw-gen build --runtime-weights`` and ``hw-gen weights``.

:mod:`.mark` makes FINN's matrix-vector units (decoupled weights) and thresholding layers
runtime-writable and lists them for the deploy package; :mod:`.extract` lowers a retrained
model of the same architecture and writes the integer tensors and AXI-lite words of those
layers (``weights.npz``) that the driver's ``Accelerator.load_weights`` takes.
"""

from hw_gen.runtime_weights.extract import export_weights
from hw_gen.runtime_weights.mark import mark_writable, writable_layers

__all__ = ["export_weights", "mark_writable", "writable_layers"]
