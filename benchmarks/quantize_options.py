"""VGG16 int8 against fp32 on the CPU: ONNX Runtime's per-node profile and the quantization options.

    .venv/bin/python benchmarks/quantize_options.py                 # profile + every option, physical cores
    .venv/bin/python benchmarks/quantize_options.py --threads 1 --only default,U8U8

Random weights and calibration inputs (speed only, as in benchmarks/quantize.py).
Part 1: per-node kernel times (SessionOptions.enable_profiling, medians over the runs)
of fp32 and zoo's default int8, layer by layer, with the ratio. Part 2: every variant
timed side by side in one process, interleaved round by round, medians, batch 1 and
batch 64: the quantize_static options (activation/weight types, reduce_range,
per-channel, QDQ or QOperator, symmetric weights) and the session settings that touch
quantized kernels on x86 (session.x64quantprecision, session.disable_prepacking, the
graph optimization level). Read the ratios, not the milliseconds, on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

import zoo
from zoo.onnx import export as ex
from zoo.onnx.qdq_graph import float_outputs, slim, tidy
from zoo.onnx.quantize import QuantizeOptions, _Reader, quantize_int8
from zoo.onnx.runtime import physical_cores

ALL, EXTENDED = ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
U8, S8 = QuantType.QUInt8, QuantType.QInt8


def session(data: bytes, threads: int, level=ALL, config=(), profile: str | None = None):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.graph_optimization_level = threads, 1, level
    opts.log_severity_level = 3
    for key, value in config:
        opts.add_session_config_entry(key, value)
    if profile:
        opts.enable_profiling, opts.profile_file_prefix = True, profile
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def variant(proto, calibration, fmt=QuantFormat.QDQ, act=U8, weight=S8, per_channel=True, reduce_range=True,
            extra=None) -> bytes:
    """quantize_static with these options, then zoo's own graph edits (as quantize_int8 does)."""
    with tempfile.TemporaryDirectory() as tmp:
        quant_pre_process(proto, f"{tmp}/pre.onnx")
        quantize_static(f"{tmp}/pre.onnx", f"{tmp}/q.onnx", _Reader(proto.graph.input[0].name, calibration),
                        quant_format=fmt, per_channel=per_channel, reduce_range=reduce_range, activation_type=act,
                        weight_type=weight, extra_options=extra or {})
        model = onnx.load(f"{tmp}/q.onnx")
    if fmt == QuantFormat.QDQ:
        float_outputs(model)
        slim(model)
    tidy(model)
    return model.SerializeToString()


def node_times(data: bytes, x: np.ndarray, runs: int, threads: int) -> list[tuple[str, str, float]]:
    """(op, output shape, median ms) of every node ONNX Runtime ran, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(data, threads, profile=f"{tmp}/p")
        name = sess.get_inputs()[0].name
        for _ in range(3 + runs):
            sess.run(None, {name: x})
        events = json.load(open(sess.end_profiling()))
    times, info = {}, {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            times.setdefault(e["name"], []).append(e["dur"])
            info[e["name"]] = (e["args"]["op_name"], str(e["args"].get("output_type_shape")))
    return [(*info[n], statistics.median(t[-runs:]) / 1000) for n, t in times.items()]


def layer_table(fp32, int8, batch: int, runs: int, threads: int) -> None:
    x = np.random.default_rng(0).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    convs = [[t for t in node_times(d, x, runs, threads) if "Conv" in t[0]] for d in (fp32, int8)]
    total = [sum(t[2] for t in node_times(d, x, runs, threads)) for d in (fp32, int8)]
    print(f"\nbatch {batch}: sum of node times fp32 {total[0]:.3f} ms, int8 {total[1]:.3f} ms "
          f"({total[0] / total[1]:.2f}x)\n| layer | int8 output | fp32 ms | int8 ms | ratio |\n| --- | --- | --- | --- | --- |")
    for i, (f, q) in enumerate(zip(*convs), 1):
        print(f"| conv{i} | {q[1]} | {f[2]:.3f} | {q[2]:.3f} | {f[2] / q[2]:.2f}x |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated variant labels (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = zoo.get_spec("vgg16")
    torch.manual_seed(0)
    from zoo.runs import in_memory

    proto, _ = ex.build(spec, in_memory(spec.builder(), "random (torch.manual_seed(0))"), ex.ExportOptions())
    calibration = torch.randn(64, *spec.input_shape, generator=torch.Generator().manual_seed(0)).numpy()
    fp32, default = ex.serialize(proto), ex.serialize(quantize_int8(proto, calibration, QuantizeOptions("int8")))
    layer_table(fp32, default, 1, 50, args.threads)
    layer_table(fp32, default, 64, 5, args.threads)
    q = lambda **kw: lambda: variant(proto, calibration, **kw)  # noqa: E731 (built only when picked)
    plans = [("fp32", lambda: fp32, {}), ("default (QDQ, U8S8, per-channel, reduce_range)", lambda: default, {}),
             ("reduce_range off", q(reduce_range=False), {}), ("S8S8", q(act=S8), {}), ("U8U8", q(weight=U8), {}),
             ("per-tensor", q(per_channel=False), {}),
             ("per-tensor asymmetric weights", q(per_channel=False, extra={"WeightSymmetric": False}), {}),
             ("QOperator", q(fmt=QuantFormat.QOperator), {}),
             ("default + session.x64quantprecision=1", lambda: default, {"config": [("session.x64quantprecision", "1")]}),
             ("default + session.disable_prepacking=1", lambda: default, {"config": [("session.disable_prepacking", "1")]}),
             ("default at ORT_ENABLE_EXTENDED", lambda: default, {"level": EXTENDED}),
             ("fp32 at ORT_ENABLE_EXTENDED", lambda: fp32, {"level": EXTENDED})]
    picked = set(filter(None, args.only.split(","))) | {"fp32"}
    plans = [p for p in plans if not args.only or p[0] in picked or p[0].split(" ")[0] in picked]
    sessions = [(label, session(make(), args.threads, **kw)) for label, make, kw in plans]
    rng = np.random.default_rng(0)
    xs = {b: rng.standard_normal((b, 3, 32, 32)).astype(np.float32) for b in (1, 64)}
    times = {(label, b): [] for label, _ in sessions for b in xs}
    load = os.getloadavg()
    for _ in range(args.rounds):
        for b, x in xs.items():
            for label, sess in sessions:
                name = sess.get_inputs()[0].name
                for _ in range(30 if b == 1 else 3):
                    start = time.perf_counter()
                    sess.run(None, {name: x})
                    times[(label, b)].append(time.perf_counter() - start)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"\n{args.threads} threads, load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after\n"
          "| variant | batch 1 ms | vs fp32 | batch 64 ms | vs fp32 |\n| --- | --- | --- | --- | --- |")
    for label, _ in sessions:
        print(f"| {label} | {med[(label, 1)]:.3f} | {med[('fp32', 1)] / med[(label, 1)]:.2f}x | "
              f"{med[(label, 64)]:.1f} | {med[('fp32', 64)] / med[(label, 64)]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
