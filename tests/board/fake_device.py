"""A fake PYNQ device: numpy memory behind ``pynq.Device``, emulating FINN's IODMA registers.

As PYNQ's own tests mock devices (``tests/mock_devices.py`` in Xilinx/PYNQ), this subclasses
``pynq.Device``: register reads and writes go to the IODMA models below, ``allocate`` returns
``PynqBuffer``s over numpy memory at made-up physical addresses, and ``download`` records the
bitstream. When the input DMA is started, the accelerator runs through ``sim/`` on the bytes
in its buffer and the output buffers are filled, then the output DMAs report ap_done.
``stall=True`` never completes a run (a DMA that never finishes).
"""

from __future__ import annotations

import struct

import numpy as np
import pynq
from pynq.buffer import PynqBuffer
from pynq.pl_server.hwh_parser import _HWHZynq

from driver.pynq_backend import ADDR_HI, ADDR_LO, AP_DONE, AP_IDLE, AP_START, COUNT, CTRL

BASE = 0x4000_0000
SPAN = 0x1_0000
MEMORY_BASE = 0x1000_0000


class IODMAModel:
    """One IODMA's control registers (``0x00`` control, ``0x10/0x14`` address, ``0x1C``
    count); ap_done is cleared on read, as Vitis HLS's control register does."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.regs = {CTRL: AP_IDLE, ADDR_LO: 0, ADDR_HI: 0, COUNT: 0}

    @property
    def address(self) -> int:
        return self.regs[ADDR_LO] | (self.regs[ADDR_HI] << 32)

    def read(self, offset: int) -> int:
        value = self.regs.get(offset, 0)
        if offset == CTRL:
            self.regs[CTRL] &= ~AP_DONE
        return value


class AxiLiteMemory:
    """A runtime-writable layer's memory behind its AXI-lite interface: 32-bit words."""

    def __init__(self, name: str, words: int) -> None:
        self.name = name
        self.words = np.zeros(words, dtype=np.uint32)
        self.written = 0  # words written (from offset 0 up)

    def write(self, offset: int, data: bytes) -> None:
        assert offset % 4 == 0 and len(data) % 4 == 0, (offset, len(data))
        new = np.frombuffer(bytes(data), dtype="<u4")
        self.words[offset // 4: offset // 4 + len(new)] = new
        self.written = max(self.written, offset // 4 + len(new))


class FakeDevice(pynq.Device):
    def __init__(self, hwh: str, run_accelerator, stall: bool = False) -> None:
        super().__init__("fake-iodma")
        self.capabilities = {"REGISTER_RW": True}
        self.hwh = hwh
        self.run_accelerator = run_accelerator  # packed input bytes -> packed output bytes
        self.stall = stall
        self.parser_obj = _HWHZynq(hwh)
        self.parser_obj.systemgraph = None  # the board's parser adds pynqmetadata's graph
        self.parser_obj.clock_dict = {}  # no PS clock registers to program here
        self.dmas = {}
        for name, ip in self.parser_obj.ip_dict.items():
            if "phys_addr" in ip and "s_axilite" in str(ip.get("mem_id")):
                self.dmas[ip["phys_addr"]] = AxiLiteMemory(name, ip["addr_range"] // 4)
            elif "phys_addr" in ip:
                self.dmas[ip["phys_addr"]] = IODMAModel(name)
        self.memory: dict[int, np.ndarray] = {}
        self._next = MEMORY_BASE
        self.downloads = []
        self.runs = 0

    # pynq.Device interface
    def get_bitfile_metadata(self, bitfile_name, partial=False):
        return self.parser_obj

    def download(self, bitstream, parser=None):
        self.downloads.append(bitstream.bitfile_name)

    def allocate(self, shape, dtype, **kwargs):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        address = self._next
        self._next += (nbytes + 0xFFF) & ~0xFFF
        buf = PynqBuffer(shape, dtype, device=self, device_address=address, bo=address,
                         coherent=True)
        self.memory[address] = buf
        return buf

    def flush(self, bo, offset, vaddr, length):
        pass

    def invalidate(self, bo, offset, vaddr, length):
        pass

    def _dma(self, address: int) -> tuple[IODMAModel, int]:
        base = address - (address - BASE) % SPAN
        return self.dmas[base], address - base

    def read_registers(self, address, length):
        dma, offset = self._dma(address)
        return struct.pack("<I", dma.read(offset))

    def write_registers(self, address, data):
        dma, offset = self._dma(address)
        if isinstance(dma, AxiLiteMemory):
            dma.write(offset, data)
            return
        value = struct.unpack("<I", bytes(data))[0]
        dma.regs[offset] = value if offset != CTRL else dma.regs[CTRL]
        if offset == CTRL and value & AP_START:
            self._start(dma)

    def _start(self, dma: IODMAModel) -> None:
        dma.regs[CTRL] &= ~AP_IDLE
        if not dma.name.startswith("idma"):
            return  # output DMAs wait for data
        if self.stall:
            return
        n = dma.regs[COUNT]
        packed_in = np.asarray(self.memory[dma.address]).reshape(n, -1)
        outs = self.run_accelerator(packed_in)
        for out_dma, data in zip(sorted((d for d in self.dmas.values()
                                         if d.name.startswith("odma")), key=lambda d: d.name),
                                 outs):
            assert out_dma.regs[CTRL] & AP_IDLE == 0, f"{out_dma.name} was not started first"
            assert out_dma.regs[COUNT] == n
            target = self.memory[out_dma.address]
            target[:] = data.reshape(target.shape)
            out_dma.regs[CTRL] = AP_DONE | AP_IDLE
        dma.regs[CTRL] = AP_DONE | AP_IDLE
        self.runs += 1
