"""The simulated accelerator: the same packed DMA bytes, run through ``sim/``.

The input bytes are unpacked with FINN's driver packing, the accelerator's bundle (only its
hardware layers) runs in sim, and each output is packed back into the bytes its output DMA
would write; the driver then unpacks them as it does on the board.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import sim
from driver.buffers import from_dma_bytes, to_dma_bytes
from driver.errors import DriverError
from driver.iospec import IOSpec


class SimBackend:
    name = "sim"

    def __init__(self, package: Path, spec: IOSpec) -> None:
        path = Path(package) / spec.bundle
        if not path.exists():
            raise DriverError(f"{path}: the accelerator's sim bundle is missing")
        try:
            self.bundle = sim.load_bundle(path)
        except sim.SimError as exc:
            raise DriverError(f"{path}: {exc}") from None
        self.spec = spec
        names = {t.name for t in self.bundle.outputs}
        for port in spec.outputs:
            if port.name not in names:
                raise DriverError(f"{path}: the bundle has no output {port.name!r}")

    def load_weights(self, values: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Replace the writable layers' tensors (the AXI-lite words are the board's)."""
        for layer in self.spec.runtime_weights:
            old = self.bundle.initializers[layer["tensor"]]
            self.bundle.initializers[layer["tensor"]] = values[layer["name"]][0].astype(old.dtype)

    def run(self, packed_inputs: list[np.ndarray], timeout_s: float) -> list[np.ndarray]:
        """Packed input frames (N, bytes) -> packed output frames (N, bytes) per output."""
        port = self.spec.inputs[0]
        values = from_dma_bytes(packed_inputs[0], port)
        try:
            outs = sim.run(self.bundle, {port.name: values})
        except sim.SimError as exc:
            raise DriverError(f"simulated accelerator: {exc}") from None
        return [to_dma_bytes(np.asarray(outs[p.name]), p) for p in self.spec.outputs]
