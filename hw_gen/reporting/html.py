"""``OUT/report/report.html``: per-layer cycles and resources, board utilisation, the FIFO
depths on the graph's branches and the verification table, in one offline page."""

from __future__ import annotations

import html
import json
from pathlib import Path

from hw_gen.reporting import charts

FIFO_OP = "StreamingFIFO_rtl"


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _table(head: list[str], rows: list[list]) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _layers_section(est: dict) -> str:
    layers = [r for r in est["layers"] if r["op"] != FIFO_OP]
    labels = [r["node"] for r in layers]
    cycles = charts.barh(labels, {"cycles": [r["cycles"] for r in layers]},
                         "cycles per frame", "cycles")
    res = charts.barh(labels, {"LUT": [r["LUT"] for r in layers]}, "LUTs", "LUT")
    mem = charts.barh(labels, {"BRAM18": [r["BRAM_18K"] for r in layers],
                               "URAM": [r["URAM"] for r in layers]}, "block memory", "blocks")
    rows = [[r["node"], r["op"], ", ".join(f"{k}={v}" for k, v in r["folding"].items()),
             r["cycles"], r["LUT"], r["BRAM_18K"], r["URAM"], r["DSP"],
             ", ".join(sorted({v for v in r["source"].values()}))] for r in est["layers"]]
    rows += [[s["node"], s["op"], "", "", s["LUT"], s["BRAM_18K"], s["URAM"], s["DSP"], "hw-gen"]
             for s in est["shell"]]
    table = _table(["node", "op", "folding", "cycles", "LUT", "BRAM18", "URAM", "DSP", "source"],
                   rows)
    return (f"<h2>Layers</h2><div class='chart' id='cycles'>{cycles}</div>"
            f"<div class='chart' id='luts'>{res}</div><div class='chart' id='memory'>{mem}</div>"
            f"<details><summary>per-layer table</summary>{table}</details>")


def _network_section(est: dict) -> str:
    net = est["network"]
    util = {k: v for k, v in net["utilisation"].items() if v is not None}
    chart = charts.utilisation(util, net["board"])
    facts = [["frames/s", f"{net['fps']:.1f}"], ["clock", f"{net['clock_mhz']:g} MHz"],
             ["cycles per frame", f"{net['cycles_per_frame']} (limited by {net['limited_by']})"],
             ["latency", f"{net['latency_cycles']} cycles"],
             ["FIFO memory", f"{net['fifo']['bits'] / 8192:.1f} KiB in {net['fifo']['count']} "
                             "FIFOs (" + ", ".join(f"{kind} {bits / 8192:.1f} KiB" for kind, bits
                                                   in sorted(net['fifo']['bits_by_type'].items()))
                             + ")"]]
    facts += [[k, f"{net['totals'][k]} of {net['capacity'][k]}"] for k in net["totals"]]
    return (f"<h2>Network on {html.escape(net['board'])}</h2>"
            f"<div class='chart' id='utilisation'>{chart}</div>{_table(['', ''], facts)}")


def _fifo_section(fifo: dict | None) -> str:
    if not fifo:
        return ""
    streams = [s for s in fifo["streams"] if s["depth"] > 2]
    labels = [f"{s['producer']} → {s['consumer']}" for s in streams]
    chart = charts.barh(labels, {"depth used": [s["depth"] for s in streams],
                                 "deadlock-free": [s["deadlock_free"] for s in streams]},
                        "FIFO depths (words) on the graph's branches, deeper than 2", "words")
    rows = [[s["fifo"], s["producer"], s["consumer"], s["width"], s["deadlock_free"], s["rate"],
             s["depth"]] for s in fifo["streams"]]
    table = _table(["FIFO", "from", "to", "width", "deadlock-free", "keeps rate", "depth"], rows)
    return (f"<h2>FIFOs</h2><div class='chart' id='fifos'>{chart}</div>"
            f"<details><summary>every FIFO</summary>{table}</details>")


def _verification_section(ver: dict | None) -> str:
    if not ver:
        return "<h2>Verification</h2><p>verification.json not written yet.</p>"
    rows = [[s["step"], s["status"], s["details"]] for s in ver["steps"]]
    return f"<h2>Verification</h2>{_table(['step', 'status', 'details'], rows)}"


STYLE = """body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;
font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.chart svg{max-width:100%;
height:auto}"""


def write_report(out: str | Path) -> Path:
    """Rewrite ``OUT/report/report.html`` from the JSON the build wrote."""
    out = Path(out)
    reports = out / "report"
    est = _load(reports / "estimate.json")
    if est is None:
        from hw_gen.errors import HwGenError

        raise HwGenError(f"{reports / 'estimate.json'} not found: run `hw-gen build` with at "
                         "least the estimate step first")
    parts = [f"<h1>hw-gen report: {html.escape(str(out.resolve().name))}</h1>",
             _network_section(est), _layers_section(est),
             _fifo_section(_load(reports / "fifo_model.json")),
             _verification_section(_load(out / "verification.json"))]
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>hw-gen report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    path = reports / "report.html"
    path.write_text(page)
    return path
