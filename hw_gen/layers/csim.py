"""C simulation of our layers: render their HLS and one testbench, compile it with g++ (a
translation unit per CPU, in parallel, linked into one binary), run each layer on integers
written from numpy, compare every output integer with the expected values (the layer's sim
kernel)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen import cppsim
from hw_gen.layers.base import HwgenHLSBackend
from hw_gen.templating import render


@dataclass
class LayerCase:
    """One layer to C-simulate: inputs and expected outputs are NHWC integer arrays, one per
    stream, with any number of frames; ``model`` holds the layer's initializer inputs
    (weights), for layers that have any."""

    layer: HwgenHLSBackend
    inputs: list[np.ndarray]
    expected: list[np.ndarray]
    model: ModelWrapper | None = None

    @property
    def top(self) -> str:
        return self.layer.top_name()


def port_encoding(dt: DataType) -> tuple[int, bool]:
    """Element bits and signedness of a stream element of type ``dt`` (BIPOLAR is one bit,
    0 meaning -1)."""
    if dt == DataType["BIPOLAR"]:
        return 1, False
    if not dt.is_integer():
        raise ValueError(f"{dt.name} streams are not supported by the C simulation")
    return dt.bitwidth(), dt.signed()


def encode(values: np.ndarray, dt: DataType) -> np.ndarray:
    values = np.asarray(values).astype(np.int64)
    return (values + 1) // 2 if dt == DataType["BIPOLAR"] else values


def _ports(layer: HwgenHLSBackend, output: bool) -> list[dict]:
    names = layer.port_context()["outputs" if output else "inputs"]
    ports = []
    for i, p in enumerate(names):
        dt = layer.get_output_datatype(i) if output else layer.get_input_datatype(i)
        folded = layer.get_folded_output_shape(i) if output else layer.get_folded_input_shape(i)
        bits, signed = port_encoding(dt)
        ports.append({
            "name": p["name"], "width": p["width"], "bits": bits, "signed": signed,
            "pe": int(folded[-1]), "words": int(np.prod(folded[1:-1])), "dtype": dt,
        })
    return ports


def testbench_sources(cases: list[LayerCase]) -> dict[str, str]:
    """The layers' headers, their top functions (as includes), the testbench's translation
    units ``run_part<i>.cpp`` (one per CPU at most, the layers dealt among them) and ``tb.cpp``,
    the main function."""
    sources: dict[str, str] = {}
    layers = []
    for case in cases:
        rendered = case.layer.render_sources(case.model)
        top_file = f"top_{case.top}.inc"
        sources[top_file] = rendered.pop(f"top_{case.top}.cpp")
        sources.update(rendered)
        layers.append({
            "top": case.top, "top_file": top_file,
            "inputs": _ports(case.layer, False), "outputs": _ports(case.layer, True),
            "frames": int(np.asarray(case.inputs[0]).shape[0]),
        })
    # as many translation units as g++ processes run in parallel, the layers dealt among them
    # (each unit parses ap_int once)
    units = min(len(layers), os.cpu_count() or 1)
    for i in range(units):
        sources[f"run_part{i}.cpp"] = render("layer_tb.cpp.j2", layers=layers[i::units],
                                             main=False)
    sources["tb.cpp"] = render("layer_tb.cpp.j2", layers=layers, main=True)
    return sources


def csim_layers(cases: list[LayerCase], work_dir: str | Path) -> dict[str, cppsim.CppSimResult]:
    """C-simulate every case in one binary; returns the result per layer (top name)."""
    tops = [c.top for c in cases]
    if len(set(tops)) != len(tops):
        raise ValueError(f"layer names repeat: {sorted(tops)}")
    binary = cppsim.compile_sources(testbench_sources(cases), work_dir)
    results = {}
    for case in cases:
        feed = {_port(p): encode(x, p["dtype"]) for p, x in zip(_ports(case.layer, False),
                                                                 case.inputs)}
        want = {_port(p): encode(y, p["dtype"]) for p, y in zip(_ports(case.layer, True),
                                                                case.expected)}
        results[case.top] = cppsim.run_testbench(
            binary, Path(work_dir) / "runs" / case.top, feed, want, args=[case.top])
    return results


def _port(p: dict) -> cppsim.Port:
    return cppsim.Port(p["name"], bits=p["bits"], signed=p["signed"], pe=p["pe"])
