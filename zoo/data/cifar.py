"""Reader for CIFAR-10 in its two standard layouts.

`cifar-10-batches-py`: data_batch_1..5 and test_batch, each a pickled dict with
b"data" (uint8 (N, 3072), channel-planar RGB) and b"labels" (N ints).
`cifar-10-batches-bin`: data_batch_1..5.bin and test_batch.bin, records of one
label byte followed by 3072 pixel bytes.

Pickle can run arbitrary code, and these files come from the internet or from a
user's disk, so they are read with `SafeUnpickler`, which can build numpy arrays
and nothing else.
"""
from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path

import numpy as np
import torch

from .. import safeio
from ..errors import DataError, describe

PY_DIR, BIN_DIR = "cifar-10-batches-py", "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
PIXELS = 3 * 32 * 32
NUM_CLASSES = 10


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The only globals a pickled uint8 array (and its dtype) references. Files
    written by numpy 1 name numpy.core, numpy 2 writes numpy._core: both are
    mapped to whatever this numpy provides, without importing anything by name."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 pickles bytes with protocol <= 2 as _codecs.encode(str, "latin1").
        ("_codecs", "encode"): codecs.encode,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar  # labels saved as numpy ints
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals numpy arrays need."""

    _allowed = _numpy_globals()

    def __init__(self, file, source: str):
        # encoding="bytes": the real batches were pickled by Python 2, whose str keys become bytes.
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError as exc:
            raise DataError(f"{self.source}: refuses to unpickle {module}.{name}: this is not a CIFAR batch") from exc


def safe_load(path: Path) -> object:
    """Unpickle `path` with SafeUnpickler, every failure a DataError naming it."""
    data = safeio.read_bytes(path, safeio.CIFAR_BATCH, missing="put the CIFAR-10 batches there or pass --data-dir")
    try:
        return SafeUnpickler(io.BytesIO(data), str(path)).load()
    except DataError:
        raise
    except Exception as exc:  # pickle raises many types on garbage input
        raise DataError(f"{path}: does not unpickle ({describe(exc)}); "
                        "the file is corrupt or not a CIFAR-10 python batch: download it again") from exc


def _get(batch: dict, key: str):
    """Real batches have bytes keys; accept str keys from files re-saved in Python 3."""
    return batch.get(key.encode(), batch.get(key))


def _read_py_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_load(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: holds a {type(batch).__name__}, not a CIFAR batch dict")
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if data is None or labels is None:
        raise DataError(f"{path}: has no 'data' or 'labels' entry (keys: {sorted(map(str, batch))}); "
                        "this is not a CIFAR-10 batch")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == PIXELS):
        shape = getattr(data, "shape", "?")
        raise DataError(f"{path}: 'data' is {type(data).__name__} {shape}, expected uint8 (N, {PIXELS}) "
                        "for 3x32x32 images; this is not a CIFAR-10 batch")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except OverflowError as exc:  # a label such as 2**70 fits no integer type
        raise DataError(f"{path}: field 'labels' holds a number beyond 64 bits; CIFAR-10 labels are "
                        f"0-{NUM_CLASSES - 1}: this is not a CIFAR-10 batch") from exc
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: field 'labels' are not integers ({describe(exc)})") from exc
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels; the batch is corrupt")
    return data, labels


def _read_bin_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = safeio.read_bytes(path, safeio.CIFAR_BATCH, missing="put the CIFAR-10 batches there or pass --data-dir")
    raw = np.frombuffer(data, dtype=np.uint8)
    record = 1 + PIXELS
    if raw.size == 0 or raw.size % record:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of {record}-byte CIFAR-10 records; "
                        "the file is truncated or not a CIFAR-10 binary batch: download it again")
    rows = raw.reshape(-1, record)
    return rows[:, 1:], rows[:, 0].astype(np.int64)


def batch_dir(root: Path) -> Path | None:
    """The layout folder under root (python preferred: torchvision downloads it)."""
    for name in (PY_DIR, BIN_DIR):
        if (root / name).is_dir():
            return root / name
    return None


def load_cifar10(root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 3, 32, 32) images and int64 (N,) labels of one split."""
    root = Path(root)
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    folder = batch_dir(root)
    if folder is None:
        raise DataError(f"{root}: has neither {PY_DIR}/ nor {BIN_DIR}/; put the extracted CIFAR-10 archive there")
    binary = folder.name == BIN_DIR
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    parts = [(_read_bin_batch(folder / f"{n}.bin") if binary else _read_py_batch(folder / n)) for n in names]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    bad = (labels < 0) | (labels >= NUM_CLASSES)
    if bad.any():
        raise DataError(f"{folder}: field 'labels' holds {int(labels[bad][0])}, out of range 0-{NUM_CLASSES - 1}; "
                        "this is not CIFAR-10 (CIFAR-100 perhaps?)")
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)
