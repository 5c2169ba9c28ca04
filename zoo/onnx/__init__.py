"""zoo.onnx: verified ONNX export.

    from zoo.onnx import export_and_verify, verify_file, verify_vectors
    report = export_and_verify(spec, model, out_dir)   # out_dir/NAME.onnx + out_dir/NAME/test_data_set_*
    assert report.ok, report.verification.failures

Submodules: export (torch -> ONNX), verify (comparisons, reports), pipeline (the
steps above), vectors (ONNX model zoo test data), runtime (sessions, providers),
metadata (what a file records), bench, predict (ONNX Runtime on image files).
Which weights are exported, and their sha256, is zoo.runs.resolve_weights.
Attributes load lazily: importing zoo.onnx does not import torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "export_and_verify": "pipeline", "verify_file": "pipeline", "verify_vectors": "pipeline",
    "ExportReport": "pipeline", "default_path": "pipeline",
    "ExportOptions": "export", "DEFAULT_OPSET": "export",
    "VerifyReport": "verify", "Check": "verify", "Tolerance": "verify",
    "ExportFacts": "metadata",
    "load_model": "runtime", "open_session": "runtime",
    "read_facts": "predict", "predict_images": "predict", "benchmark": "bench",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zoo.onnx' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
