"""Cycles and resources of every hardware layer of the FIFO'd dataflow graph, the shell, and
the network's totals against the board (``OUT/report/estimate.json``).

FINN's layers use FINN's own estimators (source ``finn``) where they return a figure; where
FINN returns nothing (zero cycles or LUTs: padding, duplicate streams, concat, nearest
upsampling, FIFOs' cycles, width converters' cycles) and for our layers, our model
(:mod:`hw_gen.hwmodel.resources`, source ``hw-gen``). FF is not modelled.
"""

from __future__ import annotations

import math

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.boards import Board
from hw_gen.hwmodel import resources as R
from hw_gen.hwmodel.dataflow import FIFO_OP
from hw_gen.hwmodel.fifosim import hw_nodes
from hw_gen.hwmodel.schedule import words
from hw_gen.layers.base import HwgenHLSBackend

RESOURCES = ("LUT", "BRAM_18K", "URAM", "DSP")
FOLDING_ATTRS = ("PE", "SIMD", "parallel_window", "ram_style", "mem_mode", "resType", "depth",
                 "impl_style")
_FINN_METHODS = {"LUT": "lut_estimation", "BRAM_18K": "bram_estimation",
                 "URAM": "uram_estimation", "DSP": "dsp_estimation"}
FIFO_MEMORY = {"srl": "LUTRAM", "distributed": "LUTRAM", "block": "BRAM", "ultra": "URAM"}


def _attr(inst, name):
    try:
        return inst.get_nodeattr(name)
    except Exception:  # noqa: BLE001  (the op has no such attribute)
        return None


def folding_of(inst) -> dict:
    return {a: v for a in FOLDING_ATTRS if (v := _attr(inst, a)) not in (None, "")}


def _stream_words(inst, node, model) -> tuple[int, int]:
    n_in = max([words(inst.get_folded_input_shape(i)) for i, t in enumerate(node.input)
                if model.get_initializer(t) is None] or [0])
    n_out = max(words(inst.get_folded_output_shape(o)) for o in range(len(node.output)))
    return n_in, n_out


def _memory(node, inst, row: dict) -> dict | None:
    op = node.op_type
    if op == FIFO_OP:
        depth, width = inst.get_nodeattr("depth"), inst.get_instream_width()
        return {"bits": depth * width, "type": FIFO_MEMORY.get(inst.resolve_ram_style(), "BRAM")}
    if op.startswith("ConvolutionInputGenerator"):
        (_, w), (kh, _) = inst.get_nodeattr("IFMDim"), inst.get_nodeattr("ConvKernelDim")
        bits = ((kh - 1) * w + kh) * inst.get_nodeattr("IFMChannels") * \
            inst.get_input_datatype().bitwidth()
        kind = "URAM" if row["URAM"] else "BRAM" if row["BRAM_18K"] else "LUTRAM"
        return {"bits": bits, "type": kind}
    if op.startswith("UpsampleNearestNeighbour"):
        return R.memory(inst.get_nodeattr("WI") * inst.get_nodeattr("NumChannels")
                        * inst.get_input_datatype().bitwidth())
    return None


def layer_estimate(node, model: ModelWrapper, part: str) -> dict:
    inst = getCustomOp(node)
    ours = isinstance(inst, HwgenHLSBackend)
    n_in, n_out = _stream_words(inst, node, model)
    row = {"node": node.name, "op": node.op_type, "folding": folding_of(inst), "source": {}}
    cycles = int(inst.get_exp_cycles())
    if cycles > 0:
        row["cycles"], row["source"]["cycles"] = cycles, "hw-gen" if ours else "finn"
    else:  # FIFOs and width converters pass one word per cycle on the wider side
        row["cycles"], row["source"]["cycles"] = max(n_in, n_out, 1), "hw-gen"
    for key, method in _FINN_METHODS.items():
        value = getattr(inst, method)(part)
        row[key] = int(math.ceil(value or 0))
        row["source"][key] = "hw-gen" if ours else "finn"
    w_in, w_out = inst.get_instream_width(), inst.get_outstream_width()
    mem = _memory(node, inst, row)
    if row["LUT"] <= 0:
        row["LUT"] = R.streaming_lut(node.op_type, w_in, w_out, len(node.output))
        row["source"]["LUT"] = "hw-gen"
        if mem is not None and "LUT" in mem:  # a buffer of ours adds its own memory
            for key in ("LUT", "BRAM_18K", "URAM"):
                if mem[key]:
                    row[key] += mem[key]
                    row["source"][key] = "hw-gen"
    if mem is not None:
        row["memory"] = {"bits": mem["bits"], "type": mem["type"]}
    return row


