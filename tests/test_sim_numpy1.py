"""sim under numpy 1.26: bundles written here (numpy 2) run in an interpreter that has
numpy 1.26 and nothing of FINN, and give FINN's integers.

Set SIM_NUMPY1_PYTHON to such an interpreter (e.g. a venv with only numpy==1.26.4) to run;
skipped otherwise."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hw_gen.bundle import write_bundle
from test_sim_fused import CASES as CONV_CASES
from test_sim_fused import conv_model
from test_sim_kernels import (
    MVAU_CASES,
    SWG_CASES,
    _mvau_model,
    _onnx_case,
    _swg_model,
    _thresholding_case,
    random_tensor,
)

NUMPY1 = os.environ.get("SIM_NUMPY1_PYTHON")
ROOT = Path(__file__).resolve().parents[1]

RUNNER = """
import sys, numpy as np, sim
assert np.__version__.startswith("1."), np.__version__
for stem in sys.argv[1:]:
    feed = dict(np.load(stem + ".in.npz"))
    out = sim.run(sim.load_bundle(stem), feed)
    np.savez(stem + ".sim.npz", **out)
"""


@pytest.mark.skipif(not NUMPY1, reason="SIM_NUMPY1_PYTHON (an interpreter with numpy 1.26) not set")
def test_bundles_run_under_numpy_1(finn_build_dir, tmp_path):
    from finn.core.onnx_exec import execute_onnx

    rng = np.random.default_rng(77)
    cases = [_mvau_model(rng, *c) for c in MVAU_CASES]
    for c in SWG_CASES[:6]:
        model, shape = _swg_model(*c)
        cases.append((model, {"inp": random_tensor(rng, c[7], shape)}))
    cases += [_thresholding_case(i) for i in range(6)] + [_onnx_case(i) for i in range(14)]
    for i, conv in enumerate(CONV_CASES):  # the fused window + MVAU kernel (sim.run fuses)
        model, x = conv_model(np.random.default_rng(i), *conv[:-2])
        cases.append((model, {"x": x[:1]}))
    stems, expected = [], []
    for i, (model, feed) in enumerate(cases):
        stem = tmp_path / f"case{i}"
        write_bundle(model, stem)
        np.savez(f"{stem}.in.npz", **feed)
        stems.append(str(stem))
        expected.append(execute_onnx(model, feed))
    subprocess.run([NUMPY1, "-c", RUNNER, *stems], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    for stem, want in zip(stems, expected):
        with np.load(stem + ".sim.npz") as got:
            for name, value in want.items():
                assert np.array_equal(got[name], value), (stem, name)
