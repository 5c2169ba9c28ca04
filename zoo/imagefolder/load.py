"""A folder of the user's images as train and test tensors, with everything a run records.

    data = load_folder("shoes/", (3, 32, 32), holdout=0.1, seed=0)
    data.train.images  # uint8 (N, 3, 32, 32); data.class_names: the sorted folder names
    data.record()      # what run.json keeps: layout, hold-out and its fingerprint, normalisation, ...
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import DataError, OutputError
from . import cache
from .decode import Decoded, DecodeProgress, decode_files
from .scan import IMAGE_EXTENSIONS, Layout, Listing, find_layout
from .split import DEFAULT_HOLDOUT, check_fraction, fingerprint, holdout_mask

RECORDED = 1000  # file names kept in run.json per list (a run.json must stay small)
SHOWN_BAD = 5  # bad files named in one error or warning line before "and N more"


@dataclass
class FolderSplit:
    images: Any  # torch.uint8 (N, C, H, W)
    labels: Any  # torch.int64 (N,)
    files: list[str]  # relative to the split folder


@dataclass
class FolderData:
    root: Path
    layout: Layout
    class_names: tuple[str, ...]
    train: FolderSplit
    test: FolderSplit
    mean: tuple[float, ...]
    std: tuple[float, ...]
    holdout: dict | None  # {"fraction", "seed", "test_images", "sha256"} when the test split is a hold-out
    skipped: list[str] = field(default_factory=list)  # unreadable files left out (--skip-bad)
    notices: list[str] = field(default_factory=list)
    cached: bool = False

    def record(self) -> dict:
        """The folder's part of run.json."""
        lay = self.layout
        return {
            "root": str(self.root), "split": lay.split, "test_folder": lay.test_folder,
            "train_folder": str(lay.train.folder.relative_to(self.root)) if lay.train.folder != self.root else ".",
            "holdout": self.holdout, "train_images": len(self.train.files), "test_images": len(self.test.files),
            "skipped_files": self.skipped[:RECORDED], "skipped_count": len(self.skipped),
            "links_not_followed": _outside(lay)[:RECORDED],
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
        }


def _outside(layout: Layout) -> list[str]:
    return layout.train.outside_links + (layout.test.outside_links if layout.test else [])


def load_folder(path: str | Path, shape: tuple[int, int, int], holdout: float = DEFAULT_HOLDOUT, seed: int = 0,
                skip_bad: bool = False, cache_root: Path | None = None,
                on_progress: Callable[[DecodeProgress], None] | None = None) -> FolderData:
    """Scan, decode (or read the cache), check, split and measure a dataset folder."""
    check_fraction(holdout)
    layout = find_layout(path)
    notices = []
    train, test = _decoded(layout, shape, cache_root, on_progress, notices)
    skipped = _bad_files(layout, train, test, skip_bad, notices)
    names = layout.train.classes
    train_labels = np.array([e.label for e in layout.train.files], dtype=np.int64)[train.ok]
    train_files = [e.path for e, good in zip(layout.train.files, train.ok) if good]
    _check_classes(layout.train, names, train_labels)
    if test is None:
        mask = holdout_mask(train_labels, holdout, seed)
        if not mask.any():
            raise DataError(f"{layout.root} has too few images for a hold-out test split: "
                            "put at least two images in a class folder, or add a test/ folder")
        test_split = _split(train.images[mask], train_labels[mask], [f for f, m in zip(train_files, mask) if m])
        train_split = _split(train.images[~mask], train_labels[~mask], [f for f, m in zip(train_files, mask) if not m])
        held = {"fraction": holdout, "seed": seed, "test_images": int(mask.sum()),
                "sha256": fingerprint(test_split.files)}
    else:
        test_labels = np.array([e.label for e in layout.test.files], dtype=np.int64)[test.ok]
        test_files = [e.path for e, good in zip(layout.test.files, test.ok) if good]
        train_split = _split(train.images, train_labels, train_files)
        test_split = _split(test.images, test_labels, test_files)
        held = None
    if layout.test is not None and len(test_split.files) == 0:
        raise DataError(f"the test split {layout.test.folder} has no readable images")
    mean, std = channel_stats(train_split.images)
    if _outside(layout):
        notices.append(f"{len(_outside(layout))} link(s) pointing outside {layout.root} were not followed "
                       f"(e.g. {_outside(layout)[0]})")
    return FolderData(layout.root, layout, names, train_split, test_split, mean, std, held, skipped, notices,
                      cached=train.cached)


