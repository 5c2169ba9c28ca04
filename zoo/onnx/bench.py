"""PyTorch eager vs ONNX Runtime: latency at batch 1, throughput at a big batch.

Both engines get numpy in and numpy out (as a serving process would), the same
thread count (physical cores), warm-up runs first, and the median of repeated runs
(each measurement stops after `budget` seconds, with at least `min_runs` runs).
ONNX Runtime: intra-op threads = physical cores, inter-op 1, sequential execution,
ORT_ENABLE_ALL graph optimisations (runtime.session_options). Timing numbers
belong in reports and benchmarks/, never in tests.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..errors import ExportError, UsageError
from ..spec import MAX_BATCH, ModelSpec
from .defaults import BENCH_BIG_BATCH
from .export import example_input
from .runtime import cuda_device_present, open_session, physical_cores


@dataclass
class BenchSettings:
    big_batch: int = BENCH_BIG_BATCH
    warmup: int = 5
    min_runs: int = 5
    max_runs: int = 200
    budget: float = 3.0  # seconds per measurement, after warm-up
    threads: int | None = None  # both engines; None: physical cores

    def __post_init__(self) -> None:
        # Training's batch limit: beyond it the input alone fails to allocate (a typo, not a measurement).
        if not 1 <= self.big_batch <= MAX_BATCH:
            raise UsageError(f"--batch must be 1..{MAX_BATCH}, got {self.big_batch}")


@dataclass
class Timing:
    engine: str  # "pytorch eager" or "onnxruntime"
    device: str  # cpu or cuda
    providers: list[str]
    batch1_ms: float  # median latency
    batch1_runs: int
    big_batch_ms: float
    big_batch_runs: int
    throughput: float  # images per second at the big batch


@dataclass
class Ratio:
    device: str
    latency_speedup: float  # eager ms / onnxruntime ms at batch 1
    throughput_speedup: float  # onnxruntime img/s / eager img/s at the big batch


@dataclass
class BenchReport:
    model: str
    onnx: str
    threads: int
    settings: BenchSettings
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    timings: list[Timing] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def median_ms(fn, settings: BenchSettings, max_runs: int | None = None) -> tuple[float, int]:
    for _ in range(settings.warmup):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + settings.budget
    while len(times) < (max_runs or settings.max_runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if len(times) >= settings.min_runs and time.perf_counter() > deadline:
            break
    return statistics.median(times) * 1000, len(times)


def _torch_runner(module, x: np.ndarray, device: str):
    def run():
        with torch.inference_mode():
            out = module(torch.from_numpy(x).to(device))
            return out.cpu().numpy()
    return run


def _time(engine: str, device: str, providers: list[str], make_runner, one, big, settings) -> Timing:
    b1, n1 = median_ms(make_runner(one), settings)
    bb, nb = median_ms(make_runner(big), settings)
    return Timing(engine, device, providers, b1, n1, bb, nb, big.shape[0] / (bb / 1000))


def benchmark(spec: ModelSpec, module, onnx_bytes: bytes, onnx_name: str, raw_input: bool,
              settings: BenchSettings | None = None, provider: str = "auto") -> BenchReport:
    """Time `module` (eager) and the ONNX model on the CPU, and on CUDA when present."""
    settings = settings or BenchSettings()
    threads = settings.threads or physical_cores()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    report = BenchReport(spec.name, onnx_name, threads, settings, os.getloadavg())
    gen = torch.Generator().manual_seed(0)
    one = example_input(spec, 1, raw_input, gen).numpy()
    big = example_input(spec, settings.big_batch, raw_input, gen).numpy()
    devices = ["cpu"] + (["cuda"] if provider != "cpu" and cuda_device_present() else [])
    if provider == "cuda":
        if not cuda_device_present():
            raise ExportError("CUDA was requested but no CUDA device is present: use --provider cpu or auto")
        devices = ["cuda"]
    try:
        for device in devices:
            module = module.to(device).eval()
            eager = _time("pytorch eager", device, [], lambda x: _torch_runner(module, x, device), one, big, settings)
            session = open_session(onnx_bytes, "cuda" if device == "cuda" else "cpu", threads, onnx_name)
            if session.cuda_missing:
                raise ExportError(f"a CUDA device is present but ONNX Runtime used {', '.join(session.providers)}: "
                                  "install the CUDA and cuDNN libraries onnxruntime-gpu needs")
            ort = _time("onnxruntime", device, session.providers, lambda x: (lambda: session.run(x)),
                        one, big, settings)
            report.timings += [eager, ort]
            report.ratios.append(Ratio(device, eager.batch1_ms / ort.batch1_ms, ort.throughput / eager.throughput))
    finally:
        module.to("cpu")
        torch.set_num_threads(old_threads)
    report.load_after = os.getloadavg()
    return report


