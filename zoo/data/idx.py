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

from ..errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
GZIP_MAGIC = b"\x1f\x8b"

# split -> (images file, labels file), without the .gz the files usually carry.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_bytes(path: Path) -> bytes:
    """The decompressed bytes. Gzip is detected from the content, not the name,
    because users rename files (a raw file called .gz, a gzip without .gz)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; put the dataset files there or pass --data-dir") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt gzip ({exc}); delete it and download it again") from None


def _parse(path: Path, expected_magic: int) -> tuple[tuple[int, ...], np.ndarray]:
    """(dims, flat uint8 payload) of an IDX file, after checking magic and size."""
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX header; the file is truncated")
    (magic,) = struct.unpack(">i", data[:4])
    if magic != expected_magic:
        what = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DataError(f"{path}: wrong magic number {magic}, expected {expected_magic} for IDX {what}; "
                        "is this the right file (images vs labels) and is it really an IDX file?")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: header is cut short ({len(data)} bytes); the file is truncated")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(data) - header
    if payload != expected:
        problem = "is truncated" if payload < expected else f"has {payload - expected} extra bytes"
        raise DataError(f"{path}: header says {'x'.join(map(str, dims))} = {expected} bytes but the file "
                        f"holds {payload}; it {problem}: download it again")
    return dims, np.frombuffer(data, dtype=np.uint8, count=expected, offset=header)


def read_idx_images(path: str | Path) -> torch.Tensor:
    """uint8 (N, 1, H, W) from an IDX3 images file."""
    path = Path(path)
    (n, h, w), flat = _parse(path, IMAGES_MAGIC)
    # copy(): frombuffer views immutable bytes, and torch wants memory it may write.
    return torch.from_numpy(flat.reshape(n, 1, h, w).copy())


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
