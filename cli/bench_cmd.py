"""`zoo bench NAME`: PyTorch eager vs ONNX Runtime, latency at batch 1 and throughput at batch 256."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import typer

from zoo.spec import MAX_BATCH

from .common import check_provider, escape, notice, out, print_json, run_spec, status
from .variants_view import show_variants

BUSY_LOAD = 0.25  # per core: above it, someone else is computing too


def bench(
    name: str = typer.Argument(..., help="Model name, as `zoo list` shows it."),
    onnx_path: Optional[Path] = typer.Option(None, "--onnx",
                                             help="The .onnx file \\[default: exported/NAME.onnx, else a fresh export]."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weights file \\[default: runs/NAME/model.safetensors]."),
    untrained: bool = typer.Option(False, "--untrained", help="Use the builder's initial weights (fine for speed)."),
    provider: str = typer.Option("auto", "--provider", help="auto (CPU, and CUDA when present), cpu or cuda."),
    # A bigger batch than training allows is a typo: it fails allocating, it measures nothing.
    batch: int = typer.Option(256, "--batch", min=1, max=MAX_BATCH, help="Batch size for the throughput measurement."),
    warmup: int = typer.Option(5, "--warmup", min=0, help="Untimed runs before each measurement."),
    repeat: int = typer.Option(500, "--repeat", min=1, help="Most timed runs per measurement (median reported)."),
    budget: float = typer.Option(3.0, "--budget", min=0.0, help="Seconds per measurement before stopping early."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                          help="Threads for both engines \\[default: physical cores]."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Median latency (batch 1) and throughput (batch 256) of eager PyTorch and ONNX Runtime, with their ratio."""
    spec = run_spec(name, weights, untrained=untrained)
    check_provider(provider)
    from zoo.onnx import pipeline
    from zoo.onnx.bench import BenchSettings, benchmark
    from zoo.onnx.export import inference_module
    from zoo.onnx.pipeline import input_signature
    from zoo.onnx.predict import read_facts
    from zoo.onnx.runtime import load_model
    from zoo.runs import resolve_weights

    source = resolve_weights(spec, weights, untrained=untrained, offer_untrained=True)
    settings = BenchSettings(big_batch=batch, warmup=warmup, min_runs=min(5, repeat), max_runs=repeat, budget=budget,
                             threads=threads)
    path = onnx_path or pipeline.default_path(name)
    with status(f"Benchmarking {name} ...", json_output), tempfile.TemporaryDirectory() as tmp:
        if onnx_path is None and not path.is_file():
            if not json_output:
                notice(f"no {path}: benchmarking a fresh export (`zoo export {name}` makes one to keep)")
            path = Path(pipeline.export_and_verify(spec, weights=source, out_dir=tmp, verify=False).path)
        facts = read_facts(path, spec)  # a file for another model is an error, not a benchmark
        if facts.weights_sha256 not in (None, source.sha256) and not json_output:
            notice(f"{path} was made from other weights than {source.source}; speed is compared, not outputs")
        proto = load_model(path)  # checked, external data read from the model's folder only
        raw, static = input_signature(proto)
        if static:
            from zoo.errors import UsageError

            raise UsageError(f"{path} has a static batch of {static}: bench needs a dynamic batch axis")
        report = benchmark(spec, inference_module(spec, source.model, raw), proto.SerializeToString(), str(path), raw,
                           settings, provider)
    variants = _time_variants(spec, name, batch, threads, provider, budget) if onnx_path is None else None
    if json_output:
        print_json(report.as_dict() | {"variants": [v.as_dict() for v in variants or []]})
        return
    _show(report)
    for speed in variants or []:
        show_variants(speed)
    from zoo.onnx.runtime import physical_cores

    cores = physical_cores()
    if report.load_before[0] > BUSY_LOAD * cores:
        notice(f"load average {report.load_before[0]:.2f}: other processes share the {cores} cores, "
               "so these timings (eager PyTorch's threads most) are unreliable; measure on a quiet machine")


def _time_variants(spec, name, batch, threads, provider, budget):
    """Every default-named export of NAME found (fp32, int8, fp16; raw-input ones apart), side by side."""
    from zoo.onnx.pipeline import input_signature, variant_paths
    from zoo.onnx.predict import read_facts
    from zoo.onnx.runtime import load_model
    from zoo.onnx.speed import time_variants

    found = variant_paths(name)
    reports = []
    for raw in (False, True):
        group = [(label, path) for label, path in found if label.endswith(" raw") == raw]
        if len(group) < 2:
            continue
        for _, path in group:
            read_facts(path, spec)  # a file for another model is an error, not a benchmark
            if input_signature(load_model(path))[1]:
                notice(f"{path} has a static batch: variants are not compared")
                break
        else:
            reports.append(time_variants(spec, [(label, path.read_bytes()) for label, path in group], raw,
                                         big_batch=batch, threads=threads, budget=budget,
                                         provider=provider))
    return reports


def _show(report) -> None:
    from rich.table import Table

    big = report.settings.big_batch
    table = Table(title=f"{report.model}: {report.threads} threads, median of repeated runs")
    for column in ("engine", "device", "providers", "batch 1 ms", "runs", f"batch {big} ms", "runs", "images/s"):
        table.add_column(column, justify="left" if column in ("engine", "device", "providers") else "right")
    for t in report.timings:
        table.add_row(t.engine, t.device, ", ".join(t.providers) or "-", f"{t.batch1_ms:.3f}", str(t.batch1_runs),
                      f"{t.big_batch_ms:.2f}", str(t.big_batch_runs), f"{t.throughput:,.0f}")
    out.print(table)
    for r in report.ratios:
        out.print(f"{r.device}: ONNX Runtime is {r.latency_speedup:.1f}x eager PyTorch at batch 1 (latency), "
                  f"{r.throughput_speedup:.1f}x at batch {big} (throughput)", soft_wrap=True)
    before, after = report.load_before, report.load_after
    out.print(f"[dim]load average {before[0]:.2f} before, {after[0]:.2f} after (1 min); "
              f"onnx: {escape(report.onnx)}[/]", soft_wrap=True)
