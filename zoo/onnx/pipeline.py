"""Export, verify, re-check: the steps the CLI and zoo.testing call.

    export_and_verify(spec, model, out_dir)    -> ExportReport  (file + test vectors + PASS/FAIL)
    verify_file(spec, weights, onnx_path)      -> VerifyReport  (against PyTorch; refreshes the vectors)
    verify_vectors(onnx_path)                  -> VerifyReport  (against the stored vectors, no weights)

A file that fails verification at export is not written (an earlier good file at
that path stays); `verify=False` writes it unverified, recorded as such.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import zoo

from .. import fileio
from ..errors import ExportError, UsageError, ZooError
from ..runs import Weights, in_memory
from ..spec import ModelSpec
from . import export as ex
from .defaults import RANDOM_BATCHES, REAL_IMAGES
from .metadata import set_props
from .runtime import load_model, open_session
from .verify import CHUNK, VECTOR_BATCH, VECTOR_REAL, Check, Tolerance, VerifyReport, against_vectors, facts_of, \
    identity_checks, provider_check, recheck
from .vectors import VectorSet, read_vectors, vectors_dir, write_vectors
from .vectors import check_target as check_vectors_target

EXPORT_ROOT = Path("exported")


@dataclass
class ExportReport:
    model: str
    path: str
    written: bool
    seconds: float  # the export itself (trace + convert + check)
    size_bytes: int
    opset: int
    facts: dict = field(default_factory=dict)  # the metadata_props written
    verification: VerifyReport | None = None
    vectors: str | None = None
    precision: str = "fp32"
    fp32_size_bytes: int | None = None  # int8/fp16: the size of the fp32 graph it came from
    speed: object | None = None  # int8/fp16: speed.SpeedReport, fp32 vs this file

    @property
    def ok(self) -> bool:
        return self.written and (self.verification is None or self.verification.ok)

    def as_dict(self) -> dict:
        return {"model": self.model, "path": self.path, "written": self.written, "ok": self.ok,
                "seconds": round(self.seconds, 2), "size_bytes": self.size_bytes, "opset": self.opset,
                "vectors": self.vectors, "metadata": self.facts,
                "verification": self.verification.as_dict() if self.verification else None,
                "precision": self.precision, "fp32_size_bytes": self.fp32_size_bytes,
                "speed": self.speed.as_dict() if self.speed else None}


@dataclass
class Inputs:
    """What both engines are fed: named batches, plus notes on where they came from."""

    batches: list[tuple[str, torch.Tensor, bool]] = field(default_factory=list)  # (name, x, real)
    notes: list[str] = field(default_factory=list)
    real: torch.Tensor | None = None
    real_name: str = ""


def default_path(name: str, precision: str = "fp32", raw_input: bool = False) -> Path:
    """Each variant its own file, so one never replaces another: exported/NAME.onnx,
    NAME.int8.onnx, NAME.fp16.onnx, and NAME.raw.onnx, NAME.raw.int8.onnx, ... for --raw-input."""
    parts = [name] + (["raw"] if raw_input else []) + ([precision] if precision != "fp32" else [])
    return EXPORT_ROOT / (".".join(parts) + ".onnx")


def variant_paths(name: str, folder: str | Path = EXPORT_ROOT) -> list[tuple[str, Path]]:
    """(label, path) of every default-named export of `name` present in `folder`."""
    found = []
    for raw in (False, True):
        for precision in ("fp32", "int8", "fp16"):
            path = Path(folder) / default_path(name, precision, raw).name
            if path.is_file():
                found.append((precision + (" raw" if raw else ""), path))
    return found


def build_inputs(spec: ModelSpec, raw: bool, static_batch: int | None, data_dir=None,
                 real_images: int = REAL_IMAGES, weights: Weights | None = None) -> Inputs:
    """Random batches (seeded) at 1, 2, 7, 64 (or the static batch), then real test images
    of the data `weights` were trained on (per their run.json), else of the spec's dataset."""
    gen = torch.Generator().manual_seed(0)
    inputs = Inputs()
    for b in ((static_batch,) if static_batch else RANDOM_BATCHES):
        inputs.batches.append((f"random, batch {b}", ex.example_input(spec, b, raw, gen), False))
    if static_batch:
        inputs.notes.append(f"static batch {static_batch}: only that batch size was tested")
    dataset = (weights.dataset if weights else None) or spec.dataset
    try:
        data = _test_images(spec, dataset, data_dir, weights)
    except ZooError as exc:
        text = str(exc)
        why = (f"dataset '{dataset}' is not on this machine and verification never downloads; "
               "put it under --data-dir or $ZOO_DATA_DIR") if " not found in " in text else text
        inputs.notes.append(f"no real test images ({why}): verified on random inputs only")
        return inputs
    if tuple(data.images.shape[1:]) != tuple(spec.input_shape):
        inputs.notes.append(f"'{data.variant}' images are {'x'.join(map(str, data.images.shape[1:]))} but "
                            f"{spec.name} takes {'x'.join(map(str, spec.input_shape))}: random inputs only")
        return inputs
    # Files are often sorted by class: a seeded shuffle gives every class.
    pick = torch.randperm(len(data), generator=gen)[:real_images]
    count = len(pick) - (len(pick) % static_batch if static_batch else 0)
    if count == 0:
        inputs.notes.append("too few test images for the static batch; verified on random inputs only")
        return inputs
    inputs.real = data.images[pick[:count]]
    inputs.real_name = f"{data.variant} test images, {count}"
    if data.variant != data.name:
        inputs.notes.append(f"real images from '{data.variant}': the full '{data.name}' is not on this machine")
    inputs.batches.append((inputs.real_name, ex.model_input(spec, inputs.real, raw), True))
    return inputs


