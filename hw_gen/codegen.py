"""FINN's per-layer code generation into folders of our choosing.

FINN's PrepareIP puts each layer's sources in a fresh temporary folder with a random name,
which makes two builds of the same model differ. We call each layer's own code generation
(``code_generation_ipgen`` for HLS layers, ``generate_hdl`` for RTL ones) with
``OUT/ip/<node name>/`` as its folder, so a build is reproducible and self-contained.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hw_gen.errors import HwGenError

SOURCE_SUFFIXES = (".cpp", ".hpp", ".h", ".v", ".sv", ".vh", ".tcl", ".dat")


def generate_ip_sources(model: ModelWrapper, fpgapart: str, clk_ns: float, ip_dir: Path,
                        rtl_only: bool = False) -> dict:
    """Generate every hardware layer's sources (only the RTL layers' with ``rtl_only``) into
    ``ip_dir/<node>``; returns node -> files."""
    generated: dict = {}
    with fast_hex_packing():
        for node in model.graph.node:
            _generate(node, model, fpgapart, clk_ns, ip_dir, generated, rtl_only)
    return generated


def _generate(node, model: ModelWrapper, fpgapart: str, clk_ns: float, ip_dir: Path,
              generated: dict, rtl_only: bool = False) -> None:
    from finn.util.fpgadataflow import is_hls_node, is_rtl_node

    if not (is_rtl_node(node) or (is_hls_node(node) and not rtl_only)):
        return
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


def _hex_strings(original):
    """FINN's ``pack_innermost_dim_as_hex_string`` for integer types through
    :func:`sim.packing.hex_words` (one Python integer per row instead of a bit string built
    element by element: the same strings, two orders of magnitude faster on weight files);
    every other case (BIPOLAR, fixed point, floats, a width that is not whole hex digits)
    goes to FINN's own."""
    from sim.packing import hex_words

    def pack(ndarray, dtype, pad_to_nbits, reverse_inner=False, prefix="0x"):
        name = dtype.name
        if not (name == "BINARY" or name.startswith(("INT", "UINT"))) or pad_to_nbits % 4 \
                or pad_to_nbits < 4:
            return original(ndarray, dtype, pad_to_nbits, reverse_inner, prefix)
        values = np.asarray(ndarray, dtype=np.float32)  # as FINN's: a float32 array first
        return hex_words(values, name, pad_to_nbits, reverse_inner=reverse_inner, prefix=prefix)

    return pack


@contextlib.contextmanager
def fast_hex_packing() -> Iterator[None]:
    """Within the block, FINN's modules (and the ones that imported it) pack hex strings with
    :func:`_hex_strings`; restored afterwards."""
    import finn.util.data_packing as data_packing

    original = data_packing.pack_innermost_dim_as_hex_string
    fast = _hex_strings(original)
    patched = [m for name, m in list(sys.modules.items())
               if name.startswith("finn.") and m is not None
               and getattr(m, "pack_innermost_dim_as_hex_string", None) is original]
    for module in patched:
        module.pack_innermost_dim_as_hex_string = fast
    try:
        yield
    finally:
        for module in patched:
            module.pack_innermost_dim_as_hex_string = original


def absolute_paths_in(text: str, roots: list[str]) -> list[str]:
    """The absolute paths (under any of ``roots``) that ``text`` mentions."""
    return sorted({root for root in roots if root and root in text})
