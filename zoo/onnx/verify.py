"""Does an ONNX file compute what the PyTorch model computes? A PASS or a FAIL, never "passed with a warning".

Two ways to check:
- `against_torch`: ONNX Runtime and PyTorch on the same inputs: random inputs at
  batch sizes 1, 2, 7 and 64 (which proves the dynamic batch axis) and real
  test-set images (a bundled sample when the full set is absent; random inputs
  only, said in the notes, when the dataset is not on the machine). Also checks
  the file is for this model, made from these weights, with the expected input.
- `against_vectors`: ONNX Runtime against the reference vectors stored next to the
  file (PyTorch's outputs, see vectors.py): no PyTorch weights needed.

An element passes when |onnx - torch| <= atol + rtol * |torch| (numpy.allclose).
Defaults: float32 on CPU atol 1e-5, rtol 1e-3; on CUDA atol 1e-4, rtol 1e-3 with
TF32 off on both sides (PyTorch and the CUDA provider), since TF32 rounds inputs
to 10-bit mantissas.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field

import numpy as np

from .defaults import CPU_TOLERANCE, CUDA_TOLERANCE, check_tolerance
from .metadata import ExportFacts, check_against_graph, facts_from_props, props_of
from ..errors import describe
from .runtime import Session, cuda_device_present
from .vectors import VectorSet

VECTOR_BATCH = 7  # the odd batch size goes into test_data_set_0
VECTOR_REAL = 16  # real images kept in test_data_set_1
CHUNK = 64


@dataclass
class Tolerance:
    atol: float
    rtol: float
    basis: str  # why these values

    @classmethod
    def default(cls, on_cuda: bool, atol: float | None = None, rtol: float | None = None) -> "Tolerance":
        check_tolerance(atol, rtol)
        base_atol, base_rtol = CUDA_TOLERANCE if on_cuda else CPU_TOLERANCE
        basis = "float32 on CUDA, TF32 off" if on_cuda else "float32 on CPU"
        if atol is not None or rtol is not None:
            basis += ", set by the user"
        return cls(base_atol if atol is None else atol, base_rtol if rtol is None else rtol, basis)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    max_abs: float | None = None
    max_rel: float | None = None
    argmax: tuple[int, int] | None = None  # (agreeing, total)


@dataclass
class VerifyReport:
    model: str
    onnx: str
    mode: str  # "pytorch" or "vectors"
    provider_choice: str = "auto"
    providers: list[str] = field(default_factory=list)
    tolerance: Tolerance | None = None
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    vectors: str | None = None  # folder written

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "FAIL"

    def _worst(self, attr: str) -> float | None:
        values = [getattr(c, attr) for c in self.checks if getattr(c, attr) is not None]
        return max(values) if values else None

    @property
    def max_abs(self) -> float | None:
        return self._worst("max_abs")

    @property
    def max_rel(self) -> float | None:
        return self._worst("max_rel")

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def record(self) -> dict:
        """The summary stored in the file's metadata (zoo.verification)."""
        tol = self.tolerance
        return {"verdict": self.verdict, "max_abs_err": self.max_abs, "max_rel_err": self.max_rel,
                "atol": tol.atol if tol else None, "rtol": tol.rtol if tol else None,
                "providers": self.providers, "checks": [c.name for c in self.checks], "notes": self.notes}

    def as_dict(self) -> dict:
        return asdict(self) | {"verdict": self.verdict, "ok": self.ok, "max_abs": self.max_abs,
                               "max_rel": self.max_rel}


def compare(name: str, ref: np.ndarray, got: np.ndarray, tol: Tolerance, argmax: bool = False) -> Check:
    """Element-wise allclose of ONNX Runtime's output `got` against PyTorch's `ref`."""
    if ref.shape != got.shape:
        return Check(name, False, f"output shape {got.shape} from ONNX Runtime, {ref.shape} from PyTorch")
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    if not (np.isfinite(ref64).all() and np.isfinite(got64).all()):
        same = np.array_equal(np.isnan(ref64), np.isnan(got64)) and np.array_equal(ref64[~np.isfinite(ref64)],
                                                                                    got64[~np.isfinite(got64)])
        if not same:
            return Check(name, False, "NaN or infinite values differ between ONNX Runtime and PyTorch")
        finite = np.isfinite(ref64)
        ref64, got64 = ref64[finite], got64[finite]
    diff = np.abs(got64 - ref64)
    bound = tol.atol + tol.rtol * np.abs(ref64)
    big = np.abs(ref64) > tol.atol  # relative error is meaningless next to zero
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float((diff[big] / np.abs(ref64[big])).max()) if big.any() else 0.0
    bad = int((diff > bound).sum())
    check = Check(name, bad == 0, "" if bad == 0 else f"{bad} of {diff.size} values beyond tolerance",
                  max_abs, max_rel)
    if argmax and ref.ndim == 2:
        check.argmax = (int((ref.argmax(1) == got.argmax(1)).sum()), ref.shape[0])
    return check


def facts_of(model_proto, where: str = "the ONNX file") -> ExportFacts | None:
    """The file's zoo metadata, each key checked and the whole checked against the graph."""
    facts = facts_from_props(props_of(model_proto), where)
    if facts is not None:
        check_against_graph(facts, model_proto, where)
    return facts


