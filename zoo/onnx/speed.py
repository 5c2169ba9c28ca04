"""ONNX Runtime speed of export variants (fp32, int8, fp16), measured side by side.

Every variant gets the same random inputs, the same threads and the same session
settings (runtime.session_options); the measurements are interleaved round by
round so a neighbour's load hits all variants alike. Medians of repeated runs,
with the load average before and after: on a shared machine the ratio is the
figure to trust, not the milliseconds. Never used in tests' assertions on time.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field

from .runtime import open_session, physical_cores

ROUNDS = 5


@dataclass
class VariantTiming:
    label: str  # "fp32", "int8", "fp16" or a file name
    size_bytes: int
    providers: list[str]
    batch1_ms: float  # median latency
    big_batch: int
    big_batch_ms: float
    throughput: float  # images per second at the big batch


@dataclass
class SpeedReport:
    threads: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    timings: list[VariantTiming] = field(default_factory=list)

    def ratio(self, label: str, base: str = "fp32") -> tuple[float, float] | None:
        """(batch-1 speed-up, big-batch speed-up) of `label` over `base`; > 1 is faster."""
        by = {t.label: t for t in self.timings}
        if label not in by or base not in by:
            return None
        return by[base].batch1_ms / by[label].batch1_ms, by[base].big_batch_ms / by[label].big_batch_ms

    def as_dict(self) -> dict:
        return asdict(self)


def _median_ms(run, count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _runs_per_round(run_all, budget: float) -> int:
    """How many timed runs of each session per round fill `budget` seconds over ROUNDS rounds."""
    start = time.perf_counter()
    run_all()
    once = max(time.perf_counter() - start, 1e-6)
    return max(3, min(200, int(budget / once / ROUNDS)))


def time_variants(spec, variants: list[tuple[str, bytes]], raw_input: bool, big_batch: int = 64,
                  static_batch: int | None = None, budget: float = 2.0, threads: int | None = None,
                  provider: str = "cpu") -> SpeedReport:
    """Median batch-1 latency and big-batch throughput of each (label, onnx bytes), interleaved."""
    import torch

    from .export import example_input

    threads = threads or physical_cores()
    report = SpeedReport(threads, os.getloadavg())
    gen = torch.Generator().manual_seed(0)
    one = example_input(spec, static_batch or 1, raw_input, gen).numpy()
    big = example_input(spec, static_batch or big_batch, raw_input, gen).numpy()
    sessions = [open_session(data, provider, threads, label) for label, data in variants]
    for s in sessions:  # warm-up: first runs allocate and pick kernels
        for _ in range(3):
            s.run(one), s.run(big)
    # Runs per round so the whole measurement takes about `budget` seconds, half of it at
    # batch 1 and half at the big batch: counted together, VGG16's batch of 64 (60 times a
    # batch-1 run) left 6 batch-1 runs per median, and int8's ratio swung from 1.7x to 3.7x between runs.
    count_one = _runs_per_round(lambda: [s.run(one) for s in sessions], budget / 2)
    count_big = _runs_per_round(lambda: [s.run(big) for s in sessions], budget / 2)
    ones = [[] for _ in sessions]
    bigs = [[] for _ in sessions]
    for _ in range(ROUNDS):
        for i, s in enumerate(sessions):
            # Untimed runs first: the previous session's threads may still be spinning (ORT's
            # default), which would charge this session for its neighbour's idle wait.
            s.run(one), s.run(one)
            ones[i].append(_median_ms(lambda: s.run(one), count_one))
            s.run(big)
            bigs[i].append(_median_ms(lambda: s.run(big), count_big))
    for (label, data), s, b1, bb in zip(variants, sessions, ones, bigs):
        b1_ms, bb_ms = statistics.median(b1), statistics.median(bb)
        report.timings.append(VariantTiming(label, len(data), s.providers, b1_ms, big.shape[0], bb_ms,
                                            big.shape[0] / (bb_ms / 1000)))
    report.load_after = os.getloadavg()
    return report


def compare_speed(spec, fp32: bytes, converted: bytes, label: str, raw_input: bool,
                  static_batch: int | None = None, provider: str = "auto") -> SpeedReport:
    """The quick side-by-side measurement `zoo export --quantize` prints (on CUDA when verified there)."""
    return time_variants(spec, [("fp32", fp32), (label, converted)], raw_input, static_batch=static_batch,
                         budget=1.5, provider=provider)
