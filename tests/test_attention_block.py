"""The binary attention block in torch: its integer output equals the sim kernel (the layer's
definition) integer for integer on random parameter sets; training sees the same integers;
ablations run; bad parameters give one line; op counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brevitas_models.attention import (
    EXPORT_DOMAIN,
    EXPORT_OP,
    BinaryAxialAttention,
    attention_ops,
)
from brevitas_models.errors import ModelError
from sim.kernels.attention import AxialSpec, affinity_lut, axial_attention, row_pass

N_BLOCK_CASES = 60


def randomize_block(block: BinaryAxialAttention, seed: int) -> BinaryAxialAttention:
    """Batch norms with spread statistics (so Q, K, V use all their levels), random gains."""
    g = torch.Generator().manual_seed(seed)
    levels = 1 << (block.value_bits - 1)
    with torch.no_grad():
        for name, bn in block.named_modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                n = bn.num_features
                bn.running_mean.copy_(torch.rand(n, generator=g) * 4 - 2)
                bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                spread = levels if name.startswith("v.") else 1.0
                bn.weight.copy_((torch.rand(n, generator=g) * 2 - 1) * spread)
                bn.bias.copy_((torch.rand(n, generator=g) * 2 - 1) * spread)
        if hasattr(block, "gain"):
            block.gain.copy_(torch.rand(block.channels, generator=g) * block.gain_max * 1.1)
    return block.eval()


def random_block_case(seed: int) -> tuple[BinaryAxialAttention, torch.Tensor]:
    """A random block (channels, d, H, W incl. odd and 1, value bits, F, LUT) and input."""
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, 13))
    d = int(rng.integers(1, 10))
    h, w = (int(rng.choice([1, 2, 3, 4, 5, 7, 8])) for _ in range(2))
    block = BinaryAxialAttention(
        c, d, value_bits=int(rng.choice([1, 1, 2, 3, 4])), frac_bits=int(rng.integers(0, 11)),
        weight_bits=int(rng.integers(1, 9)), temperature=float(rng.uniform(0.05, 1.5)),
    )
    torch.manual_seed(seed)
    randomize_block(block, seed)
    scale = float(rng.uniform(0.2, 2.0))
    x = torch.from_numpy(rng.choice([-scale, scale], size=(2, c, h, w)).astype(np.float32))
    return block, x


def nhwc(t: torch.Tensor) -> np.ndarray:
    return np.rint(t.detach().permute(0, 2, 3, 1).numpy()).astype(np.int64)


def block_arrays(block: BinaryAxialAttention, x: torch.Tensor):
    """Q, K, V, x (NHWC integers, x as +-1) and the block's spec."""
    with torch.no_grad():
        q, k, v = block.projections(x)
    return nhwc(q), nhwc(k), nhwc(v), nhwc(torch.sign(x)), block.spec(*x.shape[-2:])


@pytest.mark.parametrize("seed", range(N_BLOCK_CASES))
def test_torch_integer_output_equals_sim(seed):
    block, x = random_block_case(seed)
    q, k, v, xs, spec = block_arrays(block, x)
    with torch.no_grad():
        got = block.integer_output(x).permute(0, 2, 3, 1).numpy()
    want = axial_attention(spec, q, k, v, xs)
    assert got.dtype == np.int64
    assert np.array_equal(got, want)
    lo, hi = spec.row_range
    r = row_pass(spec, q, k, v)
    assert lo <= r.min() and r.max() <= hi
    olo, ohi = spec.output_range
    assert olo <= want.min() and want.max() <= ohi


def test_random_cases_cover_the_parameter_space():
    seen = {"h1": False, "w1": False, "odd": False, "bits": set(), "d1": False}
    for seed in range(N_BLOCK_CASES):
        block, x = random_block_case(seed)
        h, w = x.shape[-2:]
        seen["h1"] |= h == 1
        seen["w1"] |= w == 1
        seen["odd"] |= bool(h % 2 and w % 2 and h > 1)
        seen["d1"] |= block.proj_channels == 1
        seen["bits"].add(block.value_bits)
    assert seen["h1"] and seen["w1"] and seen["odd"] and seen["d1"]
    assert seen["bits"] == {1, 2, 3, 4}


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_training_forward_is_the_exact_integers_and_gradients_flow(seed):
    block, x = random_block_case(seed)
    with torch.no_grad():
        exact = block.integer_output(x).to(torch.float32)
    block.train()
    for bn in block.modules():  # keep the batch statistics of eval: same projections
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.eval()
    core = block._core(x)
    assert torch.equal(core.detach(), exact)
    (core * torch.randn_like(core)).sum().backward()
    assert block.gain.grad is not None and torch.isfinite(block.gain.grad).all()
    grads = [block.q[0].weight.grad, block.k[0].weight.grad, block.v[0].weight.grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert block.v[0].weight.grad.abs().sum() > 0


def test_training_reduces_a_loss():
    """The surrogate gradients are useful: a few steps fit a fixed target better."""
    torch.manual_seed(0)
    block = BinaryAxialAttention(8, 4, value_bits=2, frac_bits=6)
    x = torch.where(torch.rand(4, 8, 6, 6) > 0.5, 1.0, -1.0)
    target = torch.where(torch.rand(4, 8, 6, 6) > 0.5, 1.0, -1.0)
    opt = torch.optim.Adam(block.parameters(), lr=0.05)
    losses = []
    for _ in range(12):
        opt.zero_grad()
        z = block.out_bn(block._core(x) * 2.0 ** -block.frac_bits)
        loss = torch.nn.functional.soft_margin_loss(z, target)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0]


@pytest.mark.parametrize("mode", ["axial", "full", "float", "none"])
def test_modes_run_forward_and_backward(mode):
    torch.manual_seed(1)
    block = BinaryAxialAttention(6, 4, mode=mode)
    x = torch.where(torch.rand(2, 6, 5, 3) > 0.5, 0.5, -0.5).requires_grad_()
    y = block(x)
    assert y.shape == x.shape
    if mode != "none":
        assert set(torch.unique(y.detach()).tolist()) <= {-1.0, 1.0}
        y.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


def test_full_mode_integers_by_hand():
    """The non-axial ablation on a 1x2 map: Y = floor(2^F sum E v / sum E) over all pixels."""
    block = randomize_block(BinaryAxialAttention(1, 2, frac_bits=2, weight_bits=3, mode="full"), 5)
    x = torch.tensor([[[[0.5, -0.5]]]])
    with torch.no_grad():
        q, k, v = (t.long() for t in block.projections(x))
        got = block.integer_output(x).reshape(-1).tolist()
    want = []
    for i in range(2):
        wts = [block.lut[(int((q[0, :, 0, i] * k[0, :, 0, j]).sum()) + 2) // 2] for j in range(2)]
        num = 4 * sum(wt * int(v[0, 0, 0, j]) for j, wt in enumerate(wts))
        want.append(num // sum(wts) + block.integer_gains()[0] * (1, -1)[i])
    assert got == want


def test_axial_integers_by_hand():
    """A 2x2 map, one channel, d=1: every weight, average and floor written out."""
    spec = AxialSpec(channels=1, proj_channels=1, height=2, width=2, value_min=-1, value_max=1,
                     frac_bits=2, lut=(1, 3), gains=(5,))
    q = np.array([1, -1, 1, 1]).reshape(1, 2, 2, 1)
    k = np.array([1, 1, -1, 1]).reshape(1, 2, 2, 1)
    v = np.array([1, -1, -1, 1]).reshape(1, 2, 2, 1)
    x = np.array([1, 1, -1, -1]).reshape(1, 2, 2, 1)
    # S = F + bits(W * Emax * 1) = 2 + bits(6) = 5; R = floor(n1 * floor(32 / den1) / 8)
    assert spec.shift == 5
    # row 0: q=(1,-1), k=(1,1): E[q_i k_j] row i=0: (3,3) i=1: (1,1)
    # n1: i=0: 3*1+3*(-1)=0; i=1: 1-1=0 -> R=0,0
    # row 1: q=(1,1), k=(-1,1), v=(-1,1): i=0: (1,3): n1=-1+3=2, den 4, recip 8: R=floor(16/8)=2
    #                                      i=1: same -> 2
    r = row_pass(spec, q, k, v).reshape(-1).tolist()
    assert r == [0, 0, 2, 2]
    # column 0: q=(1,1), k=(1,-1): i=0: E=(3,1): n2=0*3+2*1=2, den=4 -> 0; i=1 same -> 0
    # column 1: q=(-1,1), k=(1,1): i=0: E=(1,1): n2=0+2=2, den=2 -> 1; i=1: E=(3,3) n2=6/6 -> 1
    # I = 5 x + Y
    got = axial_attention(spec, q, k, v, x).reshape(-1).tolist()
    assert got == [5 + 0, 5 + 1, -5 + 0, -5 + 1]


def test_lut_is_positive_and_follows_the_curve():
    lut = affinity_lut(8, 8, 0.25)
    assert len(lut) == 9 and min(lut) >= 1 and lut[-1] == 255
    assert list(lut) == sorted(lut)
    assert lut == tuple(max(1, round(255 * np.exp(0.25 * (2 * p - 16)))) for p in range(9))
    assert affinity_lut(4, 1) == (1,) * 5  # one bit: a plain average


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "softmax"}, "mode must be one of"),
    ({"proj_channels": 0}, "proj_channels must be an integer >= 1"),
    ({"value_bits": 0}, "value_bits must be an integer in 1..16"),
    ({"frac_bits": 17}, "frac_bits must be an integer in 0..16"),
    ({"weight_bits": 17}, "LUT weight bits must be in 1..16, not 17"),
])
def test_bad_parameters_give_one_line(kwargs, message):
    args = {"channels": 4, "proj_channels": 4, **kwargs}
    with pytest.raises(ModelError, match=message) as info:
        BinaryAxialAttention(**args)
    assert "\n" not in str(info.value)


def test_spec_refuses_overflowing_maps():
    block = BinaryAxialAttention(4, 4, value_bits=16, frac_bits=16, weight_bits=16)
    with pytest.raises(ModelError, match="overflows 62-bit intermediates"):
        block.spec(4096, 4096)


def test_export_is_one_node_with_the_integer_arithmetic(tmp_path):
    import onnx
    from brevitas.export import export_qonnx

    block, x = random_block_case(11)
    path = tmp_path / "block.onnx"
    export_qonnx(block, x[:1], str(path), dynamo=False)
    model = onnx.load(str(path))
    nodes = [n for n in model.graph.node if n.op_type == EXPORT_OP]
    assert len(nodes) == 1 and nodes[0].domain == EXPORT_DOMAIN
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert list(attrs["lut"]) == list(block.lut)
    assert list(attrs["gains"]) == list(block.integer_gains())
    assert attrs["frac_bits"] == block.frac_bits
    assert not [n for n in model.graph.node if n.op_type in ("MatMul", "Einsum", "Softmax")]


def test_only_the_axial_mode_exports(tmp_path):
    from brevitas.export import export_qonnx

    block = BinaryAxialAttention(4, 2, mode="full").eval()
    with pytest.raises(ModelError, match="mode 'full' is a torch-only ablation"):
        export_qonnx(block, torch.ones(1, 4, 3, 3), str(tmp_path / "full.onnx"), dynamo=False)


def test_export_domain_is_the_lowering_module():
    from hw_gen.lowering import attention as lowering

    assert lowering.DOMAIN == EXPORT_DOMAIN and lowering.OP_TYPE == EXPORT_OP


def test_op_counts_at_64x128():
    """The axial saving at the paper's 64x128 map is N / (H + W) = 8192 / 192; with binary
    affinities and 8-bit x 1-bit aggregation the whole is about 350x fewer ops."""
    axial = attention_ops(64, 128, 256, 32, "axial")
    full = attention_ops(64, 128, 256, 32, "full")
    fp = attention_ops(64, 128, 256, 32, "float")
    assert axial["pairs"] == 8192 * 192 and full["pairs"] == fp["pairs"] == 8192 * 8192
    assert axial["aggregation"] == 8192 * 192 * 256
    assert full["aggregation"] / axial["aggregation"] == pytest.approx(42.67, abs=0.01)
    assert axial["bops"] == 8192 * 192 * (32 + 256 * 8)
    assert axial["ops"] == axial["bops"] // 64 + 8192 * 513 == 55_320_576
    assert fp["ops"] == 8192 * 8192 * 289 + 8192 * 256 == 19_396_558_848
    assert fp["ops"] / axial["ops"] == pytest.approx(350.6, abs=0.1)
    assert fp["ops"] / attention_ops(64, 128, 256, 32, value_bits=4)["ops"] == pytest.approx(
        94.0, abs=0.1)
