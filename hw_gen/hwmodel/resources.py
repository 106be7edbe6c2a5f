"""Our resource model where FINN's estimators return nothing (source ``hw-gen``).

Each formula states its assumption. ``w_in``/``w_out``: stream widths in bits.
"""

from __future__ import annotations

import math

from hw_gen.boards import BRAM_18K_BITS, URAM_BITS

# Below this many bits a buffer maps to LUTRAM/shift registers (Vivado's inference threshold
# for distributed memory is a few kilobits; FINN's FIFO ladder uses the same order).
LUTRAM_MAX_BITS = 4096
LUTRAM_BITS_PER_LUT = 64  # one LUT6 as 64x1 distributed RAM
CONTROL_LUT = 20  # handshake and loop counters of any streaming layer


def memory(bits: int, prefer: str = "auto") -> dict:
    """A buffer of ``bits``: its memory type and cost. ``auto``: LUTRAM up to
    LUTRAM_MAX_BITS, else BRAM18 blocks (18 Kb each); ``ultra``: URAM blocks (288 Kb)."""
    if bits <= 0:
        return {"bits": 0, "type": "none", "LUT": 0, "BRAM_18K": 0, "URAM": 0}
    if prefer == "ultra":
        return {"bits": bits, "type": "URAM", "LUT": 0, "BRAM_18K": 0,
                "URAM": math.ceil(bits / URAM_BITS)}
    if prefer in ("distributed", "lutram") or (prefer == "auto" and bits <= LUTRAM_MAX_BITS):
        return {"bits": bits, "type": "LUTRAM", "LUT": math.ceil(bits / LUTRAM_BITS_PER_LUT),
                "BRAM_18K": 0, "URAM": 0}
    return {"bits": bits, "type": "BRAM", "LUT": 0, "BRAM_18K": math.ceil(bits / BRAM_18K_BITS),
            "URAM": 0}


def streaming_lut(op: str, w_in: int, w_out: int, n_out: int = 1) -> int:
    """LUTs of a layer FINN has no estimate for.

    - padding: a 2:1 mux per output bit (data or the pad value) plus row/column counters;
    - duplicate streams: one output register bit per LUT pair per output, plus handshakes;
    - concat: an N:1 mux per output bit (one LUT per bit up to 4 inputs);
    - nearest upsampling: the row buffer's read mux, one LUT per output bit;
    - anything else: registers on both streams, one LUT per two bits.
    """
    base = op.split("_")[0]
    if base == "FMPadding":
        return CONTROL_LUT + w_out
    if base == "DuplicateStreams":
        return CONTROL_LUT + n_out * math.ceil(w_out / 2)
    if base == "StreamingConcat":
        return CONTROL_LUT + w_out
    if base == "UpsampleNearestNeighbour":
        return CONTROL_LUT + w_out
    return CONTROL_LUT + math.ceil((w_in + w_out) / 2)


# The shell around the accelerator (FINN's Zynq flow): an IODMA per graph input and output
# (an HLS AXI-MM master with a width converter to the memory port), an AXI-Lite interconnect
# for their control, and a SmartConnect to the PS memory port. Figures from FINN's own
# post-synthesis reports of small designs on Pynq-Z2/ZCU104 (order of magnitude).
DMA_LUT_BASE = 1100
DMA_BRAM_18K = 2  # the DMA's burst buffer
INTERCONNECT_LUT = 1500
INTERCONNECT_BRAM_18K = 0


def shell_estimate(stream_widths: list[int], port_bits: int) -> list[dict]:
    """Rows for the shell: one DMA per stream (width converter: one LUT per bit of the wider
    side, twice), and the interconnect."""
    rows = []
    for i, w in enumerate(stream_widths):
        rows.append({"node": f"shell_dma_{i}", "op": "IODMA (shell)",
                     "LUT": DMA_LUT_BASE + 2 * max(w, port_bits), "BRAM_18K": DMA_BRAM_18K,
                     "URAM": 0, "DSP": 0})
    rows.append({"node": "shell_interconnect", "op": "AXI interconnect (shell)",
                 "LUT": INTERCONNECT_LUT, "BRAM_18K": INTERCONNECT_BRAM_18K, "URAM": 0,
                 "DSP": 0})
    return rows
