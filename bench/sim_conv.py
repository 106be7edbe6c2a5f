"""Benchmark: one binary 3x3 conv layer (64 -> 64 channels, 64x128 map, padding 1) as FINN
hardware layers (FMPadding -> ConvolutionInputGenerator -> XNOR MVAU with thresholds), run by
FINN's Python execution and by sim; plus sim's XNOR product paths on the same data.

    python bench/sim_conv.py [--out bench/sim_conv.json] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

H, W, C_IN, C_OUT, K = 64, 128, 64, 64, 3


def build_model():
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    rng = np.random.default_rng(0)
    mw = K * K * C_IN
    fpga = dict(domain="finn.custom_op.fpgadataflow", backend="fpgadataflow")
    nodes = [
        helper.make_node("FMPadding", ["x"], ["padded"], name="pad", ImgDim=[H, W], Padding=[1, 1, 1, 1],
                         NumChannels=C_IN, SIMD=C_IN, inputDataType="BINARY", **fpga),
        helper.make_node("ConvolutionInputGenerator", ["padded"], ["windows"], name="swg",
                         ConvKernelDim=[K, K], IFMChannels=C_IN, IFMDim=[H + 2, W + 2], OFMDim=[H, W],
                         SIMD=C_IN, Stride=[1, 1], Dilation=[1, 1], inputDataType="BINARY",
                         outputDataType="BINARY", **fpga),
        helper.make_node("MVAU", ["windows", "weights", "thresholds"], ["y"], name="mvau", MW=mw, MH=C_OUT,
                         SIMD=C_IN, PE=C_OUT // 2, inputDataType="BINARY", weightDataType="BINARY",
                         outputDataType="BINARY", accDataType="INT11", binaryXnorMode=1,
                         noActivation=0, numInputVectors=[1, H, W], **fpga),
    ]
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    graph = helper.make_graph(nodes, "binary_conv", [vi("x", [1, H, W, C_IN])], [vi("y", [1, H, W, C_OUT])],
                              value_info=[vi("padded", [1, H + 2, W + 2, C_IN]), vi("windows", [1, H, W, mw])])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="sim-bench"))
    for name in ("x", "padded", "windows", "y"):
        model.set_tensor_datatype(name, DataType["BINARY"])
    model.set_initializer("weights", rng.integers(0, 2, size=(mw, C_OUT)).astype(np.float32))
    model.set_tensor_datatype("weights", DataType["BINARY"])
    thr = rng.integers(mw // 2 - 20, mw // 2 + 20, size=(C_OUT, 1)).astype(np.float32)
    model.set_initializer("thresholds", thr)
    model.set_tensor_datatype("thresholds", DataType["UINT10"])
    x = rng.integers(0, 2, size=(1, H, W, C_IN)).astype(np.float32)
    return model, {"x": x}


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hw_gen.finn_adapter import init_finn

    work = Path(tempfile.mkdtemp(prefix="sim_bench_"))
    init_finn(work / "finn")
    from finn.core.onnx_exec import execute_onnx

    import sim
    from hw_gen.bundle import write_bundle
    from sim.exact import matmul_int, xnor_popcount

    model, feed = build_model()
    bundle = sim.load_bundle(write_bundle(model, work / "conv")[0])
    finn_out = execute_onnx(model, feed, return_full_exec_context=True)
    sim_out = sim.run(bundle, feed, return_all=True)
    equal = all(np.array_equal(sim_out[t], finn_out[t]) for t in ("padded", "windows", "y"))

    node_times: dict[str, list[float]] = {}

    def timed_run():
        last = [time.perf_counter()]

        def tick(node):
            now = time.perf_counter()
            node_times.setdefault(node.name, []).append(now - last[0])
            last[0] = now

        sim.run(bundle, feed, on_node=tick)

    sim_total = best_of(timed_run, args.repeat)
    finn_total = best_of(lambda: execute_onnx(model, feed), max(1, args.repeat // 2))
    from qonnx.custom_op.registry import getCustomOp

    context = dict(finn_out)
    finn_nodes = {
        n.name: best_of(lambda n=n: getCustomOp(n).execute_node(context, model.graph), max(1, args.repeat // 2))
        for n in model.graph.node
    }
    windows = sim_out["windows"].reshape(-1, K * K * C_IN).astype(np.uint8)
    weights = bundle.initializers["weights"].astype(np.uint8)
    paths = {m: best_of(lambda m=m: xnor_popcount(windows, weights, method=m), args.repeat)
             for m in ("float32", "popcount", "popcount_lut")}
    paths["int64_matmul_reference"] = best_of(
        lambda: matmul_int(2 * windows.astype(np.int64) - 1, 2 * weights.astype(np.int64) - 1, method="int64"), 1
    )
    result = {
        "layer": f"binary conv {C_IN}->{C_OUT}, {K}x{K}, pad 1, {H}x{W} map, XNOR MVAU + thresholds",
        "sim_equals_finn": bool(equal),
        "finn_python_exec_s": round(finn_total, 4),
        "sim_total_s": round(sim_total, 4),
        "speedup": round(finn_total / sim_total, 1),
        "finn_per_node_s": {k: round(v, 4) for k, v in finn_nodes.items()},
        "sim_per_node_s": {k: round(min(v), 4) for k, v in node_times.items()},
        "xnor_product_paths_s": {k: round(v, 4) for k, v in paths.items()},
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    text = json.dumps(result, indent=1, sort_keys=True)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
