"""The terminal summary of ``hw-gen report``."""

from __future__ import annotations

import json
from pathlib import Path


def terminal_summary(out: str | Path) -> str:
    reports = Path(out) / "report"
    est = json.loads((reports / "estimate.json").read_text())
    net = est["network"]
    lines = [f"{net['board']} at {net['clock_mhz']:g} MHz: {net['fps']:.1f} frames/s, "
             f"{net['cycles_per_frame']} cycles/frame (limited by {net['limited_by']})"]
    for key, total in net["totals"].items():
        cap = net["capacity"][key]
        frac = net["utilisation"][key]
        lines.append(f"  {key:<9}{total:>9} of {cap if cap is not None else '?':>9}"
                     f"  {100 * frac:5.1f}%" if isinstance(frac, float) else "")
    fifo = net["fifo"]
    lines.append(f"  FIFOs    {fifo['count']} holding {fifo['bits'] / 8192:.1f} KiB "
                 f"{fifo['bits_by_type']}")
    slowest = sorted((r for r in est["layers"] if r["op"] != "StreamingFIFO_rtl"),
                     key=lambda r: -r["cycles"])[:3]
    lines.append("  slowest: " + ", ".join(f"{r['node']} ({r['cycles']})" for r in slowest))
    return "\n".join(lines)
