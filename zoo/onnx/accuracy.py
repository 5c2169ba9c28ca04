"""Is an int8/fp16 file as good a classifier as the PyTorch model? Measured on the test split.

Element-wise closeness does not apply to a quantized model (its logits move by
design), so both engines classify the same test images and we compare what
matters: the accuracy of each, the drop in points, how often they pick the same
class (top-1 agreement) and, for information, the largest logit difference.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .export import model_input
from .verify import Check, run_both

CHUNK = 256


@dataclass
class Accuracy:
    dataset: str  # the variant actually read, e.g. "mnist-sample"
    samples: int
    pytorch: float  # 0..1
    onnx: float
    agreement: float  # share of images where both pick the same class
    max_logit_diff: float

    @property
    def drop(self) -> float:
        """Accuracy points lost (negative: the file is better)."""
        return (self.pytorch - self.onnx) * 100

    def record(self, max_drop: float, min_agreement: float, providers: list[str]) -> dict:
        """What zoo.accuracy stores."""
        return asdict(self) | {"split": "test", "drop_points": round(self.drop, 4), "max_drop": max_drop,
                               "min_agreement": min_agreement, "providers": providers}


def test_images(spec, dataset: str, data_dir=None, samples: int | None = None, seed: int = 0,
                run_info: dict | None = None):
    """(uint8 images, int64 labels, variant) of the test split; a seeded pick of `samples` when capped.
    `run_info`: the run.json of the weights, whose hold-out is the test split of its image folder."""
    import torch

    from .quantize import load_split

    data = load_split(dataset, "test", data_dir, "verification", spec, run_info)
    data.check_fits(spec.name, spec.input_shape)
    images, labels = data.images, data.labels
    if samples is not None and samples < len(labels):
        pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:samples]
        images, labels = images[pick], labels[pick]
    return images, labels, data.variant


def measure(spec, module, session, images, labels, variant: str, raw: bool, chunk: int = CHUNK) -> Accuracy:
    """PyTorch `module` and ONNX Runtime `session` over the same test images, on the CPU."""
    refs, gots = [], []
    for start in range(0, len(labels), chunk):
        ref, got = run_both(module, session, model_input(spec, images[start:start + chunk], raw), "cpu", chunk)
        refs.append(ref)
        gots.append(got)
    ref, got, y = np.concatenate(refs), np.concatenate(gots).astype(np.float32), labels.numpy()
    return Accuracy(variant, len(y), float((ref.argmax(1) == y).mean()), float((got.argmax(1) == y).mean()),
                    float((ref.argmax(1) == got.argmax(1)).mean()), float(np.abs(got - ref).max()))


def checks(acc: Accuracy, max_drop: float, min_agreement: float) -> list[Check]:
    """Two pass/fail lines: the accuracy drop and the top-1 agreement."""
    agree = round(acc.agreement * acc.samples)
    finite = bool(np.isfinite(acc.max_logit_diff))
    return [
        Check(f"accuracy on {acc.samples} {acc.dataset} test images", finite and acc.drop <= max_drop + 1e-9,
              f"PyTorch {acc.pytorch:.2%}, ONNX {acc.onnx:.2%}: drop {acc.drop:.2f} points (max {max_drop:g})"
              + ("" if finite else "; non-finite logits"), max_abs=acc.max_logit_diff),
        Check("top-1 agreement", acc.agreement >= min_agreement,
              f"{acc.agreement:.2%} of images get the same class (min {min_agreement:.0%})",
              argmax=(agree, acc.samples)),
    ]
