"""The op-count table of the paper-scale configurations, written into a README.

``bnn-models opcount --readme brevitas_models/README.md`` (``make opcount-table``) counts ``seg-r18-cityscapes``, ``road-r18-kitti`` and ``sod-r18-ecssd`` at
their input sizes (``opcount.count_ops``: BOPs, FLOPs, OPs = BOPs/64 + FLOPs, 8-bit layers as
FLOPs) and replaces the text between ``<!-- opcount-table:begin -->`` and
``<!-- opcount-table:end -->`` with one table per configuration, its rows grouped by module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from brevitas_models.configs import build_config, get_config
from brevitas_models.errors import ModelError
from brevitas_models.opcount import Count, OpReport, count_ops, format_table

CONFIG_NAMES = ("seg-r18-cityscapes", "road-r18-kitti", "sod-r18-ecssd")
BEGIN, END = "<!-- opcount-table:begin -->", "<!-- opcount-table:end -->"
GROUPS = (  # (row prefix, label), first match wins
    ("backbone.stem", "stem (8-bit conv 3x3 s2)"),
    ("backbone.stages", "binary ResNet-18 stages"),
    ("att", "binary axial attention"),
    ("ups.3", "MBU x2 to 1/2"),
    ("ups.4", "MBU x2 to full size"),
    ("ups", "MBU x2 (1/32 to 1/4)"),
    ("decs", "decoder 3x3 blocks"),
    ("head", "classifier (8-bit 1x1)"),
)


def grouped(report: OpReport) -> list[tuple[str, Count, Count]]:
    sums: dict[str, list[Count]] = {}
    for row in report.rows:
        label = next((lab for prefix, lab in GROUPS if row.module.startswith(prefix)), row.module)
        pair = sums.setdefault(label, [Count(), Count()])
        pair[0], pair[1] = pair[0] + row.count, pair[1] + row.twin
    return [(label, c, t) for label, (c, t) in sums.items()]


def config_table(name: str) -> str:
    config = get_config(name)
    report = count_ops(build_config(name), config.size)
    total, twin = report.total, report.twin_total
    body = []
    for label, c, t in grouped(report) + [("total", total, twin)]:
        body.append([label, f"{c.bops / 1e9:.3f}", f"{c.flops / 1e9:.3f}", f"{c.ops / 1e9:.3f}",
                     f"{c.ops / total.ops:.1%}", f"{t.ops / 1e9:.3f}",
                     f"{t.ops / c.ops:.1f}x" if c.ops else "-"])
    header = ["module", "GBOPs", "GFLOPs", "GOPs", "share", "twin GOPs", "speedup"]
    h, w = config.size
    return (f"**{name}** at {w}x{h} (W x H), {config.num_classes} classes: "
            f"{report.speedup:.1f}x fewer OPs than its full-precision twin\n\n"
            + format_table(header, body, markdown=True))


def write(readme: Path, names: Sequence[str] = CONFIG_NAMES) -> str:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ModelError(f"{readme}: no {BEGIN} ... {END} section to replace")
    tables = "\n\n".join(config_table(n) for n in names)
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{tables}\n{END}{tail}")
    return tables
