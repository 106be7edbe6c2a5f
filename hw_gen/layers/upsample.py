"""FoldedUpsample: nearest or exact bilinear upsampling by 2^k, folded over channels (PE).

FINN's own upsampler is nearest-only. This layer takes rectangular maps, folds channels by
PE and, in bilinear mode, outputs the unnormalized integer sum of torch's ``align_corners=False``
interpolation (``(2F)^2`` times the interpolated value; see ``sim/kernels/upsample.py``, which
defines the layer). Its HLS keeps two input rows and writes each output row once the rows it
reads have arrived, reading and writing in sequence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.errors import HwGenError
from hw_gen.layers.base import HwgenHLSBackend, HwgenLayer
from sim.kernels.upsample import axis_taps, bilinear_gain, check_factor

BRAM_18K_BITS = 18 * 1024


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def upsample_output_datatype(idt: DataType, factor: int, mode: str) -> DataType:
    if mode == "nearest":
        return idt
    gain = bilinear_gain(factor)
    return smallest_int_type(gain * idt.min(), gain * idt.max())


def smallest_int_type(lo: int, hi: int) -> DataType:
    """The narrowest INTn/UINTn holding every integer in [lo, hi]."""
    if lo >= 0:
        return DataType[f"UINT{max(1, int(hi).bit_length())}"]
    bits = max(int(-lo - 1).bit_length(), int(hi).bit_length()) + 1
    return DataType[f"INT{bits}"]


def upsample_luts(pe: int, mode: str, in_bits: int, out_bits: int) -> int:
    """LUTs of the upsampling datapath (also a stage of other layers)."""
    if mode == "nearest":
        return 40 + pe * in_bits
    # per element: 4 constant-weight products and 3 additions at the output width
    return 120 + pe * 7 * out_bits


class FoldedUpsample(HwgenLayer):
    """Upsampling by ``Factor`` (2^k for bilinear) over NHWC streams, PE channels per word."""

    def get_nodeattr_types(self):
        attrs = {
            "NumChannels": ("i", True, 0),
            "PE": ("i", True, 1),
            "HI": ("i", True, 0),
            "WI": ("i", True, 0),
            "Factor": ("i", True, 2),
            "Mode": ("s", True, "bilinear", {"nearest", "bilinear"}),
            "inputDataType": ("s", True, ""),
            "outputDataType": ("s", True, ""),
            "numInputVectors": ("i", False, 1),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def validate(self) -> None:
        name = self.onnx_node.name
        try:
            check_factor(self.get_nodeattr("Factor"), self.get_nodeattr("Mode"))
        except ValueError as exc:
            raise HwGenError(f"{name}: {exc}") from exc
        c, pe = self.get_nodeattr("NumChannels"), self.get_nodeattr("PE")
        if pe < 1 or c % pe:
            raise HwGenError(f"{name}: PE={pe} does not divide NumChannels={c}")

    def _dims(self) -> tuple[int, int, int, int, int]:
        self.validate()
        f = self.get_nodeattr("Factor")
        hi, wi = self.get_nodeattr("HI"), self.get_nodeattr("WI")
        return hi, wi, hi * f, wi * f, self.get_nodeattr("NumChannels")

    def get_normal_input_shape(self, ind: int = 0):
        hi, wi, _, _, c = self._dims()
        return (self.get_nodeattr("numInputVectors"), hi, wi, c)

    def get_normal_output_shape(self, ind: int = 0):
        _, _, ho, wo, c = self._dims()
        return (self.get_nodeattr("numInputVectors"), ho, wo, c)

    def get_folded_input_shape(self, ind: int = 0):
        n, h, w, c = self.get_normal_input_shape()
        pe = self.get_nodeattr("PE")
        return (n, h, w, c // pe, pe)

    def get_folded_output_shape(self, ind: int = 0):
        n, h, w, c = self.get_normal_output_shape()
        pe = self.get_nodeattr("PE")
        return (n, h, w, c // pe, pe)

    def get_exp_cycles(self) -> int:
        # rows are read, then the output rows they complete are written (no overlap)
        fin, fout = self.get_folded_input_shape(), self.get_folded_output_shape()
        return int(np.prod(fin[:-1]) + np.prod(fout[:-1]))

    def derive_output_datatype(self) -> DataType:
        return upsample_output_datatype(
            self.get_input_datatype(), self.get_nodeattr("Factor"), self.get_nodeattr("Mode"))

    def value_range(self) -> tuple[int, int]:
        idt = self.get_input_datatype()
        if self.get_nodeattr("Mode") == "nearest":
            return int(idt.min()), int(idt.max())
        gain = bilinear_gain(self.get_nodeattr("Factor"))
        return int(gain * idt.min()), int(gain * idt.max())

    def folding_options(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.get_nodeattr("NumChannels"))}

    def line_buffer_bits(self) -> int:
        _, wi, _, _, c = self._dims()
        return 2 * wi * c * self.get_input_datatype().bitwidth()

    def bram_estimation(self, fpgapart: str | None = None) -> int:
        bits = self.line_buffer_bits()
        return math.ceil(bits / BRAM_18K_BITS) if bits > 2048 else 0

    def lut_estimation(self, fpgapart: str | None = None) -> int:
        return upsample_luts(self.get_nodeattr("PE"), self.get_nodeattr("Mode"),
                             self.get_input_datatype().bitwidth(),
                             self.get_output_datatype().bitwidth())

    def dsp_estimation(self, fpgapart: str | None = None) -> int:
        return 0

    def uram_estimation(self, fpgapart: str | None = None) -> int:
        return 0


class FoldedUpsample_hls(FoldedUpsample, HwgenHLSBackend):
    layer_template = "upsample.hpp.j2"

    def get_nodeattr_types(self):
        attrs = FoldedUpsample.get_nodeattr_types(self)
        attrs.update(HwgenHLSBackend.get_nodeattr_types(self))
        return attrs

    def template_context(self, model: ModelWrapper | None = None) -> dict[str, Any]:
        hi, wi, _, _, c = self._dims()
        return upsample_template_context(
            hi, wi, c, self.get_nodeattr("PE"), self.get_nodeattr("Factor"),
            self.get_nodeattr("Mode"), self.get_input_datatype(), self.get_output_datatype())


def upsample_template_context(hi: int, wi: int, channels: int, pe: int, factor: int, mode: str,
                              idt: DataType, odt: DataType) -> dict[str, Any]:
    """What ``upsample.hpp.j2`` needs (besides ``top``), also for layers that embed the
    upsampling as a stage of their own."""
    ho, wo = hi * factor, wi * factor
    ctx: dict[str, Any] = {
        "mode": mode, "factor": factor, "hi": hi, "wi": wi, "ho": ho, "wo": wo,
        "channels": channels, "pe": pe, "in_bits": idt.bitwidth(), "out_bits": odt.bitwidth(),
        "in_kind": "bipolar" if idt == DataType["BIPOLAR"] else (
            "signed" if idt.signed() else "unsigned"),
    }
    if mode == "bilinear":
        rows, cols = axis_taps(hi, factor), axis_taps(wi, factor)
        ctx["rows"] = {k: [int(v) for v in getattr(rows, k)] for k in rows._fields}
        ctx["cols"] = {k: [int(v) for v in getattr(cols, k)] for k in cols._fields}
    else:
        ctx["rows"] = {"first": [o // factor for o in range(ho)]}
        ctx["cols"] = {"first": [o // factor for o in range(wo)]}
    return ctx