def _split(images: np.ndarray, labels: np.ndarray, files: list[str]) -> FolderSplit:
    import torch

    return FolderSplit(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels), files)


def _decoded(layout: Layout, shape, cache_root, on_progress, notices: list[str]) -> tuple[Decoded, Decoded | None]:
    """(train, test or None) pixels: each split from its cache when current; the others
    decoded together, by one pool of workers (a second pool would cost its start-up again)."""
    listings = [layout.train] + ([layout.test] if layout.test is not None else [])
    keys = [cache.content_key(listing, shape) for listing in listings]
    paths = [cache.cache_path(cache_root, listing, shape) if cache_root is not None else None for listing in listings]
    found = [cache.read(where, key, len(listing.files), shape) if where is not None else None
             for listing, key, where in zip(listings, keys, paths)]
    for listing, hit in zip(listings, found):
        if hit is not None and on_progress:
            on_progress(DecodeProgress(str(listing.folder), len(listing.files), len(listing.files), cached=True))
    todo = [i for i, hit in enumerate(found) if hit is None]
    if todo:
        t0 = time.perf_counter()
        folder = str(listings[todo[0]].folder if len(todo) == 1 else layout.root)
        report = (lambda done, total: on_progress(DecodeProgress(folder, done, total, False, time.perf_counter() - t0))
                  ) if on_progress else None
        decoded = decode_files([p for i in todo for p in listings[i].paths()], shape, report)
        for i, part in zip(todo, decoded.split([len(listings[i].files) for i in todo])):
            found[i] = part
            if paths[i] is not None:
                try:
                    cache.write(paths[i], keys[i], part)
                except OutputError as exc:  # a cache that cannot be written only costs the next start its speed
                    notices.append(f"could not cache the decoded images ({exc})")
    return found[0], (found[1] if len(found) > 1 else None)


def _bad_files(layout: Layout, train: Decoded, test: Decoded | None, skip_bad: bool, notices: list[str]) -> list[str]:
    bad = [(layout.train.folder / layout.train.files[i].path, why) for i, why in train.bad]
    if test is not None and layout.test is not None:
        bad += [(layout.test.folder / layout.test.files[i].path, why) for i, why in test.bad]
    if not bad:
        return []
    rel = [(str(p.relative_to(layout.root)), why) for p, why in bad]
    shown = "; ".join(f"{p} ({why})" for p, why in rel[:SHOWN_BAD])
    more = f"; and {len(bad) - SHOWN_BAD} more" if len(bad) > SHOWN_BAD else ""
    if not skip_bad and len(bad) == 1:
        raise DataError(f"{bad[0][0]} cannot be read ({bad[0][1]}); fix or remove it, or pass --skip-bad "
                        "to leave it out")
    if not skip_bad:  # the way out first: a long list may be cut
        raise DataError(f"{len(bad)} images in {layout.root} cannot be read (fix or remove them, or pass --skip-bad "
                        f"to leave them out): {shown}{more}")
    notices.append(f"skipped {len(bad)} unreadable image file(s): {shown}{more}")
    return [p for p, _ in rel]


def _check_classes(listing: Listing, names: tuple[str, ...], labels: np.ndarray) -> None:
    counts = np.bincount(labels, minlength=len(names))
    empty = [names[k] for k in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"class folder {listing.folder / empty[0]} has no readable images "
                        f"({', '.join(IMAGE_EXTENSIONS)}) once the unreadable ones are skipped")


def channel_stats(images) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images scaled to [0, 1], exact, from
    a 256-bin histogram per channel (no float copy of the images: 60k of them would take GBs)."""
    import torch

    means, stds = [], []
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        n = max(float(counts.sum()), 1.0)
        mean = float((counts * levels).sum()) / n
        var = max(float((counts * levels.square()).sum()) / n - mean * mean, 0.0)
        std = math.sqrt(var)
        means.append(round(mean, 6))
        stds.append(round(std, 6) if std > 1e-6 else 1.0)
    return tuple(means), tuple(stds)
