"""The op counter against counts worked out by hand in each test (formulas written here from
the conventions, not taken from the code under test), and its errors."""

from __future__ import annotations

import pytest
from torch import nn

from brevitas_models.attention import BinaryAxialAttention
from brevitas_models.errors import ModelError
from brevitas_models.layers import BinaryAct, Classifier, InputBlock, binary_conv2d
from brevitas_models.mbu import FloatMultiBranchUpsample, MultiBranchUpsample
from brevitas_models.nets import EncoderDecoder, build
from brevitas_models.opcount import (
    attention_comparison,
    count_network,
    count_ops,
    main,
    weight_memory,
)


def _binary_input(module: nn.Module, act: BinaryAct | None = None) -> nn.Sequential:
    """``module`` behind a sign activation, so that it sees a binary tensor."""
    return nn.Sequential(act or BinaryAct(), module)


def test_binary_conv_counts_bops():
    report = count_ops(_binary_input(binary_conv2d(4, 8, 3, padding=1)), (10, 12), in_channels=4)
    macs = 8 * 10 * 12 * (4 * 3 * 3)  # C_out * H * W * (C_in * 3 * 3)
    [row] = report.rows
    assert (row.count.bops, row.count.flops) == (macs, 0)
    assert report.total.ops == macs / 64 == 540
    assert (report.twin_total.bops, report.twin_total.flops) == (0, macs)
    assert report.speedup == 64


def test_float_conv_with_bias_counts_flops():
    report = count_ops(nn.Conv2d(3, 5, 3, padding=1), (6, 7))
    assert (report.total.bops, report.total.flops) == (0, 5 * 6 * 7 * 27 + 5 * 6 * 7)
    assert report.speedup == 1


def test_dilated_strided_conv():
    conv = binary_conv2d(4, 6, 3, stride=2, padding=2, dilation=2)
    report = count_ops(_binary_input(conv), (9, 11), in_channels=4)
    # out = floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1: 9 -> 5, 11 -> 6
    assert report.rows[0].output == (6, 5, 6)
    assert report.total.bops == 6 * 5 * 6 * 4 * 9 == 6480
    assert report.rows[0].kind.startswith("conv 3x3 s2 d2 4->6 W1A1")


def test_binary_weights_over_8bit_pixels_and_8bit_classifier_are_flops():
    stem = count_ops(InputBlock(3, 4), (8, 8))
    conv, bn = stem.rows
    assert (conv.count.bops, conv.count.flops) == (0, 4 * 8 * 8 * 3 * 9)
    assert (bn.count.bops, bn.count.flops) == (0, 4 * 8 * 8)
    head = count_ops(_binary_input(Classifier(4, 3), BinaryAct(return_quant_tensor=True)),
                     (5, 5), in_channels=4)
    assert "W8A1" in head.rows[0].kind
    assert (head.total.bops, head.total.flops) == (0, 3 * 25 * 4 + 3 * 25)  # MACs + bias


@pytest.mark.parametrize("mode, flops", [
    ("nearest", 0),
    # bilinear x2, separable: per output element 2 MACs in the column pass, and the row pass
    # (half as many elements, 2 MACs each) adds 1: 3 per output element, C x 10 x 12 of them
    ("bilinear", 3 * (3 * 10 * 12)),
])
def test_upsampling(mode, flops):
    report = count_ops(nn.Upsample(scale_factor=2, mode=mode), (5, 6))
    assert (report.total.bops, report.total.flops) == (0, flops)
    assert report.rows[0].output == (3, 10, 12)


def test_mbu_block():
    act = BinaryAct()
    mbu = MultiBranchUpsample(4, 5, act, dilations=(1, 2))
    report = count_ops(_binary_input(mbu, act), (6, 6), in_channels=4)
    bops = 2 * (5 * 6 * 6 * 4 * 9)  # two binary 3x3 branches
    gates = 2 * 5 * 6 * 6  # one MAC per branch and element of the sum
    bilinear = 3 * 5 * 12 * 12
    bn = 5 * 12 * 12
    [row] = report.rows
    assert (row.count.bops, row.count.flops) == (bops, gates + bilinear + bn)
    assert (row.twin.bops, row.twin.flops) == (0, bops + gates + bilinear + bn)
    # the float block counted directly is the twin
    float_block = count_ops(FloatMultiBranchUpsample(4, 5, dilations=(1, 2)), (6, 6), in_channels=4)
    assert float_block.total == row.twin

    plain = MultiBranchUpsample(4, 5, act, dilations=(1, 2, 3), gated=False, mode="nearest")
    row = count_ops(_binary_input(plain, act), (6, 6), in_channels=4).rows[0]
    assert (row.count.bops, row.count.flops) == (3 * 5 * 36 * 36, 2 * 5 * 36 + bn)