def _test_images(spec: ModelSpec, dataset: str, data_dir, weights: Weights | None):
    """Test images of a registered dataset (never downloaded) or of a folder of images: for
    the folder the weights were trained on, the run's own test split (not its training images)."""
    from ..data.resolve import data_root, load_dataset
    from ..imagefolder import is_folder_dataset

    if not is_folder_dataset(dataset):
        return load_dataset(dataset, "test", data_dir=data_dir, offline=True)
    from ..imagefolder.test_split import load_test
    from ..imagefolder.trained import run_info_for

    run_info = run_info_for(spec, weights.path) if weights is not None else None
    return load_test(dataset, spec, run_info, data_root(data_dir))


def input_signature(proto) -> tuple[bool, int | None]:
    """(takes uint8 pixels, static batch size or None), read from the graph itself."""
    import onnx

    inputs = proto.graph.input
    if not inputs:
        return False, None
    tensor = inputs[0].type.tensor_type
    dims = tensor.shape.dim
    static = dims[0].dim_value if dims and dims[0].HasField("dim_value") else None
    return tensor.elem_type == onnx.TensorProto.UINT8, static


def against_torch(spec: ModelSpec, weights: Weights, module, proto, where: str, provider: str = "auto",
                  atol=None, rtol=None, data_dir=None) -> VerifyReport:
    """ONNX Runtime on `proto` vs PyTorch `module` (same inputs, same device)."""
    facts = facts_of(proto, where)
    raw, static = input_signature(proto)
    model_bytes = ex.serialize(proto)
    session = open_session(model_bytes, provider, where=where, exact_math=True)
    tol = Tolerance.default(session.on_cuda, atol, rtol)
    report = VerifyReport(spec.name, where, "pytorch", provider, session.providers, tol)
    report.checks.append(provider_check(session))
    checks, notes = identity_checks(spec, facts, session, weights.sha256, raw)
    report.checks += checks
    report.notes += notes
    if not checks[-1].ok:  # the input does not fit: comparing numbers is meaningless
        return report
    inputs = build_inputs(spec, raw, static, data_dir, weights=weights)
    report.notes += inputs.notes
    device = "cuda" if session.on_cuda else "cpu"
    module = module.to(device)
    chunk = static or CHUNK  # a static batch runs real images in batches of exactly that size
    try:
        for name, x, real in inputs.batches:
            report.checks.append(recheck(name, module, session, x, device, tol, argmax=real, chunk=chunk))
    finally:
        module.to("cpu")
    return report


