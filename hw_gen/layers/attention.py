"""AxialAttention: the activation-by-activation part of the binary attention block.

Four NHWC input streams, read in lockstep pixel by pixel: ``Q`` and ``K`` (d channels, BIPOLAR,
SIMD per word), ``V`` (C channels of ``valueDataType``, PE per word) and ``X`` (the block input,
C channels, BIPOLAR, PE per word). One output stream (C channels, PE per word): the integer
``s_c * I`` with ``I = P_c * X + Y`` (``outputDataType`` sized from the value range), or,
once the re-binarization thresholds that follow it are absorbed (``Thresholds``), one bit per
channel decided by comparisons without division. ``sim/kernels/attention.py`` defines the arithmetic.

The HLS is two dataflow processes. ``row_pass`` reads one image row at a time, computes each
pixel's row average (one reciprocal per pixel) and passes it on with the pixel's Q and K;
it forwards X into the residual FIFO. ``col_pass`` cannot start before the last row has
arrived: it fills the frame buffer (R, Q, K of every pixel), then computes the column
averages and the output in raster order, reading X back from the residual FIFO. That FIFO
therefore holds a whole frame of X (:meth:`AxialAttention.residual_fifo_depth`); a shallower
one deadlocks, which the C simulation reports naming the stream ``residual``.
"""

from __future__ import annotations

import math
from typing import Any

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.boards import BRAM_18K_BITS, URAM_BITS, Board
from hw_gen.errors import HwGenError
from hw_gen.layers.base import HwgenHLSBackend, HwgenLayer
from hw_gen.layers.upsample import divisors, smallest_int_type
from sim.kernels.attention import AxialSpec, bits_signed, bits_unsigned, value_bounds

Q, K, V, X = range(4)
PROJECTION_INPUTS = (Q, K)
# Block RAM aspect ratios (depth, width) of one 18 Kb block, and one UltraRAM block's.
BRAM_18K_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
URAM_SHAPE = (4096, 72)
RAM_STYLES = {"block", "ultra"}
RAM_IMPL = {"block": "bram", "ultra": "uram"}  # Vitis HLS BIND_STORAGE impl of each


LUTRAM_BITS = 2048  # smaller memories go to LUTs, as FINN's estimates assume


def bram_18k_blocks(depth: int, width: int) -> int:
    """18 Kb block RAMs for a ``depth x width`` memory, with the best aspect ratio."""
    if depth * width <= LUTRAM_BITS:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in BRAM_18K_SHAPES)


def uram_blocks(depth: int, width: int) -> int:
    if depth * width <= LUTRAM_BITS:
        return 0
    d, w = URAM_SHAPE
    return math.ceil(width / w) * math.ceil(depth / d)