def test_attention_block_at_a_map_size():
    c, d, h, w = 8, 4, 5, 6
    n = h * w
    report = count_ops(_binary_input(BinaryAxialAttention(c, d)), (h, w), in_channels=c)
    # projections Q, K (d) and V (C): 1x1 binary convs; their batch norms
    proj_macs, proj_bn = n * c * (2 * d + c), n * (2 * d + c)
    # row + column partners per pixel; per pair d XNOR bits + C products of 8-bit weight x 1-bit V
    pairs = n * (h + w)
    core_bops = pairs * (d + c * 8 * 1)
    core_flops = n * (1 + c + c)  # a reciprocal, C scalings, C column divisions
    tail = n * c + n * c  # residual add, output batch norm
    [row] = report.rows
    assert (row.count.bops, row.count.flops) == (proj_macs + core_bops,
                                                 proj_bn + core_flops + tail)
    assert (proj_macs, core_bops) == (3840, 22440)
    # twin: full-precision non-local attention, float projections with bias, all N^2 pairs:
    # d + C MACs and one exponential per pair, C normalizations per pixel
    fp_core = n * n * (d + c + 1) + n * c
    assert (row.twin.bops, row.twin.flops) == (0, proj_macs + proj_bn + fp_core + tail)
    float_block = count_ops(BinaryAxialAttention(c, d, mode="float"), (h, w), in_channels=c)
    assert float_block.total == row.twin
    assert attention_comparison(h, w, c, d)["axial"] == row.count


def test_demo_twin_is_demo_fp_plus_the_replaced_attention():
    size = (32, 32)
    binary = count_network("demo", size, width=4)
    fp = count_network("demo_fp", size, width=4)
    assert fp.total.bops == 0 and fp.twin_total == fp.total
    [att] = [r for r in binary.rows if r.module == "att"]
    assert binary.twin_total.flops == fp.total.flops + att.twin.flops
    no_att = count_ops(EncoderDecoder(4, 6, binary=True), size)
    assert no_att.twin_total == fp.total
    assert [r.module for r in binary.rows if r.module.startswith("up")] == ["up#1", "up#2"]
    plain = count_ops(EncoderDecoder(4, 6, binary=True, mbu=False), size)
    assert [r.module for r in plain.rows if r.module.startswith("up")] == ["up#1", "up#2", "up#3"]


def test_mbu_branches_switch():
    net = EncoderDecoder(4, 6, binary=True, mbu_branches=1)
    assert net.mbu.dilations == (1,) and len(net.mbu.convs) == 1
    assert EncoderDecoder(4, 6, binary=False, mbu_branches=2).mbu.dilations == (1, 2)
    with pytest.raises(ModelError, match="mbu_branches must be a positive integer"):
        EncoderDecoder(4, 6, binary=True, mbu_branches=0)


def test_weight_memory():
    one = weight_memory(_binary_input(binary_conv2d(4, 8, 3)))
    # 288 one-bit weights, 8 per-channel weight scales and 1 activation scale at 32 bits
    assert one == {"params": 288 + 8 + 1, "bits": 288 + 9 * 32}
    head = weight_memory(Classifier(4, 3))
    assert head == {"params": 12 + 3, "bits": 12 * 8 + 3 * 16}
    fp = weight_memory(nn.Conv2d(2, 3, 1))
    assert fp == {"params": 9, "bits": 9 * 32}


def test_bad_input_one_line_errors(capsys):
    with pytest.raises(ModelError, match="unknown network 'nope'"):
        count_network("nope", (8, 8))
    for size in ((0, 8), (8, -1), (8,)):
        with pytest.raises(ModelError, match="two positive integers"):
            count_network("demo", size)
    with pytest.raises(ModelError, match=r"'demo' does not run at 20x20") as info:
        count_network("demo", (20, 20), width=4)
    assert "\n" not in str(info.value)
    assert main(["--net", "nope"]) == 2
    assert main(["--size", "0", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)


def test_cli_markdown(capsys):
    assert main(["--net", "demo", "--size", "32", "32", "--width", "4", "--markdown",
                 "--attention", "4", "6", "--channels", "8", "--proj-channels", "4"]) == 0
    out = capsys.readouterr().out
    assert "| module | op | output | BOPs |" in out and "| mbu | MBU K=4 bilinear |" in out
    assert "| float |" in out and "speedup against the full-precision twin" in out
    report = count_network("demo", (32, 32), width=4)
    assert f"{report.total.bops:,}" in out


def test_counts_do_not_depend_on_the_weights():
    a, b = build("demo", 4), build("demo", 4)
    nn.init.normal_(b.enc1.conv.weight)
    assert count_ops(a, (16, 16)).to_dict() == count_ops(b, (16, 16)).to_dict()
