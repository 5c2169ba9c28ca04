"""Defaults of the ONNX commands, importable without torch (the CLI shows them in --help)."""
from __future__ import annotations

# Opset 18 is what the exporter's onnxscript functions are written in (no version
# conversion needed) and what every current runtime reads (ONNX Runtime >= 1.14).
DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 14, 23

# numpy.allclose-style tolerances (atol, rtol) for float32 outputs.
CPU_TOLERANCE = (1e-5, 1e-3)
CUDA_TOLERANCE = (1e-4, 1e-3)  # with TF32 off on both sides


def check_tolerance(atol: float | None, rtol: float | None) -> None:
    """--atol/--rtol: finite and >= 0. A NaN compares false, so `error > atol` never
    fails and any file would pass; an infinite one passes anything as well."""
    import math

    from ..errors import UsageError

    for flag, value in (("--atol", atol), ("--rtol", rtol)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UsageError(f"{flag} must be a finite number >= 0, got {value}")


RANDOM_BATCHES = (1, 2, 7, 64)  # 1 and an odd 7 prove the dynamic batch axis
REAL_IMAGES = 256

BENCH_BIG_BATCH = 256

# --quantize int8/fp16 and `zoo verify` of such a file
DEFAULT_CALIBRATION = 512  # training images for int8 activation ranges
DEFAULT_MAX_DROP = 1.0  # accuracy points the quantized file may lose
DEFAULT_MIN_AGREEMENT = 0.95  # top-1 agreement with PyTorch, 0..1
