"""Benchmark: sim against torch eval on the paper-scale network, ``seg-r18-cityscapes`` at
1024x512 (W x H), one frame, in one process; sim's peak memory in a process of its own.

Random seeded weights, batch norms and sign shifts (the speed does not depend on them). The
network is exported to QONNX and lowered by hw_gen at its real size to the specialized, folded
``dataflow.onnx``, written as a sim bundle. Per frame, the best of ``--repeat`` interleaved
rounds (after a warm-up): torch eval (2 threads, ``torch.inference_mode()``) and sim on the
bundle, and the CPU time of both with one thread each. Memory: a fresh Python process loads the bundle and runs sim once; its peak resident
set (``VmHWM``: interpreter, numpy, the bundle's weights and every intermediate) is held
against the 4 GiB bound. Checks: sim's labels equal torch's. FINN's Python execution is not
run here: it cannot execute the specialized graph, and on the graph before specialization
it takes about 17x sim's time on the demo network (``bench/sim_vs_torch_finn.json``).

    python bench/sim_paper.py [--out bench/sim_paper.json] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONFIG = "seg-r18-cityscapes"
SEED = 0
MEMORY_BOUND = 4 << 30

_CHILD = """
import sys, time
import numpy as np
import sim

def peak():
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork and exec)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))

