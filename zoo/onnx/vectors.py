"""Reference test vectors in the ONNX model zoo layout, so any runtime can re-check a file.

For `exported/lenet5.onnx` they live in a folder named after the file, next to it:

    exported/lenet5.onnx
    exported/lenet5/test_data_set_0/input_0.pb    random inputs (batch 7, or the static batch)
    exported/lenet5/test_data_set_0/output_0.pb   PyTorch's outputs for them
    exported/lenet5/test_data_set_1/...           real test-set images, when the dataset is present
    exported/lenet5/vectors.json                  which weights and inputs made them (zoo's own)

Each .pb file is one serialised onnx.TensorProto (onnx.numpy_helper), named after
the graph input or output, as `onnx/models` ships them and ONNX backend test
runners read them. Outputs always come from PyTorch, never from ONNX Runtime.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import fileio
from ..errors import ExportError

INFO_FILE = "vectors.json"
SET_PATTERN = re.compile(r"^test_data_set_(\d+)$")


@dataclass
class VectorSet:
    index: int
    description: str
    inputs: object  # numpy array
    outputs: object  # numpy array (PyTorch's)


def vectors_dir(onnx_path: str | Path) -> Path:
    """exported/NAME.onnx -> exported/NAME/ (the model zoo's folder per model)."""
    path = Path(onnx_path)
    if path.suffix != ".onnx":
        raise ExportError(f"{path}: an ONNX file name must end with .onnx")
    return path.with_suffix("")


def _tensor_bytes(array, name: str) -> bytes:
    from onnx import numpy_helper

    return numpy_helper.from_array(array, name=name).SerializeToString()


def write_vectors(folder: Path, sets: list[VectorSet], info: dict, input_name: str, output_name: str) -> None:
    """Write each set (atomically per file), then drop stale sets of an earlier export."""
    folder.mkdir(parents=True, exist_ok=True)
    for vs in sets:
        target = folder / f"test_data_set_{vs.index}"
        fileio.write_bytes(target / "input_0.pb", _tensor_bytes(vs.inputs, input_name))
        fileio.write_bytes(target / "output_0.pb", _tensor_bytes(vs.outputs, output_name))
    described = {str(vs.index): vs.description for vs in sets}
    fileio.write_json(folder / INFO_FILE, info | {"sets": described})
    kept = {f"test_data_set_{vs.index}" for vs in sets}
    for old in folder.iterdir():
        # Only folders that look like ours (nothing but .pb files): a user's files stay.
        if SET_PATTERN.match(old.name) and old.name not in kept and old.is_dir() \
                and all(f.suffix == ".pb" and f.is_file() for f in old.iterdir()):
            shutil.rmtree(old)


def _read_tensor(path: Path):
    import onnx
    from onnx import numpy_helper

    tensor = onnx.TensorProto()
    try:
        tensor.ParseFromString(path.read_bytes())
        return numpy_helper.to_array(tensor)
    except Exception as exc:  # DecodeError, bad dims vs payload, unknown dtype
        raise ExportError(f"{path} is not a readable TensorProto ({exc}); re-create the vectors with "
                          "`zoo verify NAME`") from None


def read_vectors(folder: Path) -> tuple[list[VectorSet], dict]:
    """Every test_data_set_N in folder (sorted by N) and the info file (empty if absent)."""
    if not folder.is_dir():
        raise ExportError(f"no test vectors at {folder}/: create them with `zoo verify NAME` "
                          "(needs the PyTorch weights) or `zoo export NAME`")
    info: dict = {}
    if (folder / INFO_FILE).is_file():
        try:
            info = json.loads((folder / INFO_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ExportError(f"{folder / INFO_FILE} is not valid JSON ({exc})") from None
    described = info.get("sets", {}) if isinstance(info.get("sets"), dict) else {}
    sets = []
    for sub in sorted(folder.iterdir(), key=lambda p: p.name):
        match = SET_PATTERN.match(sub.name)
        if not match or not sub.is_dir():
            continue
        inp, out = sub / "input_0.pb", sub / "output_0.pb"
        if not inp.is_file() or not out.is_file():
            raise ExportError(f"{sub} lacks input_0.pb or output_0.pb; re-create the vectors with `zoo verify NAME`")
        index = int(match.group(1))
        sets.append(VectorSet(index, described.get(str(index), sub.name), _read_tensor(inp), _read_tensor(out)))
    if not sets:
        raise ExportError(f"no test_data_set_N folders in {folder}/: create them with `zoo verify NAME`")
    return sorted(sets, key=lambda s: s.index), info
