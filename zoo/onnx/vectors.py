"""Reference test vectors in the ONNX model zoo layout, so any runtime can re-check a file.

For `exported/lenet5.onnx` they live in a folder named after the file, next to it:

    exported/lenet5.onnx
    exported/lenet5/test_data_set_0/input_0.pb    random inputs (batch 7, or the static batch)
    exported/lenet5/test_data_set_0/output_0.pb   PyTorch's outputs for them
    exported/lenet5/test_data_set_1/...           real test-set images, when the dataset is present
    exported/lenet5/vectors.json                  which weights and inputs made them, and the
                                                  manifest: every file zoo wrote there

Each .pb file is one serialised onnx.TensorProto (onnx.numpy_helper), named after
the graph input or output, as `onnx/models` ships them and ONNX backend test
runners read them. Outputs always come from PyTorch, never from ONNX Runtime.

The folder may have been replaced by someone else, so writing and reading follow
zoo's rules for files from elsewhere: no symbolic link is followed (the folder, a set
folder or a .pb file that is a link is refused), a folder by that name which is not
empty and has no vectors.json is the user's (say the image folder `shoes/` beside
`shoes.onnx`) and refused, zoo deletes only files its manifest says it wrote, and
everything is checked (`check_target`) before anything is written, the .onnx file
included. A .pb file that points at external data is refused.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .. import fileio, safeio
from ..errors import ExportError
from ..schema import List, Obj, Str, validate

INFO_FILE = "vectors.json"
SET_PATTERN = re.compile(r"^test_data_set_(\d+)$")
TENSOR_FILES = ("input_0.pb", "output_0.pb")
MAX_SETS = 1000

VECTORS = Obj({
    "model": Str(name=True), "weights_sha256": Str(pattern=r"[0-9a-f]{64}"),
    "input_dtype": Str(max_len=32), "reference": Str(), "made_by": Str(max_len=256), "zoo_version": Str(max_len=64),
    "sets": Obj(values=Str(max_len=512)),
    "files": List(Str(max_len=64, pattern=r"test_data_set_[0-9]{1,4}/(input|output)_0\.pb"), max_items=2 * MAX_SETS),
})


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


def _kind(path: Path) -> str | None:
    """'link', 'folder', 'file', 'other', or None when nothing is there (links not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "link"
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _refuse_link(path: Path, want: str) -> None:
    kind = _kind(path)
    if kind == "link":
        raise ExportError(f"{path} is a symbolic link; zoo never writes or deletes through links: "
                          "remove the link or choose another --out")
    if kind not in (None, want):
        raise ExportError(f"{path} is a {kind}, not a {want}; move it away or choose another --out")


def manifest(folder: Path) -> set[str]:
    """The files zoo wrote in `folder` at the last export, from vectors.json: 'files', or,
    for vectors.json of zoo before the manifest, the two .pb files of each set it lists."""
    if _kind(folder / INFO_FILE) is None:
        return set()
    info = read_info(folder)
    if "files" in info:
        return set(info["files"])
    return {f"test_data_set_{i}/{name}" for i in info.get("sets", {}) if str(i).isdigit() for name in TENSOR_FILES}


def check_target(folder: Path, indexes: range | list[int]) -> set[str]:
    """Everything export will write or delete in `folder`, checked before anything is
    written; returns the previous manifest. Refused: links anywhere zoo writes, and a
    set folder holding files zoo did not write (they are the user's)."""
    _refuse_link(folder, "folder")
    _refuse_link(folder / INFO_FILE, "file")
    if _kind(folder) is None:
        return set()
    _refuse_foreign(folder)
    owned = manifest(folder)
    for index in indexes:
        sub = folder / f"test_data_set_{index}"
        _refuse_link(sub, "folder")
        if _kind(sub) is None:
            continue
        for entry in sorted(sub.iterdir()):
            rel = f"{sub.name}/{entry.name}"
            _refuse_link(entry, "file")
            if rel not in owned:
                raise ExportError(f"{entry} was not written by zoo (it is not in {folder / INFO_FILE}); "
                                  "zoo will not overwrite it: move it away or choose another --out")
    return owned


def _refuse_foreign(folder: Path) -> None:
    """A folder zoo did not make for test vectors (no vectors.json, yet not empty) is the
    user's, e.g. the image folder `shoes/` beside `--out shoes.onnx`: zoo writes nothing in it."""
    if _kind(folder / INFO_FILE) is not None:
        return
    try:
        with os.scandir(folder) as entries:
            empty = next(entries, None) is None
    except OSError as exc:
        raise ExportError(f"cannot read {folder} ({exc.strerror or exc})") from exc
    if not empty:
        raise ExportError(f"{folder}/ already exists and is not a test-vector folder of zoo's (it has no {INFO_FILE}); "
                          f"zoo writes the test vectors of {folder.name}.onnx there and never into a folder of "
                          "yours: choose another --out or move the folder away")


def write_vectors(folder: Path, sets: list[VectorSet], info: dict, input_name: str, output_name: str) -> None:
    """Write each set (atomically per file), the manifest, then drop stale sets of an earlier
    export: only the files the earlier manifest lists, and their folders once empty."""
    owned = check_target(folder, [vs.index for vs in sets])
    written: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for vs in sets:
            target = folder / f"test_data_set_{vs.index}"
            target.mkdir(exist_ok=True)
            for name, array, tensor_name in (("input_0.pb", vs.inputs, input_name),
                                             ("output_0.pb", vs.outputs, output_name)):
                fileio.write_bytes(target / name, _tensor_bytes(array, tensor_name))
                written.append(f"{target.name}/{name}")
    except OSError as exc:
        raise ExportError(f"cannot write the test vectors in {folder} ({exc.strerror or exc})") from exc
    described = {str(vs.index): vs.description for vs in sets}
    fileio.write_json(folder / INFO_FILE, info | {"sets": described, "files": written})
    for rel in sorted(owned - set(written)):
        stale = folder / rel
        if SET_PATTERN.match(stale.parent.name) and _kind(stale.parent) == "folder" and _kind(stale) == "file":
            stale.unlink()
            with contextlib.suppress(OSError):  # not empty: something else lives there, it stays
                stale.parent.rmdir()


def _read_tensor(path: Path):
    import onnx
    from onnx import numpy_helper

    data = safeio.read_bytes(path, safeio.TENSOR_PB, ExportError, follow_links=False)
    tensor = onnx.TensorProto()
    try:
        tensor.ParseFromString(data)
    except Exception as exc:  # DecodeError
        raise ExportError(f"{path} is not a readable TensorProto ({exc}); re-create the vectors with "
                          "`zoo verify NAME`") from exc
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise ExportError(f"{path}: the tensor points at external data; zoo's test vectors hold their data "
                          "inside the .pb file: re-create them with `zoo verify NAME`")
    try:
        return numpy_helper.to_array(tensor)
    except Exception as exc:  # bad dims vs payload, unknown dtype
        raise ExportError(f"{path} is not a readable TensorProto ({exc}); re-create the vectors with "
                          "`zoo verify NAME`") from exc


def read_info(folder: Path) -> dict:
    """vectors.json, checked against VECTORS; {} when there is none."""
    path = folder / INFO_FILE
    if _kind(path) is None:
        return {}
    data = safeio.read_json(path, safeio.VECTORS_JSON, ExportError, follow_links=False)
    return validate(data, VECTORS, str(path), ExportError, "re-create the vectors with `zoo verify NAME`")


def read_vectors(folder: Path) -> tuple[list[VectorSet], dict]:
    """Every test_data_set_N in folder (sorted by N) and the info file (empty if absent)."""
    _refuse_link(folder, "folder")
    if _kind(folder) != "folder":
        raise ExportError(f"no test vectors at {folder}/: create them with `zoo verify NAME` "
                          "(needs the PyTorch weights) or `zoo export NAME`")
    info = read_info(folder)
    described = info.get("sets", {})
    sets = []
    for sub in sorted(folder.iterdir(), key=lambda p: p.name):
        match = SET_PATTERN.match(sub.name)
        if not match:
            continue
        _refuse_link(sub, "folder")
        inp, out = sub / "input_0.pb", sub / "output_0.pb"
        if _kind(inp) is None or _kind(out) is None:
            raise ExportError(f"{sub} lacks input_0.pb or output_0.pb; re-create the vectors with `zoo verify NAME`")
        index = int(match.group(1))
        sets.append(VectorSet(index, described.get(str(index), sub.name), _read_tensor(inp), _read_tensor(out)))
        if len(sets) > MAX_SETS:
            raise ExportError(f"{folder} holds over {MAX_SETS} test_data_set_N folders, over zoo's limit")
    if not sets:
        raise ExportError(f"no test_data_set_N folders in {folder}/: create them with `zoo verify NAME`")
    return sorted(sets, key=lambda s: s.index), info
