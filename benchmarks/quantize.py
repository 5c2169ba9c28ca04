"""int8 and fp16 against fp32: accuracy, top-1 agreement, file size and ONNX Runtime speed.

    .venv/bin/python benchmarks/quantize.py                      # lenet5, cnn, then vgg16 speed
    .venv/bin/python benchmarks/quantize.py --models lenet5 --epochs 3 --json

lenet5 and cnn are trained with their default recipe on full Fashion-MNIST
(/usr/share/datasets/fashion-mnist, else the bundled MNIST sample; runs are kept in
--runs and reused), then exported three ways with zoo's own pipeline: fp32
(`export_and_verify`), int8 (static QDQ, per-channel 7-bit weights, float logits,
512 calibration images, minmax: zoo's defaults) and fp16 (`export_quantized`), each
verified on the whole test split.
VGG16 gets random weights and is timed only (calibrated on random inputs: its
accuracy would mean nothing).

Speed: every variant of a model is timed in one process, interleaved round by round
(zoo.onnx.speed.time_variants), batch 1 and batch 64, on CPUExecutionProvider with
the machine's physical cores. The machine may be shared: read the ratios, and the
load average printed with them. Not a test: nothing here asserts a speed; the
targets are printed next to the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import zoo
from zoo.onnx import export as ex
from zoo.onnx.pipeline import export_and_verify
from zoo.onnx.quantize import QuantizeOptions, quantize_int8, to_fp16
from zoo.onnx.speed import time_variants
from zoo.onnx.variants import export_quantized
from zoo.runs import in_memory, resolve_weights

FASHION = Path("/usr/share/datasets/fashion-mnist")
TARGETS = {"int8 drop": 0.5, "int8 agreement": 0.99, "fp16 drop": 0.1, "vgg16 int8 speed-up": 3.0,
           "int8 size ratio": 0.3}


def train_once(name: str, dataset: str, epochs: int | None, runs: Path) -> Path:
    from zoo.train import TrainConfig, train

    weights = runs / name / "model.safetensors"
    if not weights.is_file():  # an interrupted run resumes from its checkpoint
        resume = (runs / name / "checkpoint.json").is_file()
        train(TrainConfig(name, epochs=None if resume else epochs, dataset=None if resume else dataset,
                          out=runs / name, offline=True, resume=resume))
    return weights


def accuracy_row(name: str, dataset: str, weights: Path, folder: Path, batch: int) -> dict:
    spec = zoo.get_spec(name)
    source = resolve_weights(spec, weights)
    fp32 = export_and_verify(spec, weights=source, out=folder / f"{name}.onnx")
    row = {"model": name, "dataset": dataset, "fp32_ok": fp32.ok, "fp32_bytes": fp32.size_bytes}
    files = [("fp32", Path(fp32.path).read_bytes())]
    for precision in ("int8", "fp16"):
        q = QuantizeOptions(precision, dataset=dataset, max_drop=100, min_agreement=0)  # measure, never refuse
        report = export_quantized(spec, source, q, out=folder / f"{name}.{precision}.onnx")
        acc = json.loads(report.facts["zoo.accuracy"])
        row |= {"pytorch": acc["pytorch"], f"{precision}_accuracy": acc["onnx"],
                f"{precision}_drop": acc["drop_points"], f"{precision}_agreement": acc["agreement"],
                f"{precision}_max_logit_diff": acc["max_logit_diff"], f"{precision}_bytes": report.size_bytes,
                "test_images": acc["samples"], "providers": acc["providers"]}
        files.append((precision, Path(report.path).read_bytes()))
    row["speed"] = time_variants(spec, files, False, big_batch=batch, budget=6.0).as_dict()
    return row


def vgg_row(batch: int) -> dict:
    """Random weights, random calibration inputs: speed and size only."""
    import torch

    spec = zoo.get_spec("vgg16")
    torch.manual_seed(0)
    source = in_memory(spec.builder(), "random (torch.manual_seed(0))")
    proto, _ = ex.build(spec, source, ex.ExportOptions())
    calibration = torch.randn(64, *spec.input_shape, generator=torch.Generator().manual_seed(0)).numpy()
    files = [("fp32", ex.serialize(proto)),
             ("int8", ex.serialize(quantize_int8(proto, calibration, QuantizeOptions("int8")))),
             ("fp16", ex.serialize(to_fp16(proto)))]
    return {"model": "vgg16", "speed": time_variants(spec, files, False, big_batch=batch, budget=20.0).as_dict(),
            **{f"{label}_bytes": len(data) for label, data in files}}


def ratios(speed: dict) -> dict:
    by = {t["label"]: t for t in speed["timings"]}
    return {label: (by["fp32"]["batch1_ms"] / t["batch1_ms"], by["fp32"]["big_batch_ms"] / t["big_batch_ms"])
            for label, t in by.items()}


def show(rows: list[dict], batch: int) -> None:
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} logical CPUs); targets: {TARGETS}")
    print("\n| model | data | test images | PyTorch | int8 | drop | agreement | fp16 | drop | agreement |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "pytorch" in r:
            print(f"| {r['model']} | {r['dataset']} | {r['test_images']:,} | {r['pytorch']:.2%} | "
                  f"{r['int8_accuracy']:.2%} | {r['int8_drop']:.2f} | {r['int8_agreement']:.2%} | "
                  f"{r['fp16_accuracy']:.2%} | {r['fp16_drop']:.2f} | {r['fp16_agreement']:.2%} |")
    print(f"\n| model | variant | size | vs fp32 | batch 1 ms | speed-up | batch {batch} img/s | speed-up | "
          "load avg before/after |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        s, rel = r["speed"], ratios(r["speed"])
        for t in s["timings"]:
            one, big = rel[t["label"]]
            print(f"| {r['model']} | {t['label']} | {t['size_bytes'] / 1e6:.2f} MB | "
                  f"{t['size_bytes'] / r['fp32_bytes']:.2f}x | {t['batch1_ms']:.3f} | {one:.2f}x | "
                  f"{t['throughput']:,.0f} | {big:.2f}x | {s['load_before'][0]:.2f} / {s['load_after'][0]:.2f} |")
    print(f"\nproviders: {sorted({p for r in rows for t in r['speed']['timings'] for p in t['providers']})}, "
          f"threads {rows[0]['speed']['threads'] if rows else '-'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,cnn,vgg16")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's)")
    parser.add_argument("--runs", type=Path, default=Path("runs/quantize-bench"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    dataset = "fashion-mnist" if FASHION.is_dir() else "mnist"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if name == "vgg16":
                rows.append(vgg_row(args.batch))
                continue
            weights = train_once(name, dataset, args.epochs, args.runs)
            rows.append(accuracy_row(name, dataset, weights, Path(tmp), args.batch))
            print(f"{name}: done", file=sys.stderr)
    for r in rows:
        r.setdefault("fp32_bytes", r["speed"]["timings"][0]["size_bytes"])
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        show(rows, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
