"""The base of our own FINN layers.

A layer of ours is two classes, registered with FINN through its ``register_custom_op`` hooks
so that FINN's passes specialize it, fold it, ask its estimates and generate its code:

* ``Name(HwgenLayer)`` in FINN's ``finn.custom_op.fpgadataflow`` domain: attributes, shapes,
  data types, cycles and resources in FINN's conventions, the legal folding values
  (:meth:`folding_options`) that :mod:`hw_gen.folding` searches, and Python execution, which
  calls the layer's kernel in ``sim/`` (for our layers the sim kernel is the definition).
* ``Name_hls(Name, HwgenHLSBackend)`` in ``finn.custom_op.fpgadataflow.hls``: its HLS C++ is
  rendered from a Jinja2 template in ``templates/``. FINN's default code generation pastes
  snippets into a template that includes finn-hlslib and adds only ``top_<name>.cpp`` to the
  Vitis HLS project; ours writes the rendered sources, a copy of our ``hls_stream.h`` and a
  synthesis TCL that adds every source, in C++14, without finn-hlslib.

The top function is the node's name (FINN's stitching instantiates the IP by it), its stream
ports are ``in<i>_V`` / ``out<i>_V`` with the padded widths of
``get_verilog_top_module_intf_names()``.
"""

from __future__ import annotations

import shutil
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from finn.custom_op.fpgadataflow.hlsbackend import HLSBackend
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.errors import HwGenError
from hw_gen.layers.naming import c_identifier
from hw_gen.templating import TEMPLATES_DIR, render

SYNTH_INCLUDE_DIR = "include"


class HwgenLayer(HWCustomOp):
    """Base of our layers' FINN op (before specialization)."""

    @abstractmethod
    def folding_options(self) -> dict[str, list[int]]:
        """Folding attribute -> legal values, from least to most parallel."""

    def get_input_datatype(self, ind: int = 0) -> DataType:
        return DataType[self.get_nodeattr("inputDataType")]

    def get_output_datatype(self, ind: int = 0) -> DataType:
        return DataType[self.get_nodeattr("outputDataType")]

    @abstractmethod
    def derive_output_datatype(self) -> DataType:
        """The output type for the current input type and attributes."""

    @abstractmethod
    def value_range(self) -> tuple[int, int]:
        """The least and greatest output value for the declared input type."""

    def datatype_problems(self) -> list[str]:
        """What the static type check reports for this layer (nothing when types hold)."""
        lo, hi = self.value_range()
        odt = self.get_output_datatype()
        if lo < odt.min() or hi > odt.max():
            return [f"output range [{lo}, {hi}] does not fit {odt.name}"]
        return []

    def infer_node_datatype(self, model) -> None:
        node = self.onnx_node
        self.set_nodeattr("inputDataType", model.get_tensor_datatype(node.input[0]).name)
        odt = self.derive_output_datatype()
        self.set_nodeattr("outputDataType", odt.name)
        model.set_tensor_datatype(node.output[0], odt)

    def get_instream_width(self, ind: int = 0) -> int:
        return self.get_input_datatype().bitwidth() * self.get_folded_input_shape()[-1]

    def get_outstream_width(self, ind: int = 0) -> int:
        return self.get_output_datatype().bitwidth() * self.get_folded_output_shape()[-1]

    def get_number_output_values(self) -> int:
        return int(np.prod(self.get_folded_output_shape()[:-1]))

    def execute_node(self, context, graph) -> None:
        """FINN's Python execution of our layer is its sim kernel (the layer's definition)."""
        from hw_gen.bundle import sim_node
        from sim.graph import run_node

        node = self.onnx_node
        args = [np.asarray(context[t]) for t in node.input]
        out = run_node(sim_node(node), args, batch=args[0].shape[0])
        for name in node.output:
            context[name] = out[name].astype(np.float32).reshape(context[name].shape)

    def verify_node(self) -> list[str]:
        return [f"{self.onnx_node.name}: attributes checked by the layer's own validation"]


class HwgenHLSBackend(HLSBackend):
    """Code generation of our layers from Jinja2 templates (mixed into ``<Layer>_hls``)."""

    #: the template (in ``templates/``) that renders the layer's C++ header
    layer_template: ClassVar[str]

    @abstractmethod
    def template_context(self, model: ModelWrapper | None = None) -> dict[str, Any]:
        """The values the layer template needs (types, sizes, folding); ``model`` holds the
        node's initializer inputs (weights) for layers that have any."""

    def top_name(self) -> str:
        name = self.onnx_node.name
        if c_identifier(name) != name:
            raise HwGenError(
                f"node name {name!r} is not a C++ identifier; run the build's name sanitizer"
            )
        return name

    def header_name(self) -> str:
        return f"{self.top_name()}.hpp"

    def render_sources(self, model: ModelWrapper | None = None) -> dict[str, str]:
        """File name -> text of the layer's C++: its header and the top function."""
        context = dict(self.template_context(model))
        context.update(self.port_context())
        header = render(self.layer_template, **context)
        top = render("top.cpp.j2", header=self.header_name(), **context)
        return {self.header_name(): header, f"top_{self.top_name()}.cpp": top}

    def port_context(self) -> dict[str, Any]:
        intf = self.get_verilog_top_module_intf_names()
        return {
            "top": self.top_name(),
            "inputs": [{"name": n, "width": w} for n, w in intf["s_axis"]],
            "outputs": [{"name": n, "width": w} for n, w in intf["m_axis"]],
        }

    def code_generation_ipgen(self, model, fpgapart: str, clk: float) -> None:
        code_dir = Path(self.get_nodeattr("code_gen_dir_ipgen"))
        if not str(code_dir) or str(code_dir) == ".":
            raise HwGenError(f"{self.onnx_node.name}: code_gen_dir_ipgen is not set")
        code_dir.mkdir(parents=True, exist_ok=True)
        sources = self.render_sources(model)
        for name, text in sources.items():
            (code_dir / name).write_text(text)
        include = code_dir / SYNTH_INCLUDE_DIR
        include.mkdir(exist_ok=True)
        shutil.copyfile(TEMPLATES_DIR / "hls_stream.h", include / "hls_stream.h")
        tcl = render(
            "hls_syn.tcl.j2",
            project=f"project_{self.top_name()}",
            top=self.top_name(),
            sources=sorted(n for n in sources if n.endswith(".cpp")),
            include_dir=SYNTH_INCLUDE_DIR,
            part=fpgapart,
            clk_ns=clk,
            directives=self.ipgen_default_directives() + self.ipgen_extra_directives(),
        )
        (code_dir / f"hls_syn_{self.top_name()}.tcl").write_text(tcl)

    def code_generation_cppsim(self, model) -> None:
        raise HwGenError(
            f"{self.onnx_node.name}: our layers are C-simulated by hw_gen.cppsim, not by FINN's "
            "cppsim flow"
        )

    # FINN's snippet-based code generation is replaced by the templates above.
    def global_includes(self) -> None:
        pass

    def defines(self, var: str) -> None:
        pass

    def docompute(self) -> None:
        pass

    def blackboxfunction(self) -> None:
        pass

    def pragmas(self) -> None:
        pass