def reference_sets(spec: ModelSpec, module, raw: bool, static_batch: int | None, data_dir=None,
                   weights: Weights | None = None) -> list[VectorSet]:
    """Test vectors: PyTorch's outputs on seeded random inputs and a few real images."""
    inputs = build_inputs(spec, raw, static_batch, data_dir, real_images=max(VECTOR_REAL, static_batch or 0),
                          weights=weights)
    x = ex.example_input(spec, static_batch or VECTOR_BATCH, raw, torch.Generator().manual_seed(1))
    sets = [(f"random, batch {x.shape[0]}", x)]
    if inputs.real is not None:
        real = inputs.real[:static_batch or VECTOR_REAL]
        sets.append((f"{len(real)} real {inputs.real_name.split(',')[0]}", ex.model_input(spec, real, raw)))
    module = module.cpu()
    with torch.inference_mode():
        return [VectorSet(i, what, batch.numpy(), module(batch).float().numpy())
                for i, (what, batch) in enumerate(sets)]


def _save_vectors(onnx_path: Path, spec: ModelSpec, weights: Weights, module, proto, made_by: str,
                  data_dir=None) -> str:
    folder = vectors_dir(onnx_path)
    raw, static = input_signature(proto)
    sets = reference_sets(spec, module, raw, static, data_dir, weights)
    info = {"model": spec.name, "weights_sha256": weights.sha256, "input_dtype": "uint8" if raw else "float32",
            "reference": f"PyTorch {torch.__version__} on cpu", "made_by": made_by, "zoo_version": zoo.__version__}
    write_vectors(folder, sets, info, proto.graph.input[0].name, proto.graph.output[0].name)
    return str(folder)


def check_target(path: Path, force: bool, weights: Weights | None = None) -> None:
    """Never overwrite a file zoo did not write, unless told to; never write into the
    folder of images the weights were trained on (the test vectors' folder would be one
    more class folder, without images, and every later run on it would fail)."""
    data = Path(weights.dataset) if weights is not None and weights.dataset else None
    if data is not None and data.is_absolute() and data.is_dir():
        target = path.parent.resolve() / path.name
        if target.is_relative_to(data.resolve()):
            raise ExportError(f"{path} is inside {data}, the folder of images these weights were trained on; "
                              "zoo writes nothing there: choose an --out outside it")
    check_vectors_target(vectors_dir(path), range(2))  # links, the user's files: before anything is written
    if path.is_dir():
        raise ExportError(f"{path} is a folder: pass a file name ending with .onnx")
    if not path.exists() or force:
        return
    try:
        facts = facts_of(load_model(path, check=False), str(path))
    except ZooError:
        facts = None
    if facts is None:
        raise ExportError(f"{path} exists and was not written by `zoo export`: pass --force to overwrite it "
                          "or choose another --out")


def export_and_verify(spec: ModelSpec, model=None, out_dir: str | Path | None = None, *,
                      weights: Weights | None = None, out: str | Path | None = None,
                      options: ex.ExportOptions | None = None, verify: bool = True, provider: str = "auto",
                      atol: float | None = None, rtol: float | None = None, data_dir=None,
                      force: bool = False) -> ExportReport:
    """Export `model` (or `weights`) to out_dir/NAME.onnx (NAME.raw.onnx for raw input; or `out`),
    verify it, write its test vectors.

    Returns the report; `report.ok` is False when verification failed (the file is then
    not written). Raises ExportError when the model cannot be exported at all."""
    options = options or ex.ExportOptions()
    if weights is None:
        if model is None:
            raise ExportError("export_and_verify needs a model or weights")
        weights = in_memory(model)
    path = Path(out) if out is not None else \
        Path(out_dir or EXPORT_ROOT) / default_path(spec.name, raw_input=options.raw_input).name
    check_target(path, force, weights)
    start = time.perf_counter()
    proto, module = ex.build(spec, weights, options)
    seconds = time.perf_counter() - start
    facts = facts_of(proto)
    report = ExportReport(spec.name, str(path), False, seconds, 0, options.opset)
    if verify:
        report.verification = against_torch(spec, weights, module, proto, f"the export of {spec.name}",
                                            provider, atol, rtol, data_dir)
        facts.verification = report.verification.record()
    if write_verified(report, path, proto, facts) is not None:
        report.vectors = _save_vectors(path, spec, weights, module, proto, "zoo export", data_dir)
    return report


def write_verified(report: ExportReport, path: Path, proto, facts) -> bytes | None:
    """Record the facts (with the verification, when there was one) in the file's metadata
    and write it atomically, unless the verification failed: the bytes written, or None."""
    report.facts = facts.to_props()
    set_props(proto, report.facts)
    if report.verification is not None and not report.verification.ok:
        return None
    data = ex.serialize(proto)
    fileio.write_bytes(path, data)
    report.written, report.size_bytes = True, len(data)
    return data


def verify_file(spec: ModelSpec, weights: Weights, onnx_path: str | Path, provider: str = "auto",
                atol=None, rtol=None, data_dir=None, save_vectors: bool = True, accuracy: dict | None = None) -> VerifyReport:
    """Check an existing .onnx file against the PyTorch model; on PASS, refresh its test vectors.
    An int8/fp16 file (its metadata says so) is checked by accuracy and top-1 agreement on the
    test split instead; `accuracy` overrides its settings (dataset, max_drop, min_agreement, verify_samples)."""
    path = Path(onnx_path)
    proto = load_model(path)
    facts = facts_of(proto, str(path))
    if facts is not None and facts.quantized:
        from .quantize import QuantizeOptions
        from .variants import verify_quantized

        q = QuantizeOptions(facts.precision, **(accuracy or {}))
        return verify_quantized(spec, weights, path, proto, q, provider, data_dir)
    module = ex.inference_module(spec, weights.model, input_signature(proto)[0])
    report = against_torch(spec, weights, module, proto, str(path), provider, atol, rtol, data_dir)
    if report.ok and save_vectors:
        report.vectors = _save_vectors(path, spec, weights, module, proto, "zoo verify", data_dir)
    return report


def verify_vectors(onnx_path: str | Path, name: str | None = None, provider: str = "auto",
                   atol=None, rtol=None) -> VerifyReport:
    """Check an .onnx file against the reference vectors stored next to it."""
    path = Path(onnx_path)
    proto = load_model(path)  # external data already read in, from the model's folder only
    facts = facts_of(proto, str(path))
    if facts is not None and facts.quantized:
        raise UsageError(f"{path} is an {facts.precision} file: it is checked by test accuracy against the "
                         f"PyTorch weights, not by stored vectors: `zoo verify {facts.model} --onnx {path}`")
    sets, info = read_vectors(vectors_dir(path))
    session = open_session(ex.serialize(proto), provider, where=str(path), exact_math=True)
    tol = Tolerance.default(session.on_cuda, atol, rtol)
    model = name or (facts.model if facts else None) or info.get("model") or path.stem
    report = against_vectors(model, facts, session, sets, info, tol, str(path))
    if name is not None and facts is not None and facts.model != name:
        report.checks.insert(0, Check("model name", False, f"the file is for model '{facts.model}', not '{name}'"))
    report.vectors = str(vectors_dir(path))
    return report
