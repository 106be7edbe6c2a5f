"""Consecutive RTL layers stitched: each run of RTL layers that feed one another stream to
stream (padding into sliding window, and FIFOs and width converters with the depths the graph
gives them, where FINN's FIFO step inserted them) becomes one Verilog top of ours, simulated
from the chain's first input to its last output and compared with sim there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from hw_gen.errors import HwGenError
from hw_gen.rtlsim.layer import RtlLayer, describe_layer
from hw_gen.templating import render

if TYPE_CHECKING:
    from qonnx.core.modelwrapper import ModelWrapper

CHAIN_TOP = "chain"
_PORT = re.compile(r"^\s*(input|output)\b(?:\s+(?:wire|logic|reg))?\s*(?:\[[^\]]*\])?\s*(\w+)",
                   re.M)


class StitchError(HwGenError):
    """Two consecutive layers that cannot be connected as they are."""


def find_chains(model: ModelWrapper, simulable: list[str]) -> list[list[str]]:
    """Runs of at least two ``simulable`` layers, each the only consumer of the previous one's
    only output."""
    ok = set(simulable)
    chains: list[list[str]] = []
    for node in model.graph.node:
        if node.name not in ok:
            continue
        producer = model.find_producer(node.input[0])
        if producer is not None and producer.name in ok and \
                len(model.find_consumers(producer.output[0]) or []) == 1:
            continue  # not a chain start
        run = [node.name]
        cur = node
        while True:
            consumers = model.find_consumers(cur.output[0]) or []
            if len(consumers) != 1 or consumers[0].name not in ok:
                break
            cur = consumers[0]
            run.append(cur.name)
        if len(run) > 1:
            chains.append(run)
    return chains


def _ports(layer: RtlLayer) -> tuple[list[str], list[str]]:
    """The top module's inputs and outputs other than clock, reset and its two streams."""
    head = re.compile(rf"\bmodule\s+{re.escape(layer.top)}\b")
    text = next((t for t in layer.sources.values() if head.search(t)), None)
    if text is None:
        raise HwGenError(f"{layer.name}: no module {layer.top} among its sources")
    text = text[head.search(text).start():]
    text = text[: text.index("endmodule")]
    streams = {f"{p}_{s}" for p in (layer.inp.name, layer.out.name)
               for s in ("TDATA", "TVALID", "TREADY")} | {"ap_clk", "ap_rst_n"}
    ties, opens = [], []
    for direction, name in _PORT.findall(text):
        if name not in streams:
            (ties if direction == "input" else opens).append(name)
    return ties, opens


def describe_chain(model: ModelWrapper, names: list[str], ip_dir: Path) -> tuple[RtlLayer, dict]:
    """The stitched chain as one layer (its Verilog top is ours) and its stages' records."""
    layers = [describe_layer(model.get_node_from_name(n), ip_dir, f"layer{i}")
              for i, n in enumerate(names)]
    for a, b in zip(layers, layers[1:]):
        if (a.out.lanes, a.out.dtype, a.out.bits) != (b.inp.lanes, b.inp.dtype, b.inp.bits):
            # equal padded widths are not enough: 2 and 4 binary lanes both travel in 8 bits
            raise StitchError(f"{a.name} -> {b.name}: {a.out.lanes} lanes of {a.out.dtype} "
                              f"({a.out.bits} bits) into {b.inp.lanes} lanes of {b.inp.dtype} "
                              f"({b.inp.bits} bits): a width converter is missing")
    vendor: dict[str, str] = {}
    data = {}
    stages = []
    for layer in layers:
        for name, text in layer.sources.items():
            if vendor.setdefault(name, text) != text:
                raise HwGenError(f"{layer.name}: its {name} differs from another layer's")
        data.update(layer.data_files)
        ties, opens = _ports(layer)
        stages.append({"node": layer.name, "top": layer.top, "in_port": layer.inp.name,
                       "out_port": layer.out.name, "in_bits": layer.inp.bits,
                       "out_bits": layer.out.bits, "ties": ties, "opens": opens})
    top = render("rtlsim/chain.v.j2", stages=stages, in_port=layers[0].inp.name,
                 out_port=layers[-1].out.name)
    chain = RtlLayer("+".join(names), "chain", vendor, data, layers[0].inp, layers[-1].out,
                     {"stages": names}, CHAIN_TOP, own={"chain.v": top})
    return chain, {"stages": names}
