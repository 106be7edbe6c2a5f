"""One FINN RTL layer as Verilator sees it: its sources, its stream ports and its data types.

The sources are the ones FINN names (``get_rtl_file_list(abspath=True)``): the wrapper that
code generation wrote into ``OUT/ip/<node>/`` and the finn-rtllib files it instantiates. The
layer's own name (FINN's ``gen_top_module``) is replaced by ``layer`` in the generated files, so
two layers of the same configuration share one compiled model; runtime data files (threshold
memories, read by ``$readmemh`` when the simulation starts) are not compiled in and are linked
under the same renamed prefix into the folder the simulation runs in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from hw_gen.errors import HwGenError

TOP = "layer"  # the canonical top-module name every layer is compiled under
# FINN's FIFO wrapper instantiates its queue-based gauge only under `FINN_SIMULATION` (FINN's
# simulator-based FIFO sizing); we simulate the synthesizable fifo.sv and leave the gauge out
# (Verilator 5.006 does not parse it).
SIMULATION_ONLY = {"fifo_gauge.sv"}


@dataclass(frozen=True)
class StreamPort:
    name: str  # e.g. in0_V (Verilator signals <name>_TDATA/_TVALID/_TREADY)
    bits: int  # TDATA width (FINN pads streams to whole bytes)
    dtype: str  # FINN data type name of one element
    folded_shape: tuple[int, ...]  # (..., words, lanes)

    @property
    def lanes(self) -> int:
        return self.folded_shape[-1]

    @property
    def beats(self) -> int:
        n = 1
        for d in self.folded_shape[:-1]:
            n *= d
        return n

    @property
    def words32(self) -> int:
        return -(-self.bits // 32)


@dataclass(frozen=True)
class RtlLayer:
    name: str  # ONNX node name
    op_type: str
    sources: dict[str, str]  # file name -> text, generated files already renamed
    data_files: dict[str, Path]  # renamed runtime file name -> generated file
    inp: StreamPort
    out: StreamPort
    attrs: dict  # the node's attributes (for the cycle model and reports)
    top: str = TOP  # the module name its generated files were renamed to
    own: dict[str, str] = field(default_factory=dict)  # our Verilog (a stitched chain's top)


def _rename(text: str, old: str, new: str) -> str:
    # the name, also as a prefix (..._impl, ..._threshs), never inside a longer name (_rtl_10)
    return re.sub(rf"(?<![A-Za-z0-9_]){re.escape(old)}(?![0-9A-Za-z])", new, text)


def _port(inst, direction: str, names: list) -> StreamPort:
    if len(names) < 1:
        raise HwGenError(f"{inst.onnx_node.name}: no {direction} stream in its interface")
    name, bits = names[0]
    if direction == "s_axis":
        dt, folded = inst.get_input_datatype(0), inst.get_folded_input_shape(0)
    else:
        dt, folded = inst.get_output_datatype(0), inst.get_folded_output_shape(0)
    return StreamPort(name, int(bits), dt.name, tuple(int(d) for d in folded))


def describe_layer(node, ip_dir: Path, top: str = TOP) -> RtlLayer:
    """The RTL layer ``node`` whose code generation wrote ``ip_dir/<node name>/``, its generated
    files renamed to the module ``top``."""
    from qonnx.custom_op.registry import getCustomOp

    inst = getCustomOp(node)
    folder = (ip_dir / node.name).resolve()
    if not folder.is_dir():
        raise HwGenError(f"{node.name}: no generated sources in {folder} (run codegen first)")
    inst.set_nodeattr("code_gen_dir_ipgen", str(folder))
    gen_top = inst.get_nodeattr("gen_top_module") or node.name
    inst.set_nodeattr("gen_top_module", gen_top)  # unset in a graph saved before codegen
    intf = inst.get_verilog_top_module_intf_names()
    inp, out = _port(inst, "s_axis", intf["s_axis"]), _port(inst, "m_axis", intf["m_axis"])
    sources: dict[str, str] = {}
    for file in inst.get_rtl_file_list(abspath=True):
        path = Path(file)
        if path.name in SIMULATION_ONLY:
            continue
        if not path.is_file():
            raise HwGenError(f"{node.name}: FINN names {path}, which does not exist")
        text = path.read_text()
        name = path.name
        if path.parent.resolve() == folder:
            text, name = _rename(text, gen_top, top), _rename(name, gen_top, top)
        if name in sources and sources[name] != text:
            raise HwGenError(f"{node.name}: two different sources named {name}")
        sources[name] = text
    data = {_rename(p.name, gen_top, top): p for p in sorted(folder.glob("*.dat"))}
    attrs = {a.name: inst.get_nodeattr(a.name) for a in node.attribute}
    return RtlLayer(node.name, node.op_type, sources, data, inp, out, attrs, top)
