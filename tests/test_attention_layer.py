"""AxialAttention: the layer's C++ equals its sim kernel (and so torch) integer for integer on
the block's random parameter sets; the residual FIFO depth is the one that does not deadlock;
buffer sizes against a hand computation and against ZCU104; bad parameters give one line."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from hw_gen.boards import get_board
from hw_gen.bundle import sim_node
from hw_gen.errors import HwGenError
from hw_gen.layers.attention import AxialAttention_hls, bram_18k_blocks, uram_blocks
from hw_gen.layers.csim import LayerCase, csim_layers
from sim.graph import run_node
from sim.kernels.attention import affinity_lut
from test_attention_block import N_BLOCK_CASES, block_arrays, random_block_case

DEFAULT_SAMPLE = range(0, N_BLOCK_CASES, 6)  # 10 of the 60 sets in the default suite


def make_layer(spec, pe=1, simd=1, vdt="BIPOLAR", name="att", thresholds=(), signs=(),
               binary=(), out_dtype=None):
    attrs = dict(
        Channels=spec.channels, ProjChannels=spec.proj_channels, H=spec.height, W=spec.width,
        PE=pe, SIMD=simd, FracBits=spec.frac_bits, Lut=list(spec.lut),
        ResidualGain=list(spec.gains), valueDataType=vdt, outputDataType=out_dtype or "INT64",
    )
    optional = {"OutputSign": signs, "Thresholds": thresholds, "binaryInputs": binary}
    attrs.update({k: list(v) for k, v in optional.items() if len(v)})
    node = helper.make_node("AxialAttention_hls", ["q", "k", "v", "x"], ["y"],
                            domain="finn.custom_op.fpgadataflow.hls", backend="fpgadataflow",
                            name=name, **attrs)
    inst = getCustomOp(node)
    if out_dtype is None:
        inst.set_nodeattr("outputDataType", inst.derive_output_datatype().name)
    return inst


def _divisor(rng, n: int) -> int:
    return int(rng.choice([d for d in range(1, n + 1) if n % d == 0]))


def layer_case(seed: int) -> LayerCase:
    """The block's random set ``seed`` as a layer: random PE, SIMD, output signs, XNOR-encoded
    inputs and, for about half, absorbed re-binarization thresholds."""
    block, x = random_block_case(seed)
    q, k, v, xs, spec = block_arrays(block, x)
    rng = np.random.default_rng(1000 + seed)
    signs = tuple(int(s) for s in rng.choice([-1, 1], spec.channels))
    spec_signed = dataclasses.replace(spec, signs=signs)
    vdt = "BIPOLAR" if block.value_bits == 1 else f"INT{block.value_bits}"
    sign_inputs = [0, 1, 3] + ([2] if vdt == "BIPOLAR" else [])
    binary = sorted(int(i) for i in sign_inputs if rng.random() < 0.4)
    fused = bool(rng.random() < 0.5)
    thresholds, out_dtype = (), None
    if fused:
        lo, hi = spec_signed.output_range
        thresholds = tuple(int(t) for t in rng.integers(lo // 2, hi // 2 + 2, spec.channels))
        out_dtype = str(rng.choice(["BINARY", "BIPOLAR"]))
    layer = make_layer(spec_signed, _divisor(rng, spec.channels), _divisor(rng, spec.proj_channels),
                       vdt, f"att_{seed}", thresholds, signs, binary, out_dtype)
    inputs = [(a + 1) // 2 if i in binary else a for i, a in enumerate((q, k, v, xs))]
    expected = run_node(sim_node(layer.onnx_node), inputs, batch=2)["y"]
    if not fused:  # the layer's execution (sim) against the torch block's own integers
        with torch.no_grad():
            torch_out = block.integer_output(x).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(expected, torch_out * np.asarray(signs))
    return LayerCase(layer, inputs, [expected])


def check_cpp(seeds, work_dir):
    cases = [layer_case(s) for s in seeds]
    results = csim_layers(cases, work_dir)
    for case in cases:
        result = results[case.top]
        assert result.passed, f"{case.top}: {result.summary()}"
        assert result.n_compared == case.expected[0].size
    return cases


def test_cpp_equals_sim_on_a_sample(tmp_path):
    cases = check_cpp(DEFAULT_SAMPLE, tmp_path)
    kinds = {(c.layer.fused, c.layer.get_nodeattr("PE") > 1, c.layer.get_nodeattr("SIMD") > 1)
             for c in cases}
    assert {k[0] for k in kinds} == {True, False}
    assert any(k[1] for k in kinds) and any(k[2] for k in kinds)


@pytest.mark.slow
def test_cpp_equals_sim_on_all_sets(tmp_path):
    check_cpp(range(N_BLOCK_CASES), tmp_path)


def test_fused_output_is_the_threshold_of_the_integer_output():
    case = layer_case(next(s for s in range(N_BLOCK_CASES) if layer_case(s).layer.fused))
    layer = case.layer
    plain = make_layer(layer.spec(), vdt=layer.get_nodeattr("valueDataType"),
                       signs=layer.get_nodeattr("OutputSign"),
                       binary=layer.get_nodeattr("binaryInputs"))
    integers = run_node(sim_node(plain.onnx_node), case.inputs, batch=2)["y"]
    fired = integers >= np.asarray(layer.get_nodeattr("Thresholds"))
    want = 2 * fired - 1 if layer.get_nodeattr("outputDataType") == "BIPOLAR" else fired
    assert np.array_equal(case.expected[0], want.astype(np.int64))


class _ShallowResidual(AxialAttention_hls):
    """The layer with its residual FIFO one word short."""

    def residual_fifo_depth(self) -> int:
        return super().residual_fifo_depth() - 1


def test_undersized_residual_fifo_deadlocks_and_the_computed_depth_passes(tmp_path):
    good = layer_case(5)
    node = helper.make_node("AxialAttention_hls", list(good.layer.onnx_node.input), ["y"],
                            domain="finn.custom_op.fpgadataflow.hls", backend="fpgadataflow",
                            name="att_shallow")
    node.attribute.extend(a for a in good.layer.onnx_node.attribute)
    shallow = _ShallowResidual(node)
    assert shallow.residual_fifo_depth() == good.layer.residual_fifo_depth() - 1 > 0
    results = csim_layers([good, LayerCase(shallow, good.inputs, good.expected)], tmp_path)
    assert results[good.top].passed, results[good.top].summary()
    bad = results["att_shallow"]
    assert not bad.passed and bad.deadlock is not None, bad.summary()
    assert "residual" in bad.deadlock.streams
    full = next(b for b in bad.deadlock.blocked if b.stream == "residual")
    assert full.op == "write" and full.depth == shallow.residual_fifo_depth()


def _layer_64x128(channels: int, pe: int = 1, simd: int = 1, frac_bits: int = 8):
    """The paper-scale layer: bipolar V, d = C/8, 8-bit LUT."""
    from sim.kernels.attention import AxialSpec

    proj = channels // 8
    spec = AxialSpec(channels, proj, 64, 128, -1, 1, frac_bits, affinity_lut(proj, 8),
                     (1 << frac_bits,) * channels)
    return make_layer(spec, pe=pe, simd=simd, name=f"att_{channels}")


def test_buffer_sizes_by_hand():
    """The 64x128 map, C=256, d=32, F=8, bipolar V, PE=1: R in [-256, 256] is INT10."""
    layer = _layer_64x128(256)
    pixels = 64 * 128
    assert layer.row_bits() == 10
    r_bits, qk_bits = pixels * 256 * 10, 2 * pixels * 32
    assert layer.frame_buffer_bits() == r_bits + qk_bits == 21_495_808
    assert layer.residual_fifo_depth() == pixels * 256 == 2_097_152
    report = layer.buffer_report(get_board("ZCU104"))
    fb, fifo = report["frame_buffer"], report["residual_fifo"]
    assert fb["bits"] == 21_495_808 and fifo["bits"] == 2_097_152
    # R: 2,097,152 x 10 bits; in 18 Kb blocks the 2048 x 9 shape needs 2 wide, 1024 deep ...
    r_bram = min(math.ceil(10 / w) * math.ceil(pixels * 256 / d) for d, w in
                 ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)))
    assert r_bram == 1280  # 16384 x 1 blocks, 10 of them per 16384 words
    # Q and K: 8192 x 32 bits each, 262,144 bits = 14.2 blocks; 512 x 36 blocks: 16 each
    assert fb["BRAM_18K"] == r_bram + 2 * 16
    # URAM: 4096 x 72: R needs ceil(10/72) * 2,097,152 / 4096 = 512; Q and K 2 x 2 x 1
    assert fb["URAM"] == 512 + 2 * 2
    assert fifo["BRAM_18K"] == 128 and fifo["URAM"] == 512
    assert report["board"]["BRAM_18K"] == 624 and report["board"]["URAM"] == 96
    assert fb["BRAM_18K_fraction"] > 2  # does not fit ZCU104's block RAM


def test_memory_blocks_pick_the_best_shape():
    assert bram_18k_blocks(512, 36) == 1 and bram_18k_blocks(1024, 36) == 2
    assert bram_18k_blocks(16384, 1) == 1 and bram_18k_blocks(2048, 9) == 1
    assert bram_18k_blocks(32, 32) == 0  # 1024 bits go to LUTs
    assert uram_blocks(4096, 72) == 1 and uram_blocks(4097, 72) == 2 and uram_blocks(100, 10) == 0


def test_cycles_in_finn_conventions():
    layer = _layer_64x128(256, pe=16, simd=1)
    # per pixel: d/SIMD + C/PE = 32 + 16 cycles per partner, H + W + 1 partners
    assert layer.get_exp_cycles() == 64 * 128 * (32 + 16) * (64 + 128 + 1)
    assert layer.folding_options()["PE"][-1] == 256


@pytest.mark.parametrize("change, message", [
    ({"PE": 3}, "att: PE=3 does not divide Channels=4"),
    ({"SIMD": 3}, "att: SIMD=3 does not divide ProjChannels=2"),
    ({"Lut": [1, 2]}, "att: the LUT has 2 entries, a popcount over 2 channels needs 3"),
    ({"Lut": [0, 1, 2]}, "att: LUT entries must be in 1..65535"),
    ({"ResidualGain": [1, 2]}, "att: 2 residual gains for 4 channels"),
    ({"FracBits": 20}, "att: fractional bits must be in 0..16, not 20"),
    ({"H": 0}, "att: height must be >= 1, not 0"),
    ({"valueDataType": "UINT4"}, r"att: value range \[0, 15\] must hold negative"),
    ({"Thresholds": [1, 2]}, "att: 2 thresholds for 4 channels"),
    ({"OutputSign": [1, 2, 1, 1]}, "att: output signs must be 4 values of -1 or \\+1"),
    ({"binaryInputs": [2], "valueDataType": "INT2"}, r"att: binaryInputs \[2\]: only"),
])
def test_bad_parameters_give_one_line(change, message):
    from sim.kernels.attention import AxialSpec

    spec = AxialSpec(4, 2, 3, 3, -1, 1, 4, affinity_lut(2, 4), (1, 2, 3, 4))
    layer = make_layer(spec)
    for key, value in change.items():
        layer.set_nodeattr(key, value)
    with pytest.raises(HwGenError, match=message) as info:
        layer.get_folded_output_shape()
    assert "\n" not in str(info.value)


def test_value_range_is_the_declared_type():
    layer = make_layer(layer_case(2).layer.spec(), vdt="INT3")
    lo, hi = layer.value_range()
    odt = layer.get_output_datatype()
    assert odt.min() <= lo and hi <= odt.max() and not layer.datatype_problems()
    layer.set_nodeattr("outputDataType", DataType["INT4"].name)
    assert layer.datatype_problems() and "does not fit INT4" in layer.datatype_problems()[0]


def test_docs_state_the_computed_64x128_figures():
    """docs/attention.md quotes these figures; recomputed here so the page cannot go stale."""
    from pathlib import Path

    from brevitas_models.attention import attention_ops

    doc = Path(__file__).resolve().parent.parent.joinpath("docs", "attention.md").read_text()
    board = get_board("ZCU104")
    figures = []
    for channels, pe, frac_bits in ((256, 64, 8), (512, 64, 8), (512, 128, 4)):
        layer = _layer_64x128(channels, pe=pe, simd=32, frac_bits=frac_bits)
        report = layer.buffer_report(board)
        figures += [report["frame_buffer"]["bits"], report["frame_buffer"]["BRAM_18K"],
                    report["frame_buffer"]["URAM"]]
        if (channels, pe) != (512, 64):
            figures += [report["residual_fifo"]["bits"], report["residual_fifo"]["BRAM_18K"],
                        report["residual_fifo"]["URAM"]]
    figures.append(_layer_64x128(256, pe=64, simd=32).get_exp_cycles())
    for mode, bits in (("float", 1), ("full", 1), ("axial", 1), ("axial", 4)):
        figures += list(attention_ops(64, 128, 256, 32, mode, value_bits=bits).values())
    figures += [board.resources["BRAM_18K"] * 18432, board.resources["URAM"] * 294912]
    missing = [f for f in figures if f"{f:,}" not in doc and f" {f} " not in doc]
    assert not missing, f"docs/attention.md does not state {missing}"


@pytest.mark.parametrize("style, impl", [("block", "bram"), ("ultra", "uram")])
def test_ram_style_binds_every_buffer_in_the_hls(style, impl):
    layer = _layer_64x128(16)
    layer.set_nodeattr("ram_style", style)
    source = "\n".join(layer.render_sources().values())
    bound = {line.split("variable=")[1].split()[0]: line.split("impl=")[1].strip()
             for line in source.splitlines() if "BIND_STORAGE" in line}
    assert bound == {name: impl for name in
                     ("q_row", "k_row", "v_row", "q_frame", "k_frame", "r_frame", "residual")}
