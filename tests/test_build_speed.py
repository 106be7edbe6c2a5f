"""The build's shortcuts give what FINN's own code gives: Streamline without its no-op passes
(byte-identical models), hex packing of weight files (identical strings)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from brevitas.export import export_qonnx
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from hw_gen.codegen import fast_hex_packing
from hw_gen.lowering import lower
from hw_gen.lowering.skip_noops import apply_skipping_noops, recorded_sequence
from tests.lowering_nets import PaddedNet, SkipNet, pixels, randomize_bn


@pytest.mark.parametrize("net", [SkipNet("add"), SkipNet("concat"), PaddedNet("zero")],
                         ids=["add", "concat", "zero-pad"])
def test_streamline_skipping_noops_gives_finns_model(net, tmp_path, finn_build_dir):
    from finn.transformation.streamline import Streamline

    torch.manual_seed(0)
    path = tmp_path / "model.onnx"
    export_qonnx(randomize_bn(net, 1), pixels((1, 3, 8, 8)), str(path), dynamo=False)
    model = lower(path, tmp_path / "lowered", stop_after="binary_padding").model
    before = model.model.SerializeToString()
    finn = model.transform(Streamline())
    ours = apply_skipping_noops(model, Streamline())
    assert model.model.SerializeToString() == before  # the input model is left alone
    assert ours.model.SerializeToString() == finn.model.SerializeToString()
    assert len(recorded_sequence(Streamline())) > 20  # FINN's list was replayed


def test_skipping_falls_back_for_a_composite_that_inspects_the_model():
    class Inspecting:
        def apply(self, model):
            return model.transform(Counting()) if model.graph is not None else model, False

    class Counting:
        def apply(self, model):
            return model, False

    assert recorded_sequence(Inspecting()) is None


INT_CASES = [("BINARY", (5, 16), 16), ("UINT2", (3, 4, 6), 12), ("INT4", (7, 9), 36),
             ("INT8", (2, 3, 5), 44), ("INT32", (4, 3), 96), ("UINT12", (6, 1), 12)]


@pytest.mark.parametrize("name,shape,nbits", INT_CASES)
@pytest.mark.parametrize("reverse_inner", [False, True])
def test_fast_hex_packing_equals_finns(name, shape, nbits, reverse_inner, finn_build_dir):
    import finn.util.data_packing as dp

    dt = DataType[name]
    rng = np.random.default_rng(nbits)
    x = rng.integers(int(dt.min()), int(dt.max()) + 1, shape).astype(np.float32)
    if name == "INT32":
        x[0, 0] = 2**30 + 1  # float32 rounds it, in both (FINN converts to float32 first)
    want = dp.pack_innermost_dim_as_hex_string(x, dt, nbits, reverse_inner=reverse_inner)
    with fast_hex_packing():
        assert dp.pack_innermost_dim_as_hex_string is not want  # patched inside the block
        got = dp.pack_innermost_dim_as_hex_string(x, dt, nbits, reverse_inner=reverse_inner,
                                                  prefix="0x")
        plain = dp.pack_innermost_dim_as_hex_string(x, dt, nbits, reverse_inner, "")
    assert got.dtype.kind == want.dtype.kind == "U" and np.array_equal(got, want)
    assert np.array_equal(plain, np.char.replace(want, "0x", ""))


def test_fast_hex_packing_leaves_other_types_to_finn_and_restores(finn_build_dir):
    import finn.custom_op.fpgadataflow.matrixvectoractivation as mvau
    import finn.util.data_packing as dp

    original = dp.pack_innermost_dim_as_hex_string
    x = np.array([[0.5, -1.25], [1.0, 0.0]], dtype=np.float32)
    want = original(x, DataType["FIXED<8,4>"], 16)
    with fast_hex_packing():
        assert mvau.pack_innermost_dim_as_hex_string is not original
        assert np.array_equal(dp.pack_innermost_dim_as_hex_string(x, DataType["FIXED<8,4>"], 16), want)
        with pytest.raises(Exception):  # FINN refuses a width that is not whole hex digits
            dp.pack_innermost_dim_as_hex_string(np.ones((2, 3), np.float32), DataType["UINT2"], 6)
    assert dp.pack_innermost_dim_as_hex_string is original
    assert mvau.pack_innermost_dim_as_hex_string is original
