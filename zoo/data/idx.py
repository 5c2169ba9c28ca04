"""Reader for IDX files, the format of MNIST and Fashion-MNIST, gzip'd or raw.

The header is big-endian: a magic number (0x0000 0x08 ndim for unsigned bytes,
so 2051 for 3-d images and 2049 for 1-d labels) then one uint32 per dimension.
Everything is checked against the payload so a truncated or mislabelled file
fails here with one line naming it, not later as a reshape error mid-training.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from .. import safeio
from ..errors import DataError, describe

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
GZIP_MAGIC = b"\x1f\x8b"

# split -> (images file, labels file), without the .gz the files usually carry.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


MAX_DIM = 1 << 24  # no axis of an honest IDX file is over 16.7 million (EMNIST has 0.7 million images)


def _parse(path: Path, expected_magic: int) -> tuple[tuple[int, ...], np.ndarray]:
    """(dims, flat uint8 payload) of an IDX file. The header is read first, then exactly
    the bytes it declares, then one more byte must be the end: a gzip bomb (a valid header
    and gigabytes of zeros) is refused after reading no more than the declared size.
    Gzip is detected from the content, not the name, because users rename files."""
    with safeio.open_regular(path, safeio.IDX_FILE, missing="put the dataset files there or pass --data-dir") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            dims = _header(path, stream, expected_magic)
            expected = int(np.prod(dims, dtype=object))
            if any(d > MAX_DIM for d in dims) or expected > safeio.IDX_FILE.max_bytes:
                raise DataError(f"{path}: header declares {'x'.join(map(str, dims))} = {expected:,} bytes, over "
                                f"zoo's limit of {safeio.IDX_FILE.text()} (and {MAX_DIM:,} per axis) for an IDX "
                                "file; this is not a real dataset file")
            flat = np.empty(expected, dtype=np.uint8)
            got = _read_into(stream, flat)
            extra = len(stream.read(1)) if got == expected else 0
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(f"{path}: truncated or corrupt gzip ({describe(exc)}); delete it and download it again") from exc
    if got < expected:
        raise DataError(f"{path}: header says {'x'.join(map(str, dims))} = {expected} bytes but the file "
                        f"holds {got}; it is truncated: download it again")
    if extra:
        raise DataError(f"{path}: header says {'x'.join(map(str, dims))} = {expected} bytes but the file "
                        "holds more data after them; it is not a clean IDX file (a gzip bomb?): download it again")
    return dims, flat


def _header(path: Path, stream, expected_magic: int) -> tuple[int, ...]:
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: only {len(head)} bytes, too short for an IDX header; the file is truncated")
    (magic,) = struct.unpack(">i", head)
    if magic != expected_magic:
        what = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DataError(f"{path}: wrong magic number {magic}, expected {expected_magic} for IDX {what}; "
                        "is this the right file (images vs labels) and is it really an IDX file?")
    ndim = magic & 0xFF
    packed = stream.read(4 * ndim)
    if len(packed) < 4 * ndim:
        raise DataError(f"{path}: header is cut short ({4 + len(packed)} bytes); the file is truncated")
    return struct.unpack(f">{ndim}I", packed)


def _read_into(stream, buffer: np.ndarray) -> int:
    """Fill `buffer` from `stream`; the number of bytes there were (fewer when truncated)."""
    view, got = memoryview(buffer), 0
    while got < len(buffer):
        n = stream.readinto(view[got:got + (64 << 20)])
        if not n:
            break
        got += n
    return got


def read_idx_images(path: str | Path) -> torch.Tensor:
    """uint8 (N, 1, H, W) from an IDX3 images file."""
    path = Path(path)
    (n, h, w), flat = _parse(path, IMAGES_MAGIC)
    return torch.from_numpy(flat.reshape(n, 1, h, w))  # our own writable buffer: no copy


def read_idx_labels(path: str | Path, num_classes: int | None = None) -> torch.Tensor:
    """int64 (N,) from an IDX1 labels file; with num_classes, every label is checked."""
    path = Path(path)
    _, flat = _parse(path, LABELS_MAGIC)
    if num_classes is not None and flat.size and int(flat.max()) >= num_classes:
        bad = int(flat.max())
        raise DataError(f"{path}: label {bad} is out of range for {num_classes} classes (0-{num_classes - 1}); "
                        "this is not a labels file of this dataset")
    return torch.from_numpy(flat.astype(np.int64))


def find_file(root: Path, name: str) -> Path | None:
    """`name` or `name.gz` under root: users often gunzip what they downloaded."""
    base = name[:-3] if name.endswith(".gz") else name
    for candidate in (root / f"{base}.gz", root / base):
        if candidate.is_file():
            return candidate
    return None


def load_idx_split(root: str | Path, split: str, image_size: tuple[int, int],
                   num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of one split of an MNIST-layout folder, fully validated."""
    root = Path(root)
    if split not in SPLIT_FILES:
        raise DataError(f"unknown split {split!r}: use 'train' or 'test'")
    paths = []
    for name in SPLIT_FILES[split]:
        found = find_file(root, name)
        if found is None:
            raise DataError(f"{root / name}.gz: file not found (nor un-gzipped {name}); "
                            "put the dataset files there or pass --data-dir")
        paths.append(found)
    images_path, labels_path = paths
    images = read_idx_images(images_path)
    if tuple(images.shape[2:]) != tuple(image_size):
        h, w = images.shape[2:]
        raise DataError(f"{images_path}: images are {h}x{w} but this dataset needs "
                        f"{image_size[0]}x{image_size[1]}; this is a different dataset's file")
    labels = read_idx_labels(labels_path, num_classes)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
                        "the two files are from different sets or one is incomplete")
    return images, labels
