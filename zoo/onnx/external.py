"""ONNX external data, read under zoo's rules for files from elsewhere.

An ONNX file may keep large tensors in other files (`location` in the tensor's
external_data). zoo's own exports never do, but a file from a model hub may. Such a
location is resolved only inside the model's own folder: not absolute, no `..`, no
symbolic link anywhere below that folder, a regular file, offset and length inside
it, all of it under the ONNX size cap. The bytes are then put into the model itself,
so ONNX Runtime is always handed one self-contained model and never resolves a path
on its own (from bytes it would resolve against the current folder).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from .. import safeio
from ..errors import ExportError


def _tensors(model):
    """Every TensorProto of the model, subgraphs and attributes included."""
    from onnx import external_data_helper

    return list(external_data_helper._get_all_tensors(model))


def _inside(folder: Path, location: str, where: str) -> Path:
    """`folder/location`, refused when the location could lead anywhere else."""
    shown = safeio.for_display(location, 120)
    pure = PurePosixPath(location.replace("\\", "/"))
    if not location or "\0" in location or pure.is_absolute() or ".." in pure.parts or ":" in location:
        raise ExportError(f"{where}: external data location '{shown}' is not a plain name inside the model's "
                          "folder; zoo refuses it (re-save the model with its data inside the file)")
    path = folder
    for part in pure.parts:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError as exc:
            raise ExportError(f"{where}: external data file '{shown}' is missing next to the model") from exc
        if stat.S_ISLNK(mode):
            raise ExportError(f"{where}: external data '{shown}' goes through a symbolic link ({path}); "
                              "zoo does not follow links here: put the real file next to the model")
    return path


def _info(tensor) -> tuple[str, int, int | None]:
    entries = {e.key: e.value for e in tensor.external_data}
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError as exc:
        raise ExportError("external data offset or length is not a number") from exc
    return entries.get("location", ""), offset, length


def inline_external_data(model, model_path: Path) -> None:
    """Read every external tensor of `model` (loaded from `model_path`) into the model."""
    from onnx import TensorProto

    external = [t for t in _tensors(model) if t.data_location == TensorProto.EXTERNAL]
    if not external:
        return
    where, folder, total = str(model_path), model_path.parent, 0
    for tensor in external:
        location, offset, length = _info(tensor)
        path = _inside(folder, location, where)
        with safeio.open_regular(path, safeio.ONNX_FILE, ExportError, follow_links=False) as fh:
            size = os.fstat(fh.fileno()).st_size
            length = size - offset if length is None else length
            if offset < 0 or length < 0 or offset + length > size:
                raise ExportError(f"{where}: tensor '{safeio.for_display(tensor.name, 80)}' wants bytes "
                                  f"{offset}..{offset + length} of {path}, which holds {size}: the data file "
                                  "is truncated or belongs to another model")
            total += length
            safeio.check_size(Path(where), total, safeio.ONNX_FILE, ExportError)
            fh.seek(offset)
            tensor.raw_data = fh.read(length)
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT
