"""FoldedUpsample: sim kernel == torch, C++ == sim, integer for integer, on random configs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from hw_gen.errors import HwGenError
from hw_gen.layers.csim import LayerCase, csim_layers
from hw_gen.layers.upsample import upsample_output_datatype
from sim.kernels.upsample import bilinear_gain, upsample

DTYPES = ["BIPOLAR", "INT2", "INT4", "UINT3", "BINARY", "INT8"]


def make_layer(c, pe, h, w, factor, mode, idt, name="up", specialized=True):
    odt = upsample_output_datatype(DataType[idt], factor, mode)
    node = helper.make_node(
        "FoldedUpsample_hls" if specialized else "FoldedUpsample", ["x"], ["y"],
        domain="finn.custom_op.fpgadataflow" + (".hls" if specialized else ""),
        backend="fpgadataflow", name=name, NumChannels=c, PE=pe, HI=h, WI=w, Factor=factor,
        Mode=mode, inputDataType=idt, outputDataType=odt.name,
    )
    return getCustomOp(node)


def random_values(rng, dt: DataType, shape):
    if dt == DataType["BIPOLAR"]:
        return rng.integers(0, 2, size=shape) * 2 - 1
    return rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape)


def torch_reference(x: np.ndarray, factor: int, mode: str) -> np.ndarray:
    t = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64)
    if mode == "bilinear":
        y = F.interpolate(t, scale_factor=factor, mode="bilinear", align_corners=False)
        y = y * bilinear_gain(factor)
    else:
        y = F.interpolate(t, scale_factor=factor, mode="nearest")
    return y.numpy().transpose(0, 2, 3, 1)


def random_config(seed):
    rng = np.random.default_rng(seed)
    c = int(rng.choice([1, 2, 3, 4, 6, 8, 12]))
    pe = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
    h, w = (int(v) for v in rng.integers(1, 10, size=2))
    mode = str(rng.choice(["bilinear", "nearest"]))
    factor = int(rng.choice([2, 2, 4, 8]))
    idt = str(rng.choice(DTYPES))
    return rng, c, pe, h, w, factor, mode, idt


@pytest.mark.parametrize("seed", range(40))
def test_sim_kernel_equals_torch(seed):
    rng, c, pe, h, w, factor, mode, idt = random_config(seed)
    x = random_values(rng, DataType[idt], (2, h, w, c))
    ref = torch_reference(x, factor, mode)
    got = upsample(x, factor, mode)
    assert np.array_equal(got, ref.astype(np.int64))


def csim_cases(seeds):
    cases = []
    for seed in seeds:
        rng, c, pe, h, w, factor, mode, idt = random_config(seed)
        layer = make_layer(c, pe, h, w, factor, mode, idt, name=f"up_{seed}")
        x = random_values(rng, DataType[idt], (2, h, w, c))
        expected = upsample(x, factor, mode)
        assert np.array_equal(expected, torch_reference(x, factor, mode).astype(np.int64))
        cases.append(LayerCase(layer, [x], [expected]))
    return cases


def check_cpp(seeds, work_dir):
    cases = csim_cases(seeds)
    results = csim_layers(cases, work_dir)
    modes = set()
    for case in cases:
        result = results[case.top]
        assert result.passed, f"{case.top}: {result.summary()}"
        assert result.n_compared == case.expected[0].size
        modes.add(case.layer.get_nodeattr("Mode"))
    assert modes == {"nearest", "bilinear"}


def test_cpp_equals_sim_and_torch(tmp_path):
    check_cpp(range(16), tmp_path)


@pytest.mark.slow
def test_cpp_equals_sim_and_torch_many(tmp_path):
    check_cpp(range(100, 300), tmp_path)


def test_bad_parameters_are_named():
    with pytest.raises(HwGenError, match="up: PE=3 does not divide NumChannels=4"):
        make_layer(4, 3, 2, 2, 2, "bilinear", "INT2").get_normal_output_shape()
    with pytest.raises(HwGenError, match="factor 2\\^k, not 3"):
        make_layer(4, 1, 2, 2, 3, "bilinear", "INT2").get_normal_output_shape()
