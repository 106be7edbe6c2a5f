"""The board: FINN's IODMA blocks programmed over AXI-lite through PYNQ.

Register map of an IODMA (Vitis HLS ``s_axilite`` bundle ``control``, as FINN's IODMA
declares it and finn-plus-driver programs it): ``0x00`` control (bit 0 ap_start, bit 1
ap_done, bit 2 ap_idle), ``0x10``/``0x14`` buffer address (low/high 32 bits), ``0x1C`` the
number of frames. The output DMAs start first, then the input DMAs; the run is over when
every output DMA reports ap_done, and a DMA that does not within ``timeout_s`` is an error.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from driver.errors import DriverError
from driver.iospec import IOSpec

CTRL, ADDR_LO, ADDR_HI, COUNT = 0x00, 0x10, 0x14, 0x1C
AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4
POLL_S = 1e-4


class PynqBackend:
    name = "pynq"

    def __init__(self, spec: IOSpec, bitfile: Path, device=None, download: bool = True) -> None:
        try:
            import pynq
        except ImportError:
            raise DriverError("backend 'pynq' needs the pynq package (on the board, or "
                              "`make board-env`); off the board use backend='sim'") from None
        self.pynq = pynq
        self.spec = spec
        self.overlay = pynq.Overlay(str(bitfile), download=download, device=device)
        self.device = self.overlay.device
        self.dmas = {}
        for port in spec.inputs + spec.outputs:
            if port.dma not in self.overlay.ip_dict:
                raise DriverError(f"{Path(bitfile).with_suffix('.hwh')}: no IP named "
                                  f"{port.dma!r} (the DMA of port {port.name})")
            self.dmas[port.dma] = getattr(self.overlay, port.dma)
        self._buffers: dict[str, object] = {}
        self._batch = 0

    def load_weights(self, values: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Write each writable layer's words to its AXI-lite memory from offset 0, as FINN's
        own driver does."""
        for layer in self.spec.runtime_weights:
            ip = self._axilite(layer)
            data = values[layer["name"]][1].astype("<u4").tobytes()
            if len(data) > ip["addr_range"]:
                raise DriverError(f"layer {layer['name']}: {len(data)} bytes of weights, its "
                                  f"AXI-lite memory {layer['axilite']} holds {ip['addr_range']}")
            self.pynq.MMIO(ip["phys_addr"], ip["addr_range"], device=self.device).write(0, data)

    def _axilite(self, layer: dict) -> dict:
        """The overlay's entry of a layer's AXI-lite interface: ``instance/interface``, or the
        instance alone when it has only that interface (PYNQ's naming)."""
        ips = self.overlay.ip_dict
        name = layer["axilite"]
        instance, _, interface = name.rpartition("/")
        if name in ips:
            return ips[name]
        if instance in ips and ips[instance].get("mem_id") == interface:
            return ips[instance]
        raise DriverError(f"the overlay has no AXI-lite interface {name!r} (runtime weights of "
                          f"layer {layer['name']}): was the bitstream built with "
                          "--runtime-weights?")

    def _allocate(self, n: int) -> None:
        if n == self._batch:
            return
        self._buffers = {
            p.dma: self.pynq.allocate(shape=(n, p.frame_bytes), dtype=np.uint8,
                                      target=self.device)
            for p in self.spec.inputs + self.spec.outputs
        }
        self._batch = n

    def _start(self, dma: str, n: int) -> None:
        ip, buf = self.dmas[dma], self._buffers[dma]
        address = int(buf.device_address)
        ip.write(ADDR_LO, address & 0xFFFFFFFF)
        ip.write(ADDR_HI, (address >> 32) & 0xFFFFFFFF)
        ip.write(COUNT, n)
        ip.write(CTRL, AP_START)

    def run(self, packed_inputs: list[np.ndarray], timeout_s: float) -> list[np.ndarray]:
        n = packed_inputs[0].shape[0]
        self._allocate(n)
        for port, data in zip(self.spec.inputs, packed_inputs):
            buf = self._buffers[port.dma]
            buf[:] = data
            buf.flush()
        for port in self.spec.outputs:
            if not self.dmas[port.dma].read(CTRL) & AP_IDLE:
                raise DriverError(f"output DMA {port.dma} is busy from an earlier run that did "
                                  "not complete; reload the bitstream")
        for port in self.spec.outputs:
            self._start(port.dma, n)
        for port in self.spec.inputs:
            self._start(port.dma, n)
        self._wait(timeout_s)
        outs = []
        for port in self.spec.outputs:
            buf = self._buffers[port.dma]
            buf.invalidate()
            outs.append(np.array(buf, dtype=np.uint8, copy=True))
        return outs

    def _wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = [p.dma for p in self.spec.outputs]
        while pending:
            pending = [d for d in pending if not self.dmas[d].read(CTRL) & AP_DONE]
            if pending and time.monotonic() > deadline:
                raise DriverError(
                    f"output DMA {', '.join(pending)} did not complete within {timeout_s:g} s "
                    "(no ap_done): the accelerator stalled or the bitstream does not match "
                    "this package")
            if pending:
                time.sleep(POLL_S)