def boundary_streams(model: ModelWrapper) -> list[tuple[str, int, int]]:
    """(tensor, words per frame, width in bits) of every stream into or out of the hardware
    layers: what the shell's DMA engines move."""
    hw = {n.name for n in hw_nodes(model)}
    streams = []
    for node in hw_nodes(model):
        inst = getCustomOp(node)
        for i, t in enumerate(node.input):
            producer = model.find_producer(t)
            if model.get_initializer(t) is None and (producer is None or producer.name not in hw):
                streams.append((t, words(inst.get_folded_input_shape(i)),
                                inst.get_instream_width(i)))
        for o, t in enumerate(node.output):
            consumers = model.find_consumers(t) or []
            if not consumers or any(c.name not in hw for c in consumers):
                streams.append((t, words(inst.get_folded_output_shape(o)),
                                inst.get_outstream_width(o)))
    return streams


def dma_cycles(model: ModelWrapper, port_bits: int) -> dict[str, int]:
    """Cycles per frame the shell's DMA needs for each boundary stream on the memory port."""
    return {t: math.ceil(n * w / port_bits) for t, n, w in boundary_streams(model)}


def estimate_network(model: ModelWrapper, board: Board, clk_ns: float,
                     latency_cycles: int | None = None, fit: float = 0.8) -> dict:
    """``estimate.json``: per-layer rows, the shell, and the network's figures."""
    layers = [layer_estimate(n, model, board.part) for n in hw_nodes(model)]
    shell = R.shell_estimate([w for _, _, w in boundary_streams(model)], board.memory_port_bits)
    dma = dma_cycles(model, board.memory_port_bits)
    slowest = max(layers, key=lambda r: r["cycles"])
    limit = {"by": slowest["node"], "cycles": slowest["cycles"]}
    for tensor, cycles in dma.items():
        if cycles > limit["cycles"]:
            limit = {"by": f"DMA of {tensor} ({board.memory_port_bits}-bit memory port)",
                     "cycles": cycles}
    totals = {k: sum(r[k] for r in layers + shell) for k in RESOURCES}
    capacity = board.resources or {}
    utilisation = {k: totals[k] / capacity[k] if capacity.get(k) else (0.0 if not totals[k]
                                                                          else math.inf)
                   for k in RESOURCES}
    fifos = [r for r in layers if r["op"] == FIFO_OP]
    by_type: dict[str, int] = {}
    for r in fifos:
        by_type[r["memory"]["type"]] = by_type.get(r["memory"]["type"], 0) + r["memory"]["bits"]
    network = {
        "board": board.name, "part": board.part, "clock_ns": clk_ns,
        "clock_mhz": round(1000.0 / clk_ns, 3),
        "cycles_per_frame": limit["cycles"], "limited_by": limit["by"],
        "fps": 1e9 / clk_ns / limit["cycles"],
        "latency_cycles": latency_cycles,
        "dma_cycles": dma, "memory_port_bits": board.memory_port_bits,
        "totals": totals, "capacity": {k: capacity.get(k) for k in RESOURCES},
        "utilisation": utilisation,
        "fit_limit": fit, "fits": all(u <= fit for u in utilisation.values()),
        "fifo": {"count": len(fifos), "bits": sum(r["memory"]["bits"] for r in fifos),
                 "bits_by_type": by_type},
    }
    return {"layers": layers, "shell": shell, "network": network}


def max_utilisation(estimate: dict) -> tuple[str, float]:
    """The resource with the largest utilisation fraction, and that fraction."""
    util = estimate["network"]["utilisation"]
    key = max(RESOURCES, key=lambda k: (util[k], k == "LUT"))
    return key, util[key]
