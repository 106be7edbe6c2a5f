"""The per-layer table of a lowered graph: what each hardware layer is and what it costs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.folding import is_hw

_SIZE_ATTRS = {
    "MVAU": ("MW", "MH"),
    "VVAU": ("Channels", "Kernel"),
}


@dataclass
class LayerRow:
    name: str
    op: str
    size: str
    in_type: str
    out_type: str
    weight_type: str
    acc_type: str
    pe: int | None
    simd: int | None
    cycles: int


def _nodeattr(inst, name: str):
    try:
        return inst.get_nodeattr(name)
    except (AttributeError, KeyError, Exception):
        return None


def layer_rows(model: ModelWrapper) -> list[LayerRow]:
    rows = []
    for node in model.graph.node:
        if not is_hw(node):
            continue
        inst = getCustomOp(node)
        base = node.op_type.replace("_hls", "").replace("_rtl", "")
        if base in _SIZE_ATTRS:
            a, b = _SIZE_ATTRS[base]
            size = f"{a}={_nodeattr(inst, a)} {b}={_nodeattr(inst, b)}"
        else:
            ch = None
            for key in ("NumChannels", "IFMChannels", "Channels", "Labels"):
                ch = _nodeattr(inst, key)
                if ch is not None:
                    break
            size = f"C={ch}" if ch is not None else ""
        rows.append(
            LayerRow(
                name=node.name,
                op=node.op_type,
                size=size,
                in_type=str(inst.get_input_datatype(0).name),
                out_type=str(inst.get_output_datatype(0).name),
                weight_type=str(_nodeattr(inst, "weightDataType") or ""),
                acc_type=str(_nodeattr(inst, "accDataType") or "") if base == "MVAU" else "",
                pe=_nodeattr(inst, "PE"),
                simd=_nodeattr(inst, "SIMD"),
                cycles=int(inst.get_exp_cycles()),
            )
        )
    return rows


def format_table(rows: list[LayerRow]) -> str:
    head = ["layer", "op", "size", "in", "out", "weights", "acc", "PE", "SIMD", "cycles"]
    body = [
        [r.name, r.op, r.size, r.in_type, r.out_type, r.weight_type, r.acc_type,
         "" if r.pe is None else str(r.pe), "" if r.simd is None else str(r.simd), str(r.cycles)]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def throughput(rows: list[LayerRow], clk_ns: float) -> dict:
    slowest = max(rows, key=lambda r: r.cycles)
    return {
        "clock_ns": clk_ns,
        "slowest_layer": slowest.name,
        "cycles_per_frame": slowest.cycles,
        "frames_per_second": 1e9 / clk_ns / max(1, slowest.cycles),
    }


def buffer_reports(model: ModelWrapper, board=None) -> dict[str, dict]:
    """Layer name -> its large buffers in bits and memory blocks, for layers that report them
    (``buffer_report(board)``, e.g. the attention layer's frame buffer and residual FIFO)."""
    reports = {}
    for node in model.graph.node:
        if is_hw(node):
            method = getattr(getCustomOp(node), "buffer_report", None)
            if method is not None:
                reports[node.name] = method(board)
    return reports


def write_layer_report(rows: list[LayerRow], clk_ns: float, path: Path,
                       buffers: dict[str, dict] | None = None) -> None:
    data = {"layers": [asdict(r) for r in rows], "throughput": throughput(rows, clk_ns)}
    if buffers:
        data["buffers"] = buffers
    path.write_text(json.dumps(data, indent=1))
