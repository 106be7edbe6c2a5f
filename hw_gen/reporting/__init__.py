"""The build's report: ``OUT/report/report.html`` (one self-contained page, charts as inline
SVG) and the terminal summary of ``hw-gen report``."""

from hw_gen.reporting.html import write_report
from hw_gen.reporting.summary import terminal_summary

__all__ = ["write_report", "terminal_summary"]
