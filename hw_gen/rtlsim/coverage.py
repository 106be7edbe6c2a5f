"""Which layers of a specialized graph are checked by what, after specialization.

- ``rtl``: FINN's RTL layers (finn-rtllib), simulated in Verilator by the ``rtlsim`` step;
- ``ours``: our own HLS layers, C-simulated with g++ by the ``csim_ours`` step;
- ``unchecked``: FINN's HLS layers (every matrix-vector unit among them): their C simulation
  needs finn-hlslib, which is not installed here; sim is our only model of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qonnx.core.modelwrapper import ModelWrapper

# finn-rtllib's DSP-based matrix-vector unit compiles a behavioural multiply under Verilator
# (mvu.sv: `ifdef VERILATOR -> BEHAVIORAL) in place of the DSP48/DSP58 primitives.
BEHAVIOURAL_ONLY = {
    "MVAU_rtl": "Verilator simulates finn-rtllib's behavioural multiply; the DSP primitive path "
                "that synthesis uses is not simulated",
    "VVAU_rtl": "Verilator simulates finn-rtllib's behavioural multiply; the DSP primitive path "
                "that synthesis uses is not simulated",
}


def classify(model: ModelWrapper) -> dict[str, list[str]]:
    """Node names of the hardware layers in ``model`` by who checks them (see module doc)."""
    from qonnx.custom_op.registry import getCustomOp

    from finn.util.fpgadataflow import is_hls_node, is_rtl_node
    from hw_gen.layers.base import HwgenHLSBackend

    groups: dict[str, list[str]] = {"rtl": [], "ours": [], "unchecked": []}
    for node in model.graph.node:
        if is_rtl_node(node):
            groups["rtl"].append(node.name)
        elif is_hls_node(node):
            ours = isinstance(getCustomOp(node), HwgenHLSBackend)
            groups["ours" if ours else "unchecked"].append(node.name)
    return groups


def describe(groups: dict[str, list[str]], simulated: list[str], op_types: dict[str, str]) -> dict:
    """The coverage record for ``verification.json``."""
    by_op: dict[str, int] = {}
    for name in groups["unchecked"]:
        by_op[op_types[name]] = by_op.get(op_types[name], 0) + 1
    notes = sorted({BEHAVIOURAL_ONLY[op_types[n]] for n in simulated if op_types[n] in BEHAVIOURAL_ONLY})
    return {
        "rtl_verilator": simulated,
        "rtl_not_simulated": [n for n in groups["rtl"] if n not in simulated],
        "ours_csim": groups["ours"],
        "unchecked_after_specialization": groups["unchecked"],
        "unchecked_by_op": by_op,
        "unchecked_reason": "FINN's HLS layers: their C simulation needs finn-hlslib (not on "
                            "PyPI); sim is the only model of them after specialization",
        "notes": notes,
    }
