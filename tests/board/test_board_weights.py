"""Runtime weights on the pynq backend against the fake device: ``load_weights`` writes each
writable layer's words (``hw-gen weights``, FINN's layout) into its AXI-lite memory."""

from __future__ import annotations

import numpy as np
import pytest

from driver import Accelerator, DriverError
from reference import expected_outputs
from test_board_driver import PACKAGES, _device, _with_bitstream

NAME = "runtime_weights"


def test_load_weights_writes_the_axilite_memories(tmp_path):
    pkg = _with_bitstream(NAME, tmp_path)
    device = _device(pkg)
    acc = Accelerator(pkg, backend="pynq", device=device)
    weights = np.load(PACKAGES / NAME / "b_weights.npz")
    acc.load_weights(PACKAGES / NAME / "b_weights.npz")
    memories = {m.name: m for m in device.dmas.values() if hasattr(m, "written")}
    assert len(memories) == len(acc.spec.runtime_weights) == 3
    for layer in acc.spec.runtime_weights:
        memory = memories[layer["axilite"]]
        words = weights[layer["name"] + ".axilite"]
        assert memory.written == len(words)
        assert np.array_equal(memory.words[:len(words)], words)


def test_sim_backend_runs_the_retrained_model(tmp_path):
    ref = np.load(PACKAGES / NAME / "reference.npz")
    acc = Accelerator(PACKAGES / NAME / "pkg", backend="sim")
    acc.load_weights(PACKAGES / NAME / "b_weights.npz")
    out = acc.execute(ref["images"])
    scores, labels = expected_outputs(ref["logits"], out.scale, out.bias)
    assert np.array_equal(np.transpose(out.scores, out.perm), scores)
    assert np.array_equal(out.labels, labels)


def test_bitstream_without_the_interfaces_is_refused(tmp_path):
    from hwh_fixture import write_hwh

    pkg = _with_bitstream(NAME, tmp_path)
    spec_ports = ["idma0"] + [f"odma{i}" for i in range(2)]
    write_hwh(pkg / "bitstream" / "accel.hwh", spec_ports)
    acc = Accelerator(pkg, backend="pynq", device=_device(pkg))
    with pytest.raises(DriverError, match="no AXI-lite interface 'StreamingDataflowPartition_1/"
                       "s_axilite_0'.*MVAU_hls_0"):
        acc.load_weights(PACKAGES / NAME / "b_weights.npz")
