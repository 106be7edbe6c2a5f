"""FINN's per-layer code generation into folders of our choosing.

FINN's PrepareIP puts each layer's sources in a fresh temporary folder with a random name,
which makes two builds of the same model differ. We call each layer's own code generation
(``code_generation_ipgen`` for HLS layers, ``generate_hdl`` for RTL ones) with
``OUT/ip/<node name>/`` as its folder, so a build is reproducible and self-contained.
"""

from __future__ import annotations

from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.errors import HwGenError

SOURCE_SUFFIXES = (".cpp", ".hpp", ".h", ".v", ".sv", ".vh", ".tcl", ".dat")


def generate_ip_sources(model: ModelWrapper, fpgapart: str, clk_ns: float, ip_dir: Path,
                        rtl_only: bool = False) -> dict:
    """Generate every hardware layer's sources (only the RTL layers' with ``rtl_only``) into
    ``ip_dir/<node>``; returns node -> files."""
    from finn.util.fpgadataflow import is_hls_node, is_rtl_node

    generated = {}
    for node in model.graph.node:
        if not (is_rtl_node(node) or (is_hls_node(node) and not rtl_only)):
            continue
        inst = getCustomOp(node)
        folder = (ip_dir / node.name).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        inst.set_nodeattr("code_gen_dir_ipgen", str(folder))
        try:
            if is_hls_node(node):
                inst.code_generation_ipgen(model, fpgapart, clk_ns)
            else:
                inst.generate_hdl(model, fpgapart, clk_ns)
        except HwGenError:
            raise
        except Exception as exc:  # FINN raises a variety of types here
            raise HwGenError(f"{node.name} ({node.op_type}): code generation failed: {exc}") from exc
        generated[node.name] = sorted(
            str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
        )
    return generated


def absolute_paths_in(text: str, roots: list[str]) -> list[str]:
    """The absolute paths (under any of ``roots``) that ``text`` mentions."""
    return sorted({root for root in roots if root and root in text})