class AxialAttention(HwgenLayer):
    """Binary axial attention over an H x W map (see the module doc)."""

    def get_nodeattr_types(self):
        attrs = {
            "Channels": ("i", True, 0),
            "ProjChannels": ("i", True, 0),
            "H": ("i", True, 0),
            "W": ("i", True, 0),
            "PE": ("i", True, 1),
            "SIMD": ("i", True, 1),
            "FracBits": ("i", True, 8),
            "Lut": ("ints", True, []),
            "ResidualGain": ("ints", True, []),
            # per-channel +-1 moved in from a following Mul (empty: all +1)
            "OutputSign": ("ints", False, []),
            # re-binarization thresholds absorbed from the graph (empty: output the integer I)
            "Thresholds": ("ints", False, []),
            # inputs that arrive XNOR-encoded (BINARY 0/1 for -1/+1; the same bits as BIPOLAR)
            "binaryInputs": ("ints", False, []),
            "valueDataType": ("s", True, ""),
            "outputDataType": ("s", True, ""),
            "numInputVectors": ("i", False, 1),
            "ram_style": ("s", False, "block", RAM_STYLES),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    # -- parameters ------------------------------------------------------------------------

    def _fail(self, message: str) -> HwGenError:
        return HwGenError(f"{self.onnx_node.name}: {message}")

    def spec(self) -> AxialSpec:
        """The checked arithmetic of this layer."""
        try:
            vmin, vmax = value_bounds(self.get_nodeattr("valueDataType"))
            spec = AxialSpec(
                channels=self.get_nodeattr("Channels"),
                proj_channels=self.get_nodeattr("ProjChannels"),
                height=self.get_nodeattr("H"), width=self.get_nodeattr("W"),
                value_min=vmin, value_max=vmax, frac_bits=self.get_nodeattr("FracBits"),
                lut=tuple(self.get_nodeattr("Lut")),
                gains=tuple(self.get_nodeattr("ResidualGain")),
                signs=tuple(self.get_nodeattr("OutputSign")),
            )
            spec.check()
        except (ValueError, KeyError) as exc:
            raise self._fail(str(exc).strip("'\"")) from exc
        return spec

    def validate(self) -> AxialSpec:
        spec = self.spec()
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        if pe < 1 or spec.channels % pe:
            raise self._fail(f"PE={pe} does not divide Channels={spec.channels}")
        if simd < 1 or spec.proj_channels % simd:
            raise self._fail(f"SIMD={simd} does not divide ProjChannels={spec.proj_channels}")
        binary = set(self.get_nodeattr("binaryInputs"))
        signs = {Q, K, X} | ({V} if self.get_nodeattr("valueDataType") == "BIPOLAR" else set())
        if binary - signs:
            raise self._fail(f"binaryInputs {sorted(binary)}: only the +-1 inputs "
                             f"{sorted(signs)} can arrive XNOR-encoded")
        thresholds = self.get_nodeattr("Thresholds")
        if thresholds:
            if len(thresholds) != spec.channels:
                raise self._fail(f"{len(thresholds)} thresholds for {spec.channels} channels")
            if self.get_nodeattr("outputDataType") not in ("BINARY", "BIPOLAR"):
                raise self._fail("with absorbed thresholds the output must be BINARY or BIPOLAR, "
                                 f"not {self.get_nodeattr('outputDataType')}")
        return spec

    @property
    def fused(self) -> bool:
        return bool(self.get_nodeattr("Thresholds"))

    # -- shapes and types ------------------------------------------------------------------

    def _channels(self, ind: int) -> int:
        return self.get_nodeattr("ProjChannels" if ind in PROJECTION_INPUTS else "Channels")

    def _fold(self, ind: int) -> int:
        return self.get_nodeattr("SIMD" if ind in PROJECTION_INPUTS else "PE")

    def get_normal_input_shape(self, ind: int = 0):
        self.validate()
        return (self.get_nodeattr("numInputVectors"), self.get_nodeattr("H"),
                self.get_nodeattr("W"), self._channels(ind))

    def get_normal_output_shape(self, ind: int = 0):
        return self.get_normal_input_shape(V)

    def get_folded_input_shape(self, ind: int = 0):
        n, h, w, c = self.get_normal_input_shape(ind)
        f = self._fold(ind)
        return (n, h, w, c // f, f)

    def get_folded_output_shape(self, ind: int = 0):
        return self.get_folded_input_shape(V)

    def get_input_datatype(self, ind: int = 0) -> DataType:
        if ind in self.get_nodeattr("binaryInputs"):
            return DataType["BINARY"]
        return DataType[self.get_nodeattr("valueDataType")] if ind == V else DataType["BIPOLAR"]

    def get_instream_width(self, ind: int = 0) -> int:
        return self.get_input_datatype(ind).bitwidth() * self._fold(ind)

    def infer_node_datatype(self, model) -> None:
        node = self.onnx_node
        binary = self.get_nodeattr("binaryInputs")
        if V not in binary:
            self.set_nodeattr("valueDataType", model.get_tensor_datatype(node.input[V]).name)
        for ind in (Q, K, V, X):
            got, want = model.get_tensor_datatype(node.input[ind]), self.get_input_datatype(ind)
            if got != want:
                raise self._fail(f"input {ind} ({'QKVX'[ind]}) must be {want.name}, not {got.name}")
        odt = self.derive_output_datatype()
        self.set_nodeattr("outputDataType", odt.name)
        model.set_tensor_datatype(node.output[0], odt)

    def derive_output_datatype(self) -> DataType:
        if self.fused:
            return DataType[self.get_nodeattr("outputDataType")]
        return smallest_int_type(*self.spec().output_range)

    def value_range(self) -> tuple[int, int]:
        if self.fused:
            return (-1, 1) if self.get_nodeattr("outputDataType") == "BIPOLAR" else (0, 1)
        return self.spec().output_range

    def folding_options(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.get_nodeattr("Channels")),
                "SIMD": divisors(self.get_nodeattr("ProjChannels"))}

    # -- cycles and memories ---------------------------------------------------------------

    def get_exp_cycles(self) -> int:
        """Per frame: each pixel is read in max-word steps (d/SIMD + C/PE), pairs with the W
        pixels of its row and the H of its column (d/SIMD cycles per affinity, C/PE per
        aggregation); the column pass of a frame does not overlap the next row pass."""
        spec = self.validate()
        per_pair = spec.proj_channels // self.get_nodeattr("SIMD") + (
            spec.channels // self.get_nodeattr("PE"))
        pixels = spec.height * spec.width * self.get_nodeattr("numInputVectors")
        return pixels * per_pair * (spec.height + spec.width + 1)

    def row_bits(self) -> int:
        """Width of R, the row-pass result held between the passes (units 2^-FracBits)."""
        return bits_signed(*self.spec().row_range)

    def memories(self) -> dict[str, tuple[int, int]]:
        """Name -> (depth, width in bits) of the layer's large memories."""
        spec = self.validate()
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        pixels = spec.height * spec.width
        fold = spec.channels // pe
        return {
            "frame_r": (pixels * fold, pe * self.row_bits()),
            "frame_q": (pixels, spec.proj_channels),
            "frame_k": (pixels, spec.proj_channels),
            "residual_fifo": (self.residual_fifo_depth(), pe),
            "row_v": (spec.width * fold, pe * self.get_input_datatype(V).bitwidth()),
            "row_qk": (2 * spec.width * (spec.proj_channels // simd), simd),
        }

    def residual_fifo_depth(self) -> int:
        """Words of X the row pass writes before the column pass reads the first: a frame."""
        spec = self.validate()
        return spec.height * spec.width * (spec.channels // self.get_nodeattr("PE"))

    def frame_buffer_bits(self) -> int:
        """R of every pixel (H*W*C entries of :meth:`row_bits`) plus its Q and K bits."""
        mem = self.memories()
        return sum(d * w for name, (d, w) in mem.items() if name.startswith("frame_"))

    def buffer_report(self, board: Board | None = None) -> dict[str, Any]:
        """Frame buffer and residual FIFO in bits, 18 Kb BRAMs and URAMs (each memory mapped
        whole to one kind; up to 2048 bits to LUTs), and, given a board, against its
        capacity."""
        mem = self.memories()
        groups = {"frame_buffer": [m for m in mem if m.startswith("frame_")],
                  "residual_fifo": ["residual_fifo"],
                  "row_buffers": [m for m in mem if m.startswith("row_")]}
        report: dict[str, Any] = {"row_type": f"INT{self.row_bits()}",
                                  "frac_bits": self.get_nodeattr("FracBits")}
        for group, names in groups.items():
            report[group] = {
                "bits": sum(mem[n][0] * mem[n][1] for n in names),
                "BRAM_18K": sum(bram_18k_blocks(*mem[n]) for n in names),
                "URAM": sum(uram_blocks(*mem[n]) for n in names),
                "memories": {n: {"depth": mem[n][0], "width": mem[n][1]} for n in names},
            }
        report["residual_fifo"]["depth_words"] = self.residual_fifo_depth()
        if board is not None and board.resources is not None:
            have = {k: board.resources[k] for k in ("BRAM_18K", "URAM")}
            bits = {"BRAM_18K": have["BRAM_18K"] * BRAM_18K_BITS, "URAM": have["URAM"] * URAM_BITS}
            report["board"] = {"name": board.name, "part": board.part, **have,
                               "bits": bits}
            for group in groups:
                g = report[group]
                g["BRAM_18K_fraction"] = g["BRAM_18K"] / have["BRAM_18K"]
                g["URAM_fraction"] = g["URAM"] / have["URAM"] if have["URAM"] else math.inf
        return report

    def _ram_blocks(self, kind: str) -> int:
        if self.get_nodeattr("ram_style") != kind:
            return 0
        count = bram_18k_blocks if kind == "block" else uram_blocks
        return sum(count(d, w) for d, w in self.memories().values())

    def bram_estimation(self, fpgapart: str | None = None) -> int:
        return self._ram_blocks("block")

    def uram_estimation(self, fpgapart: str | None = None) -> int:
        return self._ram_blocks("ultra")

    def lut_estimation(self, fpgapart: str | None = None) -> int:
        """A rough count (not calibrated against synthesis)."""
        spec = self.validate()
        pe, simd = self.get_nodeattr("PE"), self.get_nodeattr("SIMD")
        # per pass: a SIMD-bit XNOR popcount, PE weight x value multiply-accumulates and the
        # per-lane output arithmetic; one reciprocal divider per pixel in the row pass
        mac = bits_unsigned(spec.lut_max) * (self.get_input_datatype(V).bitwidth() + 4)
        out = bits_signed(-spec.n2_max, spec.n2_max) * (2 if self.fused else 8)
        return 400 + 2 * (2 * simd) + pe * (2 * mac + out) + spec.shift ** 2

    def dsp_estimation(self, fpgapart: str | None = None) -> int:
        # the row pass's fixed-point scaling: one wide multiplication per lane
        return self.get_nodeattr("PE") * 2


class AxialAttention_hls(AxialAttention, HwgenHLSBackend):
    layer_template = "attention.hpp.j2"

    def get_nodeattr_types(self):
        attrs = AxialAttention.get_nodeattr_types(self)
        attrs.update(HwgenHLSBackend.get_nodeattr_types(self))
        return attrs

    def template_context(self, model: ModelWrapper | None = None) -> dict[str, Any]:
        spec = self.validate()
        vdt, odt = self.get_input_datatype(V), self.get_output_datatype()
        ctx: dict[str, Any] = {
            "channels": spec.channels, "proj": spec.proj_channels, "height": spec.height,
            "width": spec.width, "pe": self.get_nodeattr("PE"), "simd": self.get_nodeattr("SIMD"),
            "frac_bits": spec.frac_bits, "shift": spec.shift, "lut": list(spec.lut),
            "gains": list(spec.gains), "fused": self.fused,
            "value_bipolar": vdt in (DataType["BIPOLAR"], DataType["BINARY"]),
            "value_bits": vdt.bitwidth(),
            "out_bits": odt.bitwidth(), "residual_depth": self.residual_fifo_depth(),
            "ram_impl": RAM_IMPL[self.get_nodeattr("ram_style")],
            "bits": {
                "popcount": bits_unsigned(spec.proj_channels),
                "e": bits_unsigned(spec.lut_max),
                "den1": bits_unsigned(spec.den1_max),
                "recip": bits_unsigned(spec.recip_max),
                "n1": bits_signed(-spec.n1_max, spec.n1_max),
                "prod": bits_signed(-spec.n1_max * spec.recip_max, spec.n1_max * spec.recip_max),
                "r": self.row_bits(),
                "den2": bits_unsigned(spec.den2_max),
                "n2": bits_signed(-spec.n2_max, spec.n2_max),
                "gain": bits_signed(0, max(spec.gains)),
            },
        }
        ctx["negate"] = [int(s < 0) for s in spec.sign_vector]
        if self.fused:
            # s I >= T  <=>  I >= T (s = +1),  NOT I >= 1 - T (s = -1)
            thresholds = [t if s > 0 else 1 - t
                          for t, s in zip(self.get_nodeattr("Thresholds"), spec.sign_vector)]
            span = max(abs(t) for t in thresholds) + max(spec.gains)
            ctx["thresholds"] = thresholds
            ctx["bits"]["thr"] = bits_signed(-span, span)
            ctx["bits"]["cmp"] = bits_signed(-max(span * spec.den2_max, spec.n2_max),
                                             max(span * spec.den2_max, spec.n2_max))
        return ctx
