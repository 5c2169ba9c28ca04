"""The decoded-pixels cache: one safetensors file per (dataset folder, input shape).

It lives in <data root>/image-folders/ ($ZOO_DATA_DIR or ~/.cache/zoo/data). Its
metadata holds a key computed from the file list (names, labels, sizes,
modification times), the shape and the decoder version; a file whose key differs
is stale and is replaced, so a folder never leaves more than one entry per shape.
Only tensors and JSON are stored (no pickle), and everything read back is checked
against the listing before it is used: a damaged or foreign cache file is
decoded afresh, never trusted.
"""
from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import numpy as np

from .. import fileio
from .decode import DECODE_VERSION, Decoded
from .scan import Listing

FOLDER = "image-folders"
META_KEY = "zoo.image_folder"
FORMAT = "zoo.image_folder/1"
HEADER_BYTES = 64 * 1024  # safetensors' JSON header and zoo's metadata, bad files aside
BAD_BYTES = 1024  # per file, at most: its index and why it did not decode, in the metadata


def content_key(listing: Listing, shape: tuple[int, int, int]) -> str:
    digest = hashlib.sha256(f"{FORMAT}|{DECODE_VERSION}|{tuple(shape)}\n".encode())
    for e in listing.files:
        digest.update(f"{e.path}\t{e.label}\t{e.size}\t{e.mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def cache_path(cache_root: Path, listing: Listing, shape: tuple[int, int, int]) -> Path:
    where = f"{listing.folder.resolve()}|{'x'.join(map(str, shape))}"
    return cache_root / FOLDER / (hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:32]
                                  + ".safetensors")


def read(path: Path, key: str, count: int, shape: tuple[int, int, int]) -> Decoded | None:
    """The cached pixels when the entry at `path` matches `key`; None otherwise (or when unreadable)."""
    try:
        info = path.lstat()
    except OSError:
        return None
    pixels = count * int(np.prod(shape))
    if not stat.S_ISREG(info.st_mode) or info.st_size > pixels + count + HEADER_BYTES + count * BAD_BYTES:
        return None  # a link, not a file, or larger than the pixels of this listing could make it
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as fh:
            meta = json.loads((fh.metadata() or {}).get(META_KEY, "null"))
            if not isinstance(meta, dict) or meta.get("key") != key:
                return None
            images, ok = fh.get_tensor("images"), fh.get_tensor("ok")
    except (SafetensorError, OSError, ValueError, KeyError):
        return None
    bad = meta.get("bad")
    if (images.dtype != np.uint8 or images.shape[1:] != tuple(shape) or ok.shape != (count,)
            or int(ok.sum()) != len(images) or not isinstance(bad, list)):
        return None
    try:
        bad = [(int(i), str(why)) for i, why in bad]
    except (TypeError, ValueError):
        return None
    if sorted(i for i, _ in bad) != np.flatnonzero(ok == 0).tolist():
        return None
    return Decoded(images, ok.astype(bool), bad, cached=True)


def write(path: Path, key: str, decoded: Decoded) -> None:
    """Store the pixels atomically; an OutputError (read-only cache, disk full) is the caller's to report."""
    from safetensors.numpy import save

    meta = {META_KEY: json.dumps({"format": FORMAT, "key": key, "bad": decoded.bad})}
    data = save({"images": np.ascontiguousarray(decoded.images), "ok": decoded.ok.astype(np.uint8)}, metadata=meta)
    fileio.write_bytes(path, data)