bundle = sim.load_bundle(sys.argv[1])
x = np.load(sys.argv[2])
base = peak()
t0 = time.perf_counter()
out = sim.run(bundle, {bundle.inputs[0].name: x})
seconds = time.perf_counter() - t0
print(base, peak(), seconds)
np.savez(sys.argv[3], **out)
"""

def paper_network():
    """seg-r18-cityscapes with seeded random weights, batch norms and sign shifts, in eval."""
    import torch

    from brevitas_models.configs import build_config
    from brevitas_models.resnet import RSign

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from lowering_nets import randomize_bn

    torch.manual_seed(SEED)
    model = randomize_bn(build_config(CONFIG), SEED)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, RSign):
                m.shift.uniform_(-0.5, 0.5)
    return model.eval()


def lowered_bundle(model, x: np.ndarray, work: Path):
    """Export and lower ``model`` in ``work`` (or reuse the bundle a kept ``work`` holds); the
    bundle's path stem, the lowering's seconds, the lowered graph and its hardware layers."""
    import torch

    from brevitas_models.export import export_qonnx
    from hw_gen.bundle import write_bundle
    from hw_gen.lowering import lower

    stem, record = work / "bundle", work / "lowering.json"
    if record.exists() and stem.with_suffix(".json").exists():
        from qonnx.core.modelwrapper import ModelWrapper

        done = json.loads(record.read_text())
        graph = ModelWrapper(str(work / "lowered" / "dataflow.onnx"))
        return stem, done["seconds"], graph, done["layers"]
    onnx_path = work / f"{CONFIG}.onnx"
    if not onnx_path.exists():
        export_qonnx(model, torch.from_numpy(x), onnx_path)
    t0 = time.perf_counter()
    result = lower(onnx_path, work / "lowered")
    seconds = time.perf_counter() - t0
    write_bundle(result.model, stem)
    record.write_text(json.dumps({"seconds": seconds, "layers": len(result.rows)}))
    return stem, seconds, result.model, len(result.rows)


def sim_in_child(stem: Path, graph_x: np.ndarray, work: Path) -> tuple[int, int, float, dict]:
    """Run sim once in a fresh process: (resident bytes before the run, peak resident bytes,
    seconds, outputs)."""
    np.save(work / "x.npy", graph_x)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", _CHILD, str(stem), str(work / "x.npy"),
                           str(work / "out.npz")], check=True, capture_output=True, text=True,
                          env=env)
    base, peak, seconds = done.stdout.split()[-3:]
    with np.load(work / "out.npz") as f:
        outputs = {k: f[k] for k in f.files}
    return int(base), int(peak), float(seconds), outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work folder to keep and reuse (default: a "
                        "temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="sim_paper_"))
    work.mkdir(parents=True, exist_ok=True)
    from hw_gen.finn_adapter import init_finn

    init_finn(work / "lowered" / "finn_build")
    import torch

    torch.set_num_threads(2)
    import sim
    from hw_gen.lowering.execute import graph_input
    from hw_gen.lowering.interface import LABELS_NAME
    from hw_gen.verify import exact_argmax

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sim_vs_torch_finn import interleaved, one_thread_cpu

    model = paper_network()
    h, w = model.input_size
    rng = np.random.default_rng(SEED)
    x = (rng.integers(0, 256, (1, 3, h, w)) / 255.0).astype(np.float32)
    stem, lower_s, graph, layers = lowered_bundle(model, x, work)
    bundle = sim.load_bundle(stem)
    graph_x = graph_input(graph, x)
    inputs = {bundle.inputs[0].name: graph_x}
    xt = torch.from_numpy(x)

    load_before = os.getloadavg()
    base, peak, child_s, child_out = sim_in_child(stem, graph_x, work)

    def torch_eval():
        with torch.inference_mode():
            model(xt)

    best = interleaved({"torch_eval": torch_eval, "sim": lambda: sim.run(bundle, inputs)},
                       args.repeat)
    single = one_thread_cpu({"torch_eval": torch_eval, "sim": lambda: sim.run(bundle, inputs)},
                            args.repeat)
    load_after = os.getloadavg()
    with torch.inference_mode():
        want = exact_argmax(model(xt).numpy())
    outputs = sim.run(bundle, inputs)
    torch_t, sim_t = best["torch_eval"], best["sim"]
    wrong = outputs[LABELS_NAME].reshape(want.shape) != want
    checks = {
        "sim_labels_equal_torch": not wrong.any(),
        "sim_in_child_equals_sim": all(np.array_equal(outputs[k], child_out[k]) for k in outputs),
        "sim_peak_memory_within_4_GiB": peak <= MEMORY_BOUND,
    }
    report = {
        "network": f"brevitas_models.configs {CONFIG!r}, random weights, batch norms and sign "
                   f"shifts (seed {SEED})",
        "input": [1, 3, h, w],
        "hardware_layers": layers,
        "lowering_s": round(lower_s, 1),
        "ms_per_frame": {"torch_eval": round(torch_t[0] * 1e3, 1),
                         "sim_dataflow": round(sim_t[0] * 1e3, 1),
                         "sim_dataflow_fresh_process": round(child_s * 1e3, 1)},
        "cpu_ms_per_frame": {"torch_eval": round(torch_t[1] * 1e3, 1),
                             "sim_dataflow": round(sim_t[1] * 1e3, 1)},
        "one_thread_cpu_ms_per_frame": {"torch_eval": round(single["torch_eval"] * 1e3, 1),
                                        "sim_dataflow": round(single["sim"] * 1e3, 1)},
        "ratios": {"sim_dataflow_over_torch": round(sim_t[0] / torch_t[0], 3),
                   "sim_dataflow_over_torch_one_thread_cpu": round(
                       single["sim"] / single["torch_eval"], 3),
                   "sim_dataflow_over_torch_cpu": round(sim_t[1] / torch_t[1], 3)},
        "sim_memory": {"peak_resident_MiB": round(peak / 2**20, 1),
                       "resident_before_run_MiB": round(base / 2**20, 1),
                       "bound_MiB": MEMORY_BOUND >> 20,
                       "note": "VmHWM of a fresh process that loads the bundle and runs sim "
                               "once on one frame"},
        "targets": {"sim_over_torch_at_most_0.5": sim_t[0] <= 0.5 * torch_t[0],
                    "sim_peak_memory_within_4_GiB": peak <= MEMORY_BOUND},
        "checks": checks,
        "labels_differing_from_torch": {
            "pixels": int(wrong.sum()), "of": int(wrong.size),
            "first_column": int(np.argmax(wrong.any(axis=(0, 1)))) if wrong.any() else None},
        "load_average_1min": [round(load_before[0], 2), round(load_after[0], 2)],
        "notes": [
            f"torch threads: {torch.get_num_threads()} (inference_mode); best of {args.repeat} "
            "interleaved rounds after a warm-up",
            "FINN's Python execution not measured: it cannot run the specialized graph, and the "
            "graph before specialization at this size would take minutes a frame",
        ],
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__,
        "torch": torch.__version__,
    }
    args.out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(json.dumps(report, indent=1, sort_keys=True))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