def identity_checks(spec, facts: ExportFacts | None, session: Session, weights_sha: str | None,
                    raw_input: bool) -> tuple[list[Check], list[str]]:
    """Is the file for this model, from these weights, with the input the model takes?"""
    checks, notes = [], []
    if facts is None:
        notes.append("the file has no zoo metadata (not made by `zoo export`): model and weights unchecked")
    else:
        checks.append(Check("model name", facts.model == spec.name,
                            f"the file is for model '{facts.model}', not '{spec.name}'"
                            if facts.model != spec.name else facts.model))
        if weights_sha is not None:
            same = facts.weights_sha256 == weights_sha
            checks.append(Check("weights", same, f"sha256 {weights_sha[:12]}" if same else
                                f"the file was made from other weights (sha256 {str(facts.weights_sha256)[:12]}, "
                                f"these are {weights_sha[:12]}): export again"))
        checks.append(_preprocessing_check(spec, facts))
    inputs = session.ort.get_inputs()
    want = f"tensor({'uint8' if raw_input else 'float'})"
    shape = list(inputs[0].shape) if inputs else []
    ok = len(inputs) == 1 and len(shape) == 4 and tuple(shape[1:]) == tuple(spec.input_shape) \
        and inputs[0].type == want
    got = f"{inputs[0].type} {shape}" if inputs else "no input"
    checks.append(Check("input", ok, got if ok else f"the file takes {got}, but {spec.name} needs "
                        f"{want} [batch, {', '.join(map(str, spec.input_shape))}]"))
    return checks, notes


def _preprocessing_check(spec, facts: ExportFacts) -> Check:
    """The mean and std a client reads from the file are the ones the weights were trained
    with: PyTorch's side of the comparison is fed normalised pixels, so a changed std
    (even one that turns every output into NaN) would otherwise go unnoticed."""
    prep = facts.preprocessing or {}
    want = {"mean": list(spec.eval_transforms.mean), "std": list(spec.eval_transforms.std)}
    got = {k: prep.get(k) for k in want}
    same = all(isinstance(got[k], list) and len(got[k]) == len(want[k])
               and np.allclose(got[k], want[k], rtol=1e-6, atol=0) for k in want)
    detail = f"mean {want['mean']}, std {want['std']}"
    return Check("preprocessing", same, detail if same else
                 f"the file's preprocessing is mean {got['mean']}, std {got['std']}, but {spec.name} was trained "
                 f"with {detail}: export again")


def provider_check(session: Session) -> Check:
    used = ", ".join(session.providers)
    if session.cuda_missing:
        why = "" if cuda_device_present() else " (no CUDA device on this machine)"
        return Check("providers", False, f"CUDA was requested but the session used {used}{why}")
    return Check("providers", True, used)


@contextlib.contextmanager
def exact_cuda_math():
    """TF32 off for PyTorch on CUDA (restored afterwards)."""
    import torch

    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def run_both(module, session: Session, x, device: str, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """(PyTorch output, ONNX Runtime output) for input batch x, in chunks."""
    import torch

    refs, gots = [], []
    for start in range(0, x.shape[0], chunk):
        part = x[start:start + chunk]
        with torch.inference_mode(), exact_cuda_math():
            refs.append(module(part.to(device)).float().cpu().numpy())
        gots.append(np.asarray(session.run(part.numpy())))
    return np.concatenate(refs), np.concatenate(gots)


def recheck(name: str, module, session: Session, x, device: str, tol: Tolerance, argmax: bool = False,
            chunk: int = CHUNK):
    """One comparison; a runtime error in either engine is a failed check, not a traceback."""
    try:
        ref, got = run_both(module, session, x, device, chunk)
    except Exception as exc:  # ORT's InvalidArgument, a shape error in forward(), ...
        return Check(name, False, describe(exc))
    return compare(name, ref, got, tol, argmax)


def against_vectors(spec_name: str, facts: ExportFacts | None, session: Session, sets: list[VectorSet],
                    info: dict, tol: Tolerance, where: str) -> VerifyReport:
    report = VerifyReport(spec_name, where, "vectors", session.choice, session.providers, tol)
    report.checks.append(provider_check(session))
    if facts is not None and info.get("model") not in (None, facts.model):
        report.checks.append(Check("vectors", False, f"the stored vectors are for model '{info['model']}', "
                                   f"this file is '{facts.model}'"))
    elif facts is not None and info.get("weights_sha256") not in (None, facts.weights_sha256):
        report.checks.append(Check("vectors", False, "the stored vectors were written for other weights "
                                   "than this file's: re-create them with `zoo verify NAME`"))
    for vs in sets:
        name = f"test_data_set_{vs.index} ({vs.description})"
        try:
            got = np.asarray(session.run(vs.inputs))
        except Exception as exc:
            report.checks.append(Check(name, False, describe(exc)))
            continue
        report.checks.append(compare(name, np.asarray(vs.outputs), got, tol, argmax=True))
    return report


def describe_failure(report: VerifyReport) -> str:
    first = report.failures[0] if report.failures else None
    return f"{first.name}: {first.detail}" if first else "no checks ran"
