"""The seeded, stratified hold-out that becomes the test split of a folder without
train/ and test/ folders, and its fingerprint.

Each class's files (in listing order) are shuffled by a generator seeded with
(seed, class index) and the first round(fraction * n) become test images, at
least one when the class has two or more. The split depends only on the file
list, the fraction and the seed, so evaluate re-derives exactly the images
training held out; the sha256 of the held-out names, kept in run.json, proves it.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..errors import UsageError

DEFAULT_HOLDOUT = 0.1


def check_fraction(fraction: float) -> float:
    if not 0 < fraction < 1:
        raise UsageError(f"--holdout must be a fraction between 0 and 1 (e.g. 0.1 for 10%), got {fraction:g}")
    return float(fraction)


def holdout_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask, True for the held-out (test) items, stratified by label."""
    check_fraction(fraction)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n = len(members)
        take = int(np.floor(fraction * n + 0.5))
        take = max(take, 1) if n >= 2 else 0
        take = min(take, n - 1)  # every class keeps a training image
        order = np.random.default_rng([seed, int(label)]).permutation(n)
        mask[members[order[:take]]] = True
    return mask


def fingerprint(names: list[str]) -> str:
    """sha256 of the names, one per line, in order."""
    return hashlib.sha256("".join(f"{n}\n" for n in names).encode("utf-8")).hexdigest()
