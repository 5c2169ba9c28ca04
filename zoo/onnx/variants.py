"""int8 and fp16 exports: build the fp32 graph, convert it, verify it by accuracy, write it.

    export_quantized(spec, weights, QuantizeOptions("int8"))   -> ExportReport (exported/NAME.int8.onnx)
    verify_quantized(spec, weights, path)                      -> VerifyReport (accuracy + agreement)

A file whose accuracy drops more than `max_drop` points (or agrees with PyTorch on
fewer than `min_agreement` of the test images) is not written: nothing is left
behind and an earlier file at that path stays.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import DataError
from ..imagefolder.trained import run_info_for
from ..runs import Weights
from ..spec import ModelSpec
from . import export as ex
from .export import model_input
from .accuracy import Accuracy, checks, measure, test_images
from .metadata import ExportFacts, set_props
from .quantize import QuantizeOptions, calibration_images, quantize_int8, scheme_of, to_fp16
from .runtime import check_model, open_session
from .speed import compare_speed
from .verify import VerifyReport, facts_of, identity_checks, provider_check


def dataset_for(spec: ModelSpec, weights: Weights, chosen: str | None) -> str:
    """--dataset, else the data the weights were trained on, else the model's (with its fallbacks)."""
    return weights.test_dataset(spec, chosen)


def calibration_input(spec: ModelSpec, weights: Weights, q: QuantizeOptions, raw: bool, data_dir=None,
                      run_info: dict | None = None):
    """(model inputs, variant, count) for int8 calibration; (None, None, 0) for fp16.
    `run_info`: the run.json beside the weights (run_info_for), for its hold-out."""
    if q.precision != "int8":
        return None, None, 0
    images, data = calibration_images(spec, dataset_for(spec, weights, q.dataset), q.calibration, q.seed, data_dir,
                                      run_info)
    return model_input(spec, images, raw).numpy(), data.variant, len(images)


def convert(spec: ModelSpec, weights: Weights, proto, q: QuantizeOptions, calibration):
    """(int8/fp16 ModelProto with zoo metadata, facts): from the fp32 proto made by export.build."""
    inputs, variant, count = calibration
    converted = quantize_int8(proto, inputs, q) if q.precision == "int8" else to_fp16(proto)
    facts = facts_of(proto)
    facts.precision = q.precision
    facts.quantization = scheme_of(q, dataset_for(spec, weights, q.dataset), variant, count)
    set_props(converted, facts.to_props())
    check_model(converted, f"the {q.precision} export of {spec.name}",
                f"the {q.precision} converter made an invalid model; try the other --quantize value")
    return converted, facts


def accuracy_report(spec: ModelSpec, weights: Weights, module, proto, facts: ExportFacts | None, where: str,
                    q: QuantizeOptions, provider: str = "auto", data_dir=None,
                    run_info: dict | None = None) -> tuple[VerifyReport, Accuracy | None]:
    """PyTorch vs the file on the test split: identity checks, then accuracy and agreement.
    `run_info`: the run.json beside the weights (run_info_for), for its hold-out."""
    from .pipeline import input_signature

    raw, static = input_signature(proto)
    session = open_session(ex.serialize(proto), provider, where=where)
    report = VerifyReport(spec.name, where, "accuracy", provider, session.providers)
    report.checks.append(provider_check(session))
    found, notes = identity_checks(spec, facts, session, weights.sha256, raw)
    report.checks += found
    report.notes += notes
    if not found[-1].ok:
        return report, None
    dataset = dataset_for(spec, weights, q.dataset)
    images, labels, variant = test_images(spec, dataset, data_dir, q.verify_samples, run_info=run_info)
    if static:  # a static batch runs whole batches only
        keep = len(labels) - len(labels) % static
        if keep == 0:
            raise DataError(f"fewer test images than the static batch {static}: cannot verify")
        images, labels = images[:keep], labels[:keep]
    acc = measure(spec, module, session, images, labels, variant, raw, chunk=static or 256)
    report.checks += checks(acc, q.max_drop, q.min_agreement)
    if variant != dataset:
        report.notes.append(f"measured on '{variant}': the full '{dataset}' is not on this machine")
    return report, acc


def export_quantized(spec: ModelSpec, weights: Weights, q: QuantizeOptions, *, out: str | Path,
                     options: ex.ExportOptions | None = None, verify: bool = True, provider: str = "auto",
                     data_dir=None, force: bool = False):
    """Export, convert, verify by accuracy, write `out`; an ExportReport with `.speed` set."""
    from .pipeline import ExportReport, check_target, write_verified

    options = options or ex.ExportOptions()
    path = Path(out)
    check_target(path, force, weights)
    run_info = run_info_for(spec, weights.path)  # read once: calibration and verification both need it
    calibration = calibration_input(spec, weights, q, options.raw_input, data_dir, run_info)  # missing data fails fast
    start = time.perf_counter()
    fp32, module = ex.build(spec, weights, options)
    converted, facts = convert(spec, weights, fp32, q, calibration)
    report = ExportReport(spec.name, str(path), False, time.perf_counter() - start, 0, options.opset)
    report.precision = q.precision
    if verify:
        report.verification, acc = accuracy_report(spec, weights, module, converted, facts,
                                                   f"the {q.precision} export of {spec.name}", q, provider, data_dir,
                                                   run_info)
        facts.verification = report.verification.record() | {"kind": "accuracy"}
        if acc is not None:
            facts.accuracy = acc.record(q.max_drop, q.min_agreement, report.verification.providers)
    data = write_verified(report, path, converted, facts)
    if data is None:
        return report
    fp32_bytes = ex.serialize(fp32)
    report.fp32_size_bytes = len(fp32_bytes)
    report.speed = compare_speed(spec, fp32_bytes, data, q.precision, options.raw_input, options.static_batch,
                                 provider)
    return report


def verify_quantized(spec: ModelSpec, weights: Weights, path: str | Path, proto, q: QuantizeOptions,
                     provider: str = "auto", data_dir=None) -> VerifyReport:
    """`zoo verify` of an int8/fp16 file: accuracy and agreement against PyTorch on the test split."""
    from .pipeline import input_signature

    facts = facts_of(proto, str(path))
    module = ex.inference_module(spec, weights.model, input_signature(proto)[0])
    report, acc = accuracy_report(spec, weights, module, proto, facts, str(path), q, provider, data_dir,
                                  run_info_for(spec, weights.path))
    recorded = (facts.accuracy if facts else {}) or {}
    if acc is not None and isinstance(recorded.get("onnx"), (int, float)) and recorded.get("samples") == acc.samples \
            and recorded.get("dataset") == acc.dataset and abs(recorded["onnx"] - acc.onnx) > 0.005:
        report.notes.append(f"the file recorded {recorded['onnx']:.2%} at export on the same images, "
                            f"now {acc.onnx:.2%}: another runtime or CPU, or the file changed")
    return report

