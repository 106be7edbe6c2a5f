"""The bundle format: deterministic files, refusals and errors that name what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qonnx.core.datatype import DataType

import sim
from hw_gen.bundle import BundleError, to_sim_bundle, write_bundle
from sim.datatypes import DataTypeError, wrap
from test_sim_kernels import _mvau_model, single_node_model


@pytest.fixture
def mvau(finn_build_dir):
    rng = np.random.default_rng(5)
    model, feed = _mvau_model(rng, 27, 6, 9, 3, "INT4", "INT2", "act", "INT3", [1, 2, 2], {})
    return model, feed


def test_files_are_deterministic(mvau, tmp_path):
    model, _ = mvau
    a = write_bundle(model, tmp_path / "a" / "bundle")
    b = write_bundle(model, tmp_path / "b" / "bundle")
    for path_a, path_b in zip(a, b):
        assert path_a.read_bytes() == path_b.read_bytes()
    spec = json.loads(a[0].read_text())
    assert (spec["format"], spec["version"]) == ("hwgen-sim-bundle", 1)
    assert spec["nodes"][0]["attrs"]["SIMD"] == 9 and spec["nodes"][0]["attrs"]["PE"] == 3
    assert spec["inputs"][0]["folded_shape"] == [1, 2, 2, 3, 9]


def test_in_memory_bundle_equals_written_one(mvau, tmp_path):
    model, feed = mvau
    from_disk = sim.run(sim.load_bundle(write_bundle(model, tmp_path / "m")[0]), feed)
    in_memory = sim.run(to_sim_bundle(model), feed)
    assert np.array_equal(from_disk["outp"], in_memory["outp"])


def test_return_all_gives_every_tensor(mvau):
    model, feed = mvau
    everything = sim.run(to_sim_bundle(model), feed, return_all=True)
    assert set(everything) == {"inp", "outp"}


@pytest.mark.parametrize(
    "op,domain,message",
    [
        ("Relu", "", "node Relu_0: op type Relu is not supported by sim"),
        ("ElementwiseDiv", "finn.custom_op.fpgadataflow",
         "node ElementwiseDiv_0: hardware layer ElementwiseDiv is not supported by sim"),
    ],
)
def test_unsupported_ops_are_refused_in_one_line(op, domain, message, finn_build_dir):
    attrs = {}
    if op.startswith("Elementwise"):
        attrs = dict(lhs_dtype="INT4", rhs_dtype="INT4", out_dtype="INT8", lhs_shape=[1, 4],
                     rhs_shape=[1, 4], out_shape=[1, 4])
    inputs = {"a": ((1, 4), "INT4")} | ({"b": ((1, 4), "INT4")} if attrs else {})
    model = single_node_model(op, inputs, {"y": ((1, 4), "INT8")}, domain=domain, **attrs)
    with pytest.raises(BundleError) as err:
        to_sim_bundle(model)
    assert str(err.value) == message


def _edited(tmp_path, model, edit):
    json_path, _ = write_bundle(model, tmp_path / "e")
    spec = json.loads(json_path.read_text())
    edit(spec)
    json_path.write_text(json.dumps(spec))
    return json_path


def test_kernel_shape_error_names_the_node(mvau, tmp_path):
    model, feed = mvau
    path = _edited(tmp_path, model, lambda s: s["nodes"][0]["attrs"].update(MW=28))
    with pytest.raises(sim.SimError, match=r"^node MVAU_0 \(MVAU\): weights have shape \(27, 6\)"):
        sim.run(sim.load_bundle(path), feed)


def test_declared_shape_mismatch_names_the_node(mvau, tmp_path):
    model, feed = mvau
    path = _edited(tmp_path, model, lambda s: s["tensors"]["outp"].update(shape=[1, 2, 3, 6]))
    with pytest.raises(sim.SimError, match=r"node MVAU_0 \(MVAU\): output 'outp' has shape \(1, 2, 2, 6\)"):
        sim.run(sim.load_bundle(path), feed)


def test_missing_kernel_is_an_error_at_run_time(mvau, tmp_path):
    model, feed = mvau
    path = _edited(tmp_path, model, lambda s: s["nodes"][0].update(op_type="Frobnicate"))
    with pytest.raises(sim.SimError, match="node MVAU_0 .*no kernel for hardware layer 'Frobnicate'"):
        sim.run(sim.load_bundle(path), feed)


def test_bad_inputs_are_refused(mvau):
    model, feed = mvau
    bundle = to_sim_bundle(model)
    with pytest.raises(sim.SimError, match="input 'inp': shape"):
        sim.run(bundle, {"inp": feed["inp"][..., :-1]})
    with pytest.raises(sim.SimError, match="input 'inp': value 8.0 is not representable as INT4"):
        sim.run(bundle, {"inp": np.full_like(feed["inp"], 8)})
    with pytest.raises(sim.SimError, match="missing graph input"):
        sim.run(bundle, {})


def test_version_and_hash_are_checked(mvau, tmp_path):
    model, _ = mvau
    path = _edited(tmp_path / "v", model, lambda s: s.update(version=2))
    with pytest.raises(sim.SimError, match="version 2 not supported"):
        sim.load_bundle(path)
    json_path, npz_path = write_bundle(model, tmp_path / "h" / "b")
    data = bytearray(npz_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz_path.write_bytes(bytes(data))
    with pytest.raises(sim.SimError, match="sha256 differs"):
        sim.load_bundle(json_path)


def test_hardware_outputs_wrap_to_the_declared_type(finn_build_dir):
    """A too-narrow output type shows as the hardware's two's-complement wrap."""
    model = single_node_model(
        "ElementwiseAdd", {"a": ((1, 6), "INT4"), "b": ((1, 6), "INT4")}, {"y": ((1, 6), "INT4")},
        lhs_dtype="INT4", rhs_dtype="INT4", out_dtype="INT4", lhs_shape=[1, 6], rhs_shape=[1, 6],
        out_shape=[1, 6],
    )
    a = np.array([[7, 7, -8, -8, 3, -1]], dtype=np.float32)
    b = np.array([[1, 7, -1, -8, 4, 1]], dtype=np.float32)
    got = sim.run(to_sim_bundle(model), {"a": a, "b": b})["y"]
    assert got.tolist() == [[-8, -2, 7, 0, 7, 0]]


@pytest.mark.parametrize(
    "dt,values,expected",
    [
        ("INT8", [127, 128, -129, 255, -256], [127, -128, 127, -1, 0]),
        ("UINT3", [7, 8, 9, -1], [7, 0, 1, 7]),
        ("BINARY", [0, 1, 2, 3], [0, 1, 0, 1]),
        ("BIPOLAR", [-1, 1, 3, -3], [-1, 1, -1, 1]),
        ("INT9", [144, 256, -257], [144, -256, 255]),
    ],
)
def test_wrap_by_hand(dt, values, expected):
    assert wrap(np.array(values), dt).tolist() == expected
    assert DataType[dt].allowed(np.array(expected)).all()


def test_unknown_datatype_named():
    with pytest.raises(DataTypeError, match="unknown data type 'INT'"):
        wrap(np.zeros(2), "INT")
