"""Which weights an export is made from, and their fingerprint.

The fingerprint goes into the ONNX metadata so `zoo verify` can tell a file made
from other weights. It is the sha256 of the weights file when there is one (what
`sha256sum runs/NAME/model.safetensors` prints), else of the tensors themselves
(`tensor_sha256`): in-memory models and `--untrained` ones, which are the
builder's initialisation after `torch.manual_seed(UNTRAINED_SEED)`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from ..runs import load_trained, trained_on, weights_path
from ..spec import ModelSpec

UNTRAINED_SEED = 0


@dataclass
class Weights:
    model: object  # nn.Module in eval mode, on the CPU
    sha256: str
    source: str  # e.g. "runs/lenet5/model.safetensors", "untrained (torch.manual_seed(0))"
    dataset_variant: str | None = None  # the data the weights were trained on, when known
    dataset: str | None = None
    class_names: tuple[str, ...] | None = None  # of that dataset, when run.json records them


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensor_sha256(model) -> str:
    """sha256 over the state_dict: names, dtypes, shapes and bytes, in name order."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def in_memory(model, source: str = "in-memory model") -> Weights:
    return Weights(model.eval(), tensor_sha256(model), source)


def untrained(spec: ModelSpec) -> Weights:
    import torch

    torch.manual_seed(UNTRAINED_SEED)
    weights = in_memory(spec.build(), f"untrained (builder after torch.manual_seed({UNTRAINED_SEED}))")
    weights.dataset_variant = "none (untrained)"
    return weights


def trained(spec: ModelSpec, weights: str | Path | None = None) -> Weights:
    """The trained weights of runs/NAME (or --weights PATH), with a clear error when absent."""
    path = weights_path(spec.name, weights)
    if not path.is_file():
        where = f"no trained weights for '{spec.name}' at {path}"
        if weights is None:
            raise CheckpointError(f"{where}: run `zoo train {spec.name}` first, pass --weights PATH, "
                                  "or --untrained to use random initial weights")
        raise CheckpointError(f"{where}: check the path, or pass --untrained to use random initial weights")
    model = load_trained(spec, weights)
    info = trained_on(spec, path)
    return Weights(model, file_sha256(path), str(path), info.get("dataset_variant"), info.get("dataset"),
                   info.get("class_names"))


def resolve(spec: ModelSpec, weights: str | Path | None = None, use_untrained: bool = False) -> Weights:
    if use_untrained and weights is not None:
        from ..errors import UsageError

        raise UsageError("--weights and --untrained exclude each other: pick one")
    return untrained(spec) if use_untrained else trained(spec, weights)
