"""Conformance checks a plugin's own test suite calls:

    from zoo.testing import check_plugin
    def test_my_model():
        check_plugin("my-model")

Each check raises AssertionError with a sentence saying what to fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PluginCheck:
    name: str
    passed: list[str] = field(default_factory=list)


def _fail(name: str, message: str):
    raise AssertionError(f"{name}: {message}")


def check_plugin(name: str, batch_size: int = 4, seed: int = 0, export: bool = True) -> PluginCheck:
    """Spec valid and registered, shapes agree, a batch goes forward, one training step works,
    and (with `export`) the model exports to ONNX and ONNX Runtime gives PyTorch's outputs."""
    import torch

    import zoo
    from zoo.shapes import check_spec

    result = PluginCheck(name)
    spec = zoo.get_spec(name)  # raises for unknown, broken or duplicated names
    result.passed.append("spec registered and valid")

    report = check_spec(spec)
    if not report.ok:
        _fail(name, report.first_problem())
    result.passed.append(f"shapes agree for {len(report.layers)} layers")

    torch.manual_seed(seed)
    model = spec.build()
    x = torch.randn(batch_size, *spec.input_shape)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    if tuple(logits.shape) != (batch_size, spec.num_classes):
        _fail(name, f"a batch of {batch_size} gives output {tuple(logits.shape)}, expected ({batch_size}, {spec.num_classes})")
    if not torch.isfinite(logits).all():
        _fail(name, "the forward pass produced NaN or infinite values")
    result.passed.append(f"forward pass on a batch of {batch_size}")

    _check_training_step(name, model, x, spec.num_classes)
    result.passed.append("one training step updates the weights")
    if export:
        result.passed.append(_check_export(name, spec, model))
    return result


def _check_export(name: str, spec, model) -> str:
    import tempfile

    from zoo.onnx import export_and_verify
    from zoo.onnx.verify import describe_failure

    with tempfile.TemporaryDirectory(prefix="zoo-check-") as tmp:
        report = export_and_verify(spec, model.eval(), tmp)
        if not report.ok:
            _fail(name, f"the ONNX export differs from PyTorch: {describe_failure(report.verification)}")
    return "exports to ONNX and ONNX Runtime matches PyTorch"


def _check_training_step(name: str, model, x, num_classes: int) -> None:
    import torch

    model.train()
    y = torch.arange(x.shape[0]) % num_classes
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    if not torch.isfinite(loss):
        _fail(name, f"training loss on a synthetic batch is {loss.item()}")
    loss.backward()
    optimizer.step()
    if not any(p.requires_grad for p in model.parameters()):
        _fail(name, "the model has no trainable parameters")
    if all(torch.equal(b, p) for b, p in zip(before, model.parameters())):
        _fail(name, "one SGD step changed no weight: are gradients flowing?")
