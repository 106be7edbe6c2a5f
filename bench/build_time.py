"""Benchmark: time from the demo network's ``MODEL.onnx`` to the end of FINN's code generation
and our layers' C simulation (``hw-gen build --stop-after codegen``), in one process.

The network is ``brevitas_models.nets`` "demo" (default width, 64x64, MBU and axial attention)
with seeded random batch-norm statistics (training does not change the build's work). The
export is not timed. The per-step seconds come from ``OUT/verification.json``; the CPU seconds
of the build (this process and g++) are recorded beside the wall clock, and the load average. As a reference
for the machine's speed, the same process times torch eval of the network on 64 frames; the
JSON records both and their ratio. Target: the build under 40 s on 2 cores.

    python bench/build_time.py [--out bench/build_time.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

SEED = 0
H = W = 64
REFERENCE_FRAMES = 64


def demo_network():
    import torch

    from brevitas_models.nets import build as build_net

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from lowering_nets import randomize_bn

    torch.manual_seed(SEED)
    return randomize_bn(build_net("demo"), SEED)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (g++), user and system: on a
    shared machine, closer to what the build costs than the wall clock."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def torch_reference_seconds(net) -> float:
    import torch

    x = torch.rand(REFERENCE_FRAMES, 3, H, W, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        net(x[:1])
        t0 = time.perf_counter()
        net(x)
    return time.perf_counter() - t0


def measure(work: Path) -> dict:
    import numpy as np
    import torch

    from brevitas_models.export import export_qonnx
    from hw_gen.build import build

    net = demo_network()
    x = torch.randint(0, 256, (1, 3, H, W), generator=torch.Generator().manual_seed(SEED + 1)) / 255.0
    onnx_path = work / "demo.onnx"
    export_qonnx(net, x, onnx_path)
    np.save(work / "input.npy", x.numpy())
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    result = build(onnx_path, work / "build", input_npy=work / "input.npy", stop_after="codegen")
    build_seconds = time.perf_counter() - t0
    build_cpu = cpu_seconds() - cpu0
    reference = torch_reference_seconds(net)
    return {
        "network": f"demo width {net.width}, {H}x{W}, random batch norm (seed {SEED})",
        "passed": result.passed,
        "build_seconds": round(build_seconds, 2),
        "build_cpu_seconds": round(build_cpu, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "steps": {s.step: {"status": s.status, "seconds": s.seconds} for s in result.steps},
        "reference": f"torch eval, {REFERENCE_FRAMES} frames {H}x{W}",
        "reference_seconds": round(reference, 3),
        "build_over_reference": round(build_seconds / reference, 1),
        "target": "build_seconds under 40 on 2 cores",
        "target_met": build_seconds < 40,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/build_time.json"))
    parser.add_argument("--keep", type=Path, default=None, help="build here and keep it")
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = measure(args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            report = measure(Path(tmp))
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("passed", "build_seconds", "build_over_reference")}))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
