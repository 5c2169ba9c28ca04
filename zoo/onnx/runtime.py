"""Reading ONNX files and opening ONNX Runtime sessions deliberately.

- A file is parsed and fully checked (`onnx.checker`, full_check) before use, so a
  truncated or tampered file is one clear ExportError, never a protobuf traceback.
- CUDAExecutionProvider is requested only when a CUDA device exists: onnxruntime-gpu
  otherwise prints red errors and silently falls back to the CPU. Callers always
  read back the providers the session really uses (`Session.providers`).
- Threads: intra-op = physical cores, inter-op 1, sequential execution, all graph
  optimisations (ORT_ENABLE_ALL).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExportError, UsageError, describe
from .quiet import ORT_LOG_SEVERITY, captured, quiet_onnxruntime

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
PROVIDER_CHOICES = ("auto", "cuda", "cpu")


def cuda_device_present() -> bool:
    """A CUDA device is visible (not merely a CUDA build of torch or onnxruntime)."""
    try:
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.device_count() > 0)
    except ImportError:  # no torch: the driver lists its GPUs here
        gpus = Path("/proc/driver/nvidia/gpus")
        return gpus.is_dir() and any(gpus.iterdir())


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads do not speed up GEMMs)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores: set[tuple[str, str]] = set()
    try:
        physical = core = ""
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "physical id":
                physical = value
            elif key == "core id":
                core = value
                cores.add((physical, core))
    except OSError:
        pass
    return max(1, min(usable, len(cores) if cores else usable))


def providers_for(choice: str, exact_math: bool = False) -> list:
    """The providers to request for --provider auto|cuda|cpu. `exact_math` turns TF32 off
    in the CUDA provider (it is on by default on Ampere and newer), for verification."""
    if choice not in PROVIDER_CHOICES:
        raise UsageError(f"unknown provider {choice!r}: use one of {', '.join(PROVIDER_CHOICES)}")
    wants_cuda = choice == "cuda" or (choice == "auto" and cuda_device_present())
    if wants_cuda and cuda_device_present():
        import onnxruntime

        if CUDA in onnxruntime.get_available_providers():
            return [(CUDA, {"use_tf32": "0"}) if exact_math else CUDA, CPU]
    return [CPU]


@dataclass
class Session:
    """An onnxruntime session and what it really runs on."""

    ort: object  # onnxruntime.InferenceSession
    choice: str  # what the user asked for: auto, cuda or cpu
    requested: list
    providers: list[str]  # session.get_providers(): the truth

    @property
    def on_cuda(self) -> bool:
        return CUDA in self.providers

    @property
    def cuda_missing(self) -> bool:
        """CUDA was asked for explicitly and the session does not use it."""
        return self.choice == "cuda" and not self.on_cuda

    @property
    def input_name(self) -> str:
        return self.ort.get_inputs()[0].name

    def run(self, array):
        return self.ort.run(None, {self.input_name: array})[0]


def session_options(threads: int | None = None):
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.log_severity_level = ORT_LOG_SEVERITY
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    return opts


def open_session(model: bytes | str | Path, choice: str = "auto", threads: int | None = None,
                 where: str = "the model", exact_math: bool = False) -> Session:
    """An InferenceSession on the chosen providers; ExportError if ONNX Runtime refuses the model."""
    import onnxruntime

    requested = providers_for(choice, exact_math)
    quiet_onnxruntime()
    source = model if isinstance(model, bytes) else str(model)
    try:
        with captured():
            sess = onnxruntime.InferenceSession(source, sess_options=session_options(threads), providers=requested)
    except Exception as exc:  # onnxruntime raises its own pybind classes (Fail, InvalidGraph, ...)
        raise ExportError(f"ONNX Runtime cannot load {where}: {describe(exc)}") from exc
    names = [p[0] if isinstance(p, tuple) else p for p in requested]
    return Session(sess, choice, names, list(sess.get_providers()))


def load_model(path: str | Path, check: bool = True):
    """The ModelProto of an .onnx file, parsed and checked, or one clear ExportError.
    The file is read under zoo's rules (a regular file, at most 2 GB) and any external
    data is read into the model from its own folder only (zoo.onnx.external), so the
    model handed to ONNX Runtime (`serialize`) is self-contained."""
    import onnx
    from google.protobuf.message import DecodeError

    from .. import safeio
    from .external import inline_external_data

    path = Path(path)
    data = safeio.read_bytes(path, safeio.ONNX_FILE, ExportError,
                             missing="export one with `zoo export NAME` or check the path")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, OSError, RuntimeError) as exc:
        raise ExportError(f"{path} is not a valid ONNX file (truncated or corrupt: {describe(exc)}); "
                          "export it again with `zoo export`") from exc
    inline_external_data(model, path)
    if check:
        check_model(model, str(path))
    return model


FILE_HINT = "the file is corrupt or was edited; export it again with `zoo export`"


def check_model(model, where: str, hint: str = FILE_HINT) -> None:
    """onnx.checker with full_check (type and shape inference included)."""
    import onnx

    if not model.graph.node:
        raise ExportError(f"{where} holds no graph (truncated or corrupt); export it again with `zoo export`")
    try:
        with captured():
            onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError and friends
        raise ExportError(f"{where} fails the ONNX checker ({describe(exc)}): {hint}") from exc
