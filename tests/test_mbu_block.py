"""The multi-branch upsampling block alone, on random parameter sets (K, dilations with repeats,
channels, odd and small map sizes, PE/SIMD, mode, gated or not, fixed-point formats):
torch (brevitas_models.mbu) == sim kernel == C++ (the layer's generated HLS, g++), integer for
integer; bad parameters give one line each; folding raises PE/SIMD with the target rate.

The C++ check compiles all layers in one g++ build: by default a sample of 16 parameter sets,
all of them in ``test_cpp_equals_sim_all`` (``@pytest.mark.slow``, a few minutes).
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from brevitas_models.errors import ModelError
from brevitas_models.layers import BinaryAct
from brevitas_models.mbu import MultiBranchUpsample as TorchMBU
from hw_gen.errors import HwGenError
from hw_gen.folding import apply_folding
from hw_gen.layers.csim import LayerCase, csim_layers
from hw_gen.layers.mbu import gate_datatype
from sim.kernels.mbu import multi_branch_upsample

N_SETS = 56
CPP_SAMPLE = 16


@dataclass(frozen=True)
class Config:
    seed: int
    dilations: tuple[int, ...]
    cin: int
    cout: int
    h: int
    w: int
    simd: int
    pe: int
    mode: str
    gated: bool
    frac_bits: int
    gate_bits: int


def _divisor(rng, n: int) -> int:
    return int(rng.choice([d for d in range(1, n + 1) if n % d == 0]))


def random_config(seed: int) -> Config:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(2, 10, size=2))
    k = int(rng.integers(1, 5))
    dmax = min(4, min(h, w) - 1)  # small maps take only small dilations
    dilations = tuple(int(d) for d in rng.integers(1, dmax + 1, size=k))
    cin = int(rng.choice([1, 2, 3, 4, 5, 6, 8, 12, 16]))
    cout = int(rng.choice([1, 2, 3, 4, 6, 8]))
    gate_bits = int(rng.integers(1, 13))
    frac_bits = int(rng.integers(0, min(gate_bits + 3, 10)))
    return Config(seed, dilations, cin, cout, h, w, _divisor(rng, cin), _divisor(rng, cout),
                  str(rng.choice(["bilinear", "nearest"])), bool(rng.random() < 0.75),
                  frac_bits, gate_bits)


def torch_block(cfg: Config) -> tuple[TorchMBU, BinaryAct]:
    """The torch block of ``cfg`` with random weights, gates (some clamped at the top of the
    fixed-point range, some at 0) and input scale."""
    torch.manual_seed(cfg.seed)
    act = BinaryAct()
    top = (2**cfg.gate_bits - 1) / 2**cfg.frac_bits
    beta = min(top, max(2.0**-cfg.frac_bits, top / 2))
    block = TorchMBU(cfg.cin, cfg.cout, act, dilations=cfg.dilations, gated=cfg.gated,
                     mode=cfg.mode, frac_bits=cfg.frac_bits, gate_bits=cfg.gate_bits,
                     beta_init=beta)
    with torch.no_grad():
        for p in act.parameters():
            p.uniform_(-3.0, 2.0)  # log2 of the input scale
        for conv in block.convs:
            conv.weight.normal_()
        if cfg.gated:
            block.gate_logit.normal_(0.0, 3.0)
            block.log_beta.add_(torch.empty_like(block.log_beta).uniform_(-1.0, 1.5))
    return block.eval(), act


def block_input(cfg: Config, act: BinaryAct, frames: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(cfg.seed + 1)
    with torch.no_grad():
        return act(torch.randn(frames, cfg.cin, cfg.h, cfg.w, generator=g))


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def as_integers(values: np.ndarray) -> np.ndarray:
    rounded = np.round(values)
    assert np.array_equal(rounded, values), "expected integer values"
    return rounded.astype(np.int64)


def float64_reference(b: np.ndarray, params: dict) -> np.ndarray:
    """The block's integers by torch's own float64 ops (conv2d, interpolate): NHWC."""
    x = torch.tensor(b.transpose(0, 3, 1, 2), dtype=torch.float64)
    total = 0
    for k, d in enumerate(params["dilations"]):
        acc = F.conv2d(F.pad(x, (d, d, d, d), value=-1.0),
                       torch.tensor(params["weights"][k], dtype=torch.float64), dilation=d)
        total = total + torch.tensor(params["gains"][k], dtype=torch.float64)[None, :, None, None] * acc
    if params["mode"] == "bilinear":
        up = F.interpolate(total, scale_factor=2, mode="bilinear", align_corners=False) * 16
    else:
        up = F.interpolate(total, scale_factor=2, mode="nearest")
    return up.numpy().transpose(0, 2, 3, 1)


def make_layer(name: str, cin: int, cout: int, h: int, w: int, dilations, pe: int, simd: int,
               mode: str, weights: np.ndarray, gains: np.ndarray, frames: int = 1,
               gate_type: str | None = None):
    """A model holding one specialized MultiBranchUpsample node and its initializers."""
    gdt = gate_type or gate_datatype(int(gains.max())).name
    node = helper.make_node(
        "MultiBranchUpsample_hls", ["x", "weights", "gains"], ["y"],
        domain="finn.custom_op.fpgadataflow.hls", backend="fpgadataflow", name=name,
        IFMChannels=cin, OFMChannels=cout, IFMDim=[h, w], Dilations=list(dilations), PE=pe,
        SIMD=simd, Mode=mode, inputDataType="BIPOLAR", gateDataType=gdt, outputDataType="INT32",
        numInputVectors=frames,
    )
    graph = helper.make_graph(
        [node], name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [frames, h, w, cin])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [frames, 2 * h, 2 * w, cout])])
    model = ModelWrapper(helper.make_model(graph))
    model.set_initializer("weights", weights.astype(np.float32))
    model.set_initializer("gains", gains.astype(np.float32))
    inst = getCustomOp(model.graph.node[0])
    return model, inst


def layer_case(cfg: Config) -> LayerCase:
    block, act = torch_block(cfg)
    params = block.hardware_parameters()
    x = block_input(cfg, act)
    b = as_integers(nhwc(x / act.scale()))
    model, inst = make_layer(f"mbu_{cfg.seed}", cfg.cin, cfg.cout, cfg.h, cfg.w, cfg.dilations,
                             cfg.pe, cfg.simd, cfg.mode, params["weights"], params["gains"])
    inst.set_nodeattr("outputDataType", inst.derive_output_datatype().name)
    expected = multi_branch_upsample(b, params["weights"], params["gains"], cfg.dilations, cfg.mode)
    lo, hi = inst.value_range()
    assert lo <= expected.min() and expected.max() <= hi
    return LayerCase(inst, [b], [expected], model)


@pytest.mark.parametrize("seed", range(N_SETS))
def test_torch_equals_sim(seed):
    cfg = random_config(seed)
    block, act = torch_block(cfg)
    x = block_input(cfg, act)
    scale = act.scale()
    with torch.no_grad():
        u = block.integer_sum(x / scale)
        exported_form = block._graph_form(x) / block.output_scale()
    params = block.hardware_parameters()
    assert params["frac_bits"] == (cfg.frac_bits if cfg.gated else 0)
    gains = params["gains"]
    assert gains.min() >= 0 and gains.max() <= 2**block.gate_bits - 1
    b = as_integers(nhwc(x / scale))
    got = as_integers(nhwc(u))
    expected = multi_branch_upsample(b, params["weights"], gains, list(cfg.dilations), cfg.mode)
    assert np.array_equal(got, expected)
    assert np.array_equal(as_integers(float64_reference(b, params)), expected)
    # the float graph form that is exported is the same function, up to float32 rounding
    drift = np.abs(nhwc(exported_form).astype(np.float64) - expected).max()
    assert drift <= 1e-5 * max(1.0, float(np.abs(expected).max()))


def test_parameter_sets_cover_the_space():
    configs = [random_config(s) for s in range(N_SETS)]
    assert {len(c.dilations) for c in configs} == {1, 2, 3, 4}
    assert {d for c in configs for d in c.dilations} == {1, 2, 3, 4}
    assert any(len(set(c.dilations)) < len(c.dilations) for c in configs)
    assert any(max(c.dilations) == min(c.h, c.w) - 1 for c in configs)
    assert {c.mode for c in configs} == {"bilinear", "nearest"}
    assert {c.gated for c in configs} == {True, False}
    assert any(c.pe not in (1, c.cout) for c in configs)
    assert any(c.simd not in (1, c.cin) for c in configs)
    assert any(c.h % 2 and c.w % 2 for c in configs)


def test_forward_is_batch_norm_and_sign_of_the_integers():
    cfg = random_config(3)
    block, act = torch_block(cfg)
    x = block_input(cfg, act)
    with torch.no_grad():
        block.bn.running_mean.uniform_(-50, 50)
        y = block(x)
        u = block.integer_sum(x / act.scale())
        want = block.act(block.bn(u.float() * block.output_scale()))
    assert np.array_equal(y.numpy(), want.numpy())
    assert set(np.unique(np.round(y.numpy() / block.act.scale().item()))) <= {-1.0, 1.0}


def test_gates_train_through_the_rounding():
    cfg = random_config(5)
    block, act = torch_block(cfg)
    block.train()
    x = block_input(cfg, act)
    block(x).sum().backward()
    assert block.gate_logit.grad is not None and block.gate_logit.grad.abs().sum() > 0
    assert block.convs[0].weight.grad.abs().sum() > 0


def check_cpp(seeds, work_dir) -> int:
    cases = [layer_case(random_config(s)) for s in seeds]
    results = csim_layers(cases, work_dir)
    compared = 0
    for case in cases:
        result = results[case.top]
        assert result.passed, f"{case.top}: {result.summary()}"
        assert result.n_compared == case.expected[0].size
        compared += result.n_compared
    return compared


def test_cpp_equals_sim(tmp_path):
    assert check_cpp(range(CPP_SAMPLE), tmp_path) > 0


@pytest.mark.slow
def test_cpp_equals_sim_all(tmp_path):
    assert check_cpp(range(N_SETS), tmp_path) > 0


def _layer(**changes):
    args = dict(name="mbu", cin=4, cout=4, h=3, w=5, dilations=[1, 2], pe=1, simd=1,
                mode="bilinear")
    args.update(changes)
    k, cout, cin = len(args["dilations"]), args["cout"], args["cin"]
    args.setdefault("weights", np.ones((k, cout, cin, 3, 3)))
    args.setdefault("gains", np.full((k, cout), 7))
    return make_layer(**args)


@pytest.mark.parametrize("changes, message", [
    ({"dilations": [1, 3]}, "mbu: Dilations: dilation 3 of branch 1 does not fit a 3x5 map "
                            "(needs 1 <= d < 3)"),
    ({"pe": 3}, "mbu: PE=3 does not divide OFMChannels=4"),
    ({"simd": 3}, "mbu: SIMD=3 does not divide IFMChannels=4"),
    ({"gate_type": "INT8"}, "mbu: gateDataType must be an unsigned integer type, not INT8"),
])
def test_bad_layer_parameters(changes, message):
    _, inst = _layer(**changes)
    with pytest.raises(HwGenError) as info:
        inst.get_normal_output_shape()
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_gate_out_of_fixed_point_range():
    model, inst = _layer(gains=np.array([[7, 7, 300, 7], [1, 2, 3, 4]]), gate_type="UINT8")
    with pytest.raises(HwGenError) as info:
        inst.render_sources(model)
    assert str(info.value) == ("mbu: gate G=300 is out of the fixed-point range of gateDataType "
                               "UINT8 [0, 255]")
    model, inst = _layer(weights=np.zeros((2, 4, 4, 3, 3)))
    with pytest.raises(HwGenError, match="mbu: weights must be -1/\\+1"):
        inst.render_sources(model)


def test_bad_torch_parameters():
    act = BinaryAct()
    with pytest.raises(ModelError, match="gate scale beta_init=5 is out of the fixed-point range "
                                         "\\[0.015625, 3.98438\\] of UINT8 with 6 fractional bits"):
        TorchMBU(4, 4, act, beta_init=5.0)
    with pytest.raises(ModelError, match="mode must be one of"):
        TorchMBU(4, 4, act, mode="bicubic")
    with pytest.raises(ModelError, match="dilations \\(1, 0\\) must be positive integers"):
        TorchMBU(4, 4, act, dilations=(1, 0))
    block = TorchMBU(4, 4, act, dilations=(1, 4))
    with pytest.raises(ModelError, match="dilation 4 of branch 1 does not fit a 4x6 map"):
        block(act(torch.randn(1, 4, 4, 6)))


def test_folding_raises_parallelism_with_the_target():
    model, inst = _layer(cin=8, cout=12, h=6, w=8, dilations=[1, 2, 3])
    inst.set_nodeattr("outputDataType", inst.derive_output_datatype().name)
    clk_ns = 10.0
    chosen = []
    for fps in (100, 1000, 4000, 20000, 80000):
        model = apply_folding(model, fps, clk_ns)
        inst = getCustomOp(model.graph.node[0])
        folding = (inst.get_nodeattr("SIMD"), inst.get_nodeattr("PE"))
        chosen.append(folding)
        target = int(1e9 / clk_ns / fps)
        most = inst.get_nodeattr("SIMD") == 8 and inst.get_nodeattr("PE") == 12
        assert inst.get_exp_cycles() <= target or most, (fps, folding)
    assert chosen[0] == (1, 1)
    assert chosen == sorted(chosen, key=lambda f: f[0] * f[1])
    assert chosen[-1][1] > 1  # PE rises once SIMD is exhausted
    model = apply_folding(model, None, clk_ns)  # no target: least parallel again
    inst = getCustomOp(model.graph.node[0])
    assert (inst.get_nodeattr("SIMD"), inst.get_nodeattr("PE")) == (1, 1)


def test_cycles_and_resources_follow_the_formulas():
    model, inst = _layer(cin=8, cout=12, h=6, w=8, dilations=[1, 2, 3], pe=3, simd=4)
    inst.set_nodeattr("outputDataType", inst.derive_output_datatype().name)
    h, w, fold_in, fold_out = 6, 8, 2, 4
    assert inst.stage_cycles() == {"conv": h * w * (fold_in + fold_out * 9 * fold_in),
                                   "upsample": h * w * fold_out * 5}
    assert inst.get_exp_cycles() == h * w * (fold_in + fold_out * 9 * fold_in)
    assert inst.line_buffer_rows() == 6  # min(2 * 3 + 1, H)
    bits = inst.memory_bits()
    assert bits["line_buffer"] == 6 * 8 * 8 and bits["weights"] == 3 * 12 * 9 * 8
    assert inst.lut_estimation() > 0 and inst.bram_estimation() >= 0
    header = inst.render_sources(model)["mbu.hpp"]
    assert "ROWS = 6" in header and "static const int DIL[K] = { 1, 2, 3 }" in header


def test_float_twin_mirrors_the_block():
    from brevitas_models.mbu import FloatMultiBranchUpsample

    act = BinaryAct()
    for kwargs in ({}, {"dilations": (2,), "gated": False, "mode": "nearest"}):
        binary = TorchMBU(4, 6, act, **kwargs)
        twin = FloatMultiBranchUpsample(4, 6, **kwargs)
        x = torch.randn(2, 4, 5, 7)
        assert twin(x).shape == binary(act(x)).shape == (2, 6, 10, 14)
        assert [c.dilation for c in twin.convs] == [c.dilation for c in binary.convs]
        assert hasattr(twin, "gate_logit") == hasattr(binary, "gate_logit")


def test_ram_style_moves_the_run_time_buffers_not_the_weights():
    """The paper-scale decoder's first MBU (512 -> 256 channels at 16x32, SIMD 256, PE 1)."""
    model, inst = _layer(cin=512, cout=256, h=16, w=32, dilations=[1, 2, 3, 4], simd=256)
    inst.set_nodeattr("outputDataType", inst.derive_output_datatype().name)
    sum_bits = inst.sum_datatype().bitwidth()
    assert sum_bits <= 72
    block_bram = inst.bram_estimation()
    assert inst.uram_estimation() == 0
    inst.set_nodeattr("ram_style", "ultra")
    # line buffer: 9 rows x 32 pixels x 2 words of 256 bits, one copy per two branches:
    # 2 x (4 URAM wide x 1 deep); upsampling rows: 2 x 32 x 256 words of sum_bits: 4 deep
    assert inst.uram_estimation() == 2 * 4 + 4
    weights_only = inst.bram_estimation()
    # 4 branches x 1 PE of 256-bit words, 256 x 9 x 2 = 4608 deep: FINN's RAMB18 rule for
    # more than 512 words takes the 1024 x 18 shape
    assert weights_only == 4 * math.ceil(4608 / 1024) * math.ceil(256 / 18)
    assert block_bram > weights_only
    header = inst.render_sources(model)["mbu.hpp"]
    binds = [line.split("impl=")[1].strip() for line in header.splitlines()
             if "BIND_STORAGE" in line]
    assert binds == ["uram", "uram"]  # the upsampler's rows, the branches' line buffer
