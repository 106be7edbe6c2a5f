"""The report's charts, drawn by matplotlib as inline SVG (no network, no files)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

matplotlib.rcParams["svg.hashsalt"] = "hw-gen"  # the same page for the same build

FIT_LINE = 0.8


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def barh(labels: list[str], series: dict[str, list[float]], title: str, xlabel: str) -> str:
    """Horizontal bars, one group per label, one bar per series."""
    n = max(1, len(series))
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(labels) * n + 1.2))
    height = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        ax.barh([k + i * height for k in range(len(labels))], values, height=height, label=name)
    ax.set_yticks([k + (n - 1) * height / 2 for k in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if n > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig)


def utilisation(util: dict[str, float], board: str, fit: float = FIT_LINE) -> str:
    keys = list(util)
    values = [100 * util[k] for k in keys]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    colors = ["tab:red" if v > 100 * fit else "tab:green" for v in values]
    ax.bar(keys, values, color=colors)
    ax.axhline(100 * fit, color="gray", linestyle="--", label=f"fit limit {100 * fit:.0f}%")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.1f}%", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("% of the board")
    ax.set_title(f"utilisation of {board}")
    ax.legend(fontsize=8)
    return _svg(fig)
