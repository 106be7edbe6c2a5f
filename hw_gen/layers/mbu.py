"""MultiBranchUpsample: the paper's multi-branch parallel upsampling block as one FINN layer.

What it computes is defined by ``sim/kernels/mbu.py``: K dilated 3x3 XNOR-popcount
convolutions of one bipolar NHWC map (-1 padding), each branch's accumulator times its
per-channel fixed-point gate ``G[k, c]``, summed into the exact integer ``S``, then ``S``
upsampled x2 (nearest, or the integer bilinear sum, 16 times torch's value). Batch norm and sign
follow as FINN thresholds; the scale ``s / 2^F`` (input scale over the gates' fixed point, and
``1/16`` for bilinear) is folded into them by the lowering (``hw_gen/lowering/mbu.py``).

Node: inputs ``x`` (N, H, W, Cin) BIPOLAR, ``weights`` (K, Cout, Cin, 3, 3) of -1/+1 and
``gains`` (K, Cout) in ``gateDataType`` (both initializers, as FINN's MVAU weights); output
(N, 2H, 2W, Cout). SIMD input channels per input word, PE output channels per output word.

Hardware (``templates/mbu.hpp.j2``), two dataflow stages:

* conv: ONE line buffer of ``min(2 * max(d) + 1, H)`` rows x W x Cin bits shared by all
  branches; per pixel and group of PE output channels it runs ``9 * Cin / SIMD`` cycles in which
  the K branches work in parallel, each on PE x SIMD XNOR-popcounts of its own tap; then the
  PE gated sums are written. Rows are read before the pixels that need them (no overlap):
  ``H*W*Cin/SIMD + H*W*(Cout/PE)*9*(Cin/SIMD)`` cycles.
* upsample: ``templates/upsample.hpp.j2`` on the sums (2 rows of W x Cout sums):
  ``5*H*W*Cout/PE`` cycles.

The layer's cycles are the slower stage's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.errors import HwGenError
from hw_gen.layers.attention import RAM_IMPL, uram_blocks
from hw_gen.layers.base import HwgenHLSBackend, HwgenLayer
from hw_gen.layers.upsample import (
    BRAM_18K_BITS,
    divisors,
    smallest_int_type,
    upsample_luts,
    upsample_template_context,
)
from sim.kernels.mbu import FACTOR, TAPS, check_dilations
from sim.kernels.upsample import bilinear_gain

MODES = ("bilinear", "nearest")
# A memory this small (bits) stays in LUTs, as FINN's estimates assume for small ROMs.
LUTRAM_MAX_BITS = 2048
# FINN-R's LUT model constants (FINN's MVAU estimate): control overhead, scaling factor.
LUT_BASE, LUT_SCALE = 300, 1.1


def bram18(width: int, depth: int) -> int:
    """RAMB18s for a ``width`` x ``depth`` memory in its best aspect ratio (UG573, as FINN's
    MVAU estimate)."""
    if width * depth <= LUTRAM_MAX_BITS:
        return 0
    if width == 1:
        return math.ceil(depth / 16384)
    if width == 2:
        return math.ceil(depth / 8192)
    if width <= 4:
        return math.ceil(depth / 4096)
    if width <= 9:
        return math.ceil(depth / 2048) * math.ceil(width / 9)
    if width <= 18 or depth > 512:
        return math.ceil(depth / 1024) * math.ceil(width / 18)
    return math.ceil(depth / 512) * math.ceil(width / 36)


def gate_datatype(max_gain: int) -> DataType:
    """The narrowest unsigned type for gates up to ``max_gain``."""
    return smallest_int_type(0, max(1, int(max_gain)))


class MultiBranchUpsample(HwgenLayer):
    """K parallel dilated binary 3x3 convolutions, gated integer sum, x2 upsampling."""

    def get_nodeattr_types(self):
        attrs = {
            "IFMChannels": ("i", True, 0),
            "OFMChannels": ("i", True, 0),
            "IFMDim": ("ints", True, [1, 1]),
            "Dilations": ("ints", True, [1]),
            "PE": ("i", True, 1),
            "SIMD": ("i", True, 1),
            "Mode": ("s", True, "bilinear", set(MODES)),
            "inputDataType": ("s", True, "BIPOLAR"),
            "gateDataType": ("s", True, "UINT8"),
            "outputDataType": ("s", True, ""),
            "numInputVectors": ("i", False, 1),
            # the run-time buffers (line buffer, upsampling rows); the weights are constants
            # and stay in block RAM (URAM has no initial contents on UltraScale+)
            "ram_style": ("s", False, "block", set(RAM_IMPL)),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    # -- parameters and their checks -------------------------------------------------------

    def _fail(self, message: str) -> HwGenError:
        return HwGenError(f"{self.onnx_node.name}: {message}")

    def validate(self) -> None:
        """One-line errors naming the node and the parameter at fault."""
        cin, cout = self.get_nodeattr("IFMChannels"), self.get_nodeattr("OFMChannels")
        h, w = self._map()
        if cin < 1 or cout < 1:
            raise self._fail(f"IFMChannels={cin} and OFMChannels={cout} must be positive")
        dilations = list(self.get_nodeattr("Dilations"))
        if not dilations:
            raise self._fail("Dilations is empty (at least one branch)")
        try:
            check_dilations(dilations, h, w)
        except ValueError as exc:
            raise self._fail(f"Dilations: {exc}") from exc
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        if pe < 1 or cout % pe:
            raise self._fail(f"PE={pe} does not divide OFMChannels={cout}")
        if simd < 1 or cin % simd:
            raise self._fail(f"SIMD={simd} does not divide IFMChannels={cin}")
        if self.get_nodeattr("inputDataType") != "BIPOLAR":
            raise self._fail(f"input must be BIPOLAR, not {self.get_nodeattr('inputDataType')}")
        gdt = self.gate_datatype()
        if not gdt.is_integer() or gdt.signed():
            raise self._fail(f"gateDataType must be an unsigned integer type, not {gdt.name}")

    def _map(self) -> tuple[int, int]:
        dims = list(self.get_nodeattr("IFMDim"))
        if len(dims) != 2 or min(dims) < 1:
            raise self._fail(f"IFMDim={dims} is not [H, W] of a map")
        return int(dims[0]), int(dims[1])

    def branches(self) -> int:
        return len(self.get_nodeattr("Dilations"))

    def gate_datatype(self) -> DataType:
        return DataType[self.get_nodeattr("gateDataType")]

    def line_buffer_rows(self) -> int:
        return min(2 * max(self.get_nodeattr("Dilations")) + 1, self._map()[0])

    def check_parameters(self, weights: np.ndarray | None, gains: np.ndarray | None) -> None:
        """The initializers' shapes and values against the attributes."""
        self.validate()
        k, cin, cout = self.branches(), self.get_nodeattr("IFMChannels"), self.get_nodeattr(
            "OFMChannels")
        if weights is None or gains is None:
            raise self._fail("weights and gains must be initializers of the node's inputs 1, 2")
        if weights.shape != (k, cout, cin, 3, 3):
            raise self._fail(f"weights have shape {weights.shape}, expected {(k, cout, cin, 3, 3)}")
        if not np.isin(weights, (-1, 1)).all():
            raise self._fail("weights must be -1/+1")
        if gains.shape != (k, cout):
            raise self._fail(f"gains have shape {gains.shape}, expected {(k, cout)}")
        gdt = self.gate_datatype()
        if not np.array_equal(gains, np.round(gains)):
            raise self._fail("gains must be integers (fixed-point gates G = gate * 2^F)")
        if gains.min() < gdt.min() or gains.max() > gdt.max():
            bad = gains[(gains < gdt.min()) | (gains > gdt.max())].flat[0]
            raise self._fail(
                f"gate G={int(bad)} is out of the fixed-point range of gateDataType {gdt.name} "
                f"[{int(gdt.min())}, {int(gdt.max())}]"
            )

    def parameters(self, model: ModelWrapper | None) -> tuple[np.ndarray, np.ndarray]:
        """The node's weights and gains, checked."""
        if model is None:
            raise self._fail("needs the model that holds its weights and gains")
        node = self.onnx_node
        weights, gains = (model.get_initializer(t) for t in node.input[1:3])
        self.check_parameters(weights, gains)
        return np.asarray(weights).astype(np.int64), np.asarray(gains).astype(np.int64)

    # -- shapes and types -----------------------------------------------------------------

    def get_normal_input_shape(self, ind: int = 0):
        self.validate()
        h, w = self._map()
        if ind == 1:
            return (self.branches(), self.get_nodeattr("OFMChannels"),
                    self.get_nodeattr("IFMChannels"), 3, 3)
        if ind == 2:
            return (self.branches(), self.get_nodeattr("OFMChannels"))
        return (self.get_nodeattr("numInputVectors"), h, w, self.get_nodeattr("IFMChannels"))

    def get_normal_output_shape(self, ind: int = 0):
        n, h, w, _ = self.get_normal_input_shape()
        return (n, h * FACTOR, w * FACTOR, self.get_nodeattr("OFMChannels"))

    def get_folded_input_shape(self, ind: int = 0):
        n, h, w, c = self.get_normal_input_shape()
        simd = self.get_nodeattr("SIMD")
        return (n, h, w, c // simd, simd)

    def get_folded_output_shape(self, ind: int = 0):
        n, h, w, c = self.get_normal_output_shape()
        pe = self.get_nodeattr("PE")
        return (n, h, w, c // pe, pe)

    def get_input_datatype(self, ind: int = 0) -> DataType:
        if ind == 1:
            return DataType["BIPOLAR"]
        if ind == 2:
            return self.gate_datatype()
        return super().get_input_datatype(ind)

    def get_instream_width(self, ind: int = 0) -> int:
        # weights and gains are embedded in the layer, not streamed
        return 0 if ind else super().get_instream_width(ind)

    def sum_bound(self) -> int:
        """The largest ``|S|`` the gate type allows: K * max(G) * 9 * Cin."""
        return self.branches() * int(self.gate_datatype().max()) * TAPS * self.get_nodeattr(
            "IFMChannels")

    def sum_datatype(self) -> DataType:
        bound = self.sum_bound()
        return smallest_int_type(-bound, bound)

    def upsample_gain(self) -> int:
        return bilinear_gain(FACTOR) if self.get_nodeattr("Mode") == "bilinear" else 1

    def value_range(self) -> tuple[int, int]:
        bound = self.sum_bound() * self.upsample_gain()
        return -bound, bound

    def derive_output_datatype(self) -> DataType:
        self.validate()
        return smallest_int_type(*self.value_range())

    def minimize_weight_bit_width(self, model: ModelWrapper, datatype_only: bool = False) -> None:
        """FINN's weight-width minimization: the gate type narrowed to the largest gain."""
        if datatype_only:
            return
        _, gains = self.parameters(model)
        gdt = gate_datatype(int(gains.max()) if gains.size else 0)
        self.set_nodeattr("gateDataType", gdt.name)
        model.set_tensor_datatype(self.onnx_node.input[2], gdt)

    # -- cycles, resources, folding ---------------------------------------------------------

    def stage_cycles(self) -> dict[str, int]:
        h, w = self._map()
        fold_in = self.get_nodeattr("IFMChannels") // self.get_nodeattr("SIMD")
        fold_out = self.get_nodeattr("OFMChannels") // self.get_nodeattr("PE")
        n = self.get_nodeattr("numInputVectors")
        return {
            "conv": n * h * w * (fold_in + fold_out * TAPS * fold_in),
            "upsample": n * h * w * fold_out * (1 + FACTOR * FACTOR),
        }

    def get_exp_cycles(self) -> int:
        return max(self.stage_cycles().values())

    def folding_options(self) -> dict[str, list[int]]:
        return {"SIMD": divisors(self.get_nodeattr("IFMChannels")),
                "PE": divisors(self.get_nodeattr("OFMChannels"))}

    def memory_bits(self) -> dict[str, int]:
        """Bits of each memory: the shared line buffer, weights, gates, the upsampling rows."""
        h, w = self._map()
        cin, cout, k = self.get_nodeattr("IFMChannels"), self.get_nodeattr("OFMChannels"), \
            self.branches()
        return {
            "line_buffer": self.line_buffer_rows() * w * cin,
            "weights": k * cout * TAPS * cin,
            "gates": k * cout * self.gate_datatype().bitwidth(),
            "upsample_rows": 2 * w * cout * self.sum_datatype().bitwidth(),
        }

    def _buffer_blocks(self) -> dict[str, int]:
        """Blocks of the line buffer (one dual-port copy per two branches, K reads a cycle)
        and of the upsampling rows, in the layer's ``ram_style``."""
        h, w = self._map()
        k, simd = self.branches(), self.get_nodeattr("SIMD")
        fold_in = self.get_nodeattr("IFMChannels") // simd
        line_depth = self.line_buffer_rows() * w * fold_in
        up_bits = self.memory_bits()["upsample_rows"]
        if self.get_nodeattr("ram_style") == "ultra":
            pe = self.get_nodeattr("PE")
            up_shape = (2 * w * (self.get_nodeattr("OFMChannels") // pe),
                        pe * self.sum_datatype().bitwidth())
            up = uram_blocks(*up_shape) if up_bits > LUTRAM_MAX_BITS else 0
            return {"URAM": math.ceil(k / 2) * uram_blocks(line_depth, simd) + up, "BRAM_18K": 0}
        up = math.ceil(up_bits / BRAM_18K_BITS) if up_bits > LUTRAM_MAX_BITS else 0
        return {"URAM": 0, "BRAM_18K": math.ceil(k / 2) * bram18(simd, line_depth) + up}

    def bram_estimation(self, fpgapart: str | None = None) -> int:
        k, pe, simd = self.branches(), self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        fold_in = self.get_nodeattr("IFMChannels") // simd
        fold_out = self.get_nodeattr("OFMChannels") // pe
        # K * PE weight memories, SIMD bits wide, read every cycle
        weights = k * pe * bram18(simd, fold_out * TAPS * fold_in)
        return weights + self._buffer_blocks()["BRAM_18K"]

    def lut_estimation(self, fpgapart: str | None = None) -> int:
        k, pe, simd = self.branches(), self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        cin = self.get_nodeattr("IFMChannels")
        pop_bits = (TAPS * cin).bit_length()
        acc_bits = pop_bits + 1
        gate_bits = self.gate_datatype().bitwidth()
        sum_bits = self.sum_datatype().bitwidth()
        # FINN-R's 1-bit MAC: SIMD XNORs (2 LUTs each), an adder tree, the popcount register
        xnor_popcount = 2 * simd + 2 * (2 * simd - 1) + pop_bits
        # the gate product (LUT multiplier) and the adder into the branch sum
        gate = gate_bits * acc_bits + sum_bits
        lanes = k * pe * (xnor_popcount + gate)
        mem = self.memory_bits()
        small = sum(bits for name, bits in mem.items() if bits <= LUTRAM_MAX_BITS
                    and name != "upsample_rows")
        luts = LUT_BASE + LUT_SCALE * lanes + math.ceil(small / 64)
        return int(luts + upsample_luts(pe, self.get_nodeattr("Mode"), sum_bits,
                                        self.get_output_datatype().bitwidth()))

    def dsp_estimation(self, fpgapart: str | None = None) -> int:
        return 0

    def uram_estimation(self, fpgapart: str | None = None) -> int:
        return self._buffer_blocks()["URAM"]


def _hex_literal(bits: list[int], width: int) -> str:
    """An ``ap_uint<width>`` initializer for the bits (element i at bit i)."""
    value = sum(int(b) << i for i, b in enumerate(bits))
    if width <= 64:
        return f"0x{value:x}ULL"
    return f'in_word("{value:x}", 16)'


class MultiBranchUpsample_hls(MultiBranchUpsample, HwgenHLSBackend):
    layer_template = "mbu.hpp.j2"

    def get_nodeattr_types(self):
        attrs = MultiBranchUpsample.get_nodeattr_types(self)
        attrs.update(HwgenHLSBackend.get_nodeattr_types(self))
        return attrs

    def template_context(self, model: ModelWrapper | None = None) -> dict[str, Any]:
        weights, gains = self.parameters(model)
        h, w = self._map()
        k, pe, simd = self.branches(), self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        cin, cout = self.get_nodeattr("IFMChannels"), self.get_nodeattr("OFMChannels")
        fold_in, fold_out = cin // simd, cout // pe
        bits = (weights > 0).astype(np.int64)  # XNOR encoding: bit 1 = +1
        # weights as [K][PE][FOLD_OUT][TAPS][FOLD_IN] words of SIMD input channels
        words = bits.reshape(k, fold_out, pe, cin, TAPS).transpose(0, 2, 1, 4, 3)
        words = words.reshape(k, pe, fold_out, TAPS, fold_in, simd)
        weight_rows = [
            ", ".join(_hex_literal(list(words[b, p, o, t, f]), simd)
                      for t in range(TAPS) for f in range(fold_in))
            for b in range(k) for p in range(pe) for o in range(fold_out)
        ]
        gate_words = gains.reshape(k, fold_out, pe).transpose(0, 2, 1)
        sum_dt = self.sum_datatype()
        up = upsample_template_context(h, w, cout, pe, FACTOR, self.get_nodeattr("Mode"),
                                       sum_dt, self.get_output_datatype())
        return {
            "h": h, "w": w, "cin": cin, "cout": cout, "k": k, "pe": pe, "simd": simd,
            "dilations": list(self.get_nodeattr("Dilations")),
            "rows": self.line_buffer_rows(), "mode": self.get_nodeattr("Mode"),
            "gate_bits": self.gate_datatype().bitwidth(), "sum_bits": sum_dt.bitwidth(),
            "pop_bits": (TAPS * cin).bit_length(), "weight_rows": weight_rows,
            "gate_rows": [", ".join(str(int(v)) for v in gate_words[b, p])
                          for b in range(k) for p in range(pe)],
            "up": up, "ram_impl": RAM_IMPL[self.get_nodeattr("ram_style")],
        }
