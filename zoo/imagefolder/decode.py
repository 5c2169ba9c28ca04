"""Decoding a folder's image files into one uint8 (N, C, H, W) array, in parallel.

Each file goes through zoo.images.load_image, the one reader `zoo predict` uses too,
so training sees exactly the pixels prediction will: converted to the model's
channels, centre-cropped to its aspect ratio and resized to its input size.
Large folders are decoded by worker processes (Pillow's per-file cost is mostly
Python, which threads would serialise), small ones in this process. Files that do
not decode are reported, never raised one by one: the caller decides.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import numpy as np

from ..cores import usable_cores
from ..errors import DataError
from ..images import load_image

CHUNK = 512  # files per task: big enough to amortise a task's overhead, small enough for a lively bar
PARALLEL_FROM = 2 * CHUNK  # fewer files than this decode in-process (starting workers costs ~0.5 s)
WHY_CHARS = 300  # of the reason a file did not decode (kept in the cache's metadata)
# Bump when the pixels a file decodes to change (zoo.images.load_image), to invalidate caches.
DECODE_VERSION = 2  # 2: JPEG photos decoded at a reduced scale (draft) first


@dataclass(frozen=True)
class DecodeProgress:
    """Emitted while a folder is decoded (or read from the cache, then `cached` is True)."""

    folder: str
    done: int
    total: int
    cached: bool = False
    seconds: float = 0.0  # since decoding this folder began


@dataclass
class Decoded:
    images: np.ndarray  # uint8 (number of good files, C, H, W)
    ok: np.ndarray  # bool (number of files,): False for files that did not decode
    bad: list[tuple[int, str]]  # (file index, why), in file order
    cached: bool = False  # read from the cache rather than decoded

    def split(self, counts: list[int]) -> list["Decoded"]:
        """The files in consecutive runs of `counts`, each a Decoded of its own."""
        parts, start, good = [], 0, 0
        for count in counts:
            ok = self.ok[start:start + count]
            kept = int(ok.sum())
            bad = [(i - start, why) for i, why in self.bad if start <= i < start + count]
            parts.append(Decoded(self.images[good:good + kept], ok, bad, self.cached))
            start, good = start + count, good + kept
        return parts


def decode_files(paths: list[Path], shape: tuple[int, int, int],
                 on_progress: Callable[[int, int], None] | None = None, workers: int | None = None,
                 chunk: int = CHUNK, parallel_from: int = PARALLEL_FROM) -> Decoded:
    """Every file as (C, H, W) uint8 pixels of `shape`; `on_progress(done, total)` after each chunk."""
    total = len(paths)
    chunks = [(start, [str(p) for p in paths[start:start + chunk]]) for start in range(0, total, chunk)]
    workers = min(workers or usable_cores(), len(chunks))
    pixels = np.empty((total, *shape), dtype=np.uint8)
    ok = np.ones(total, dtype=bool)
    bad: list[tuple[int, str]] = []
    done = 0
    for start, part, failures in _run(chunks, shape, workers if total >= parallel_from else 1):
        pixels[start:start + len(part)] = part
        for offset, why in failures:
            ok[start + offset] = False
            bad.append((start + offset, why))
        done += len(part)
        if on_progress is not None:
            on_progress(done, total)
    bad.sort()
    return Decoded(pixels[ok], ok, bad)


def _run(chunks, shape, workers: int):
    if workers <= 1:
        for start, names in chunks:
            yield (start, *decode_chunk(names, shape))
        return
    from PIL import Image

    Image.preinit()  # PNG, JPEG, BMP, GIF readers imported once, here, before the workers fork
    pending = dict(chunks)
    try:
        with ProcessPoolExecutor(workers, mp_context=_context()) as pool:
            futures = {pool.submit(decode_chunk, names, shape): start for start, names in chunks}
            for future in as_completed(futures):
                start = futures[future]
                result = future.result()
                del pending[start]
                yield (start, *result)
    except (BrokenProcessPool, OSError):  # workers cannot start here (e.g. a __main__ they cannot import)
        for start, names in sorted(pending.items()):
            yield (start, *decode_chunk(names, shape))


def _context():
    """fork where there is one: a worker starts in milliseconds with Pillow and numpy already
    imported. forkserver and spawn re-import the main module in every worker (for `zoo`,
    the whole command line) before the first file. A forked worker runs only Pillow and
    numpy, never torch, OpenMP or CUDA, so the parent's threads in those cannot hang it."""
    import multiprocessing

    return get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def decode_chunk(names: list[str], shape: tuple[int, int, int]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """(pixels (len(names), C, H, W), [(index, why) of the files that did not decode])."""
    pixels = np.zeros((len(names), *shape), dtype=np.uint8)
    failures = []
    for i, name in enumerate(names):
        try:
            pixels[i] = load_image(name, shape)
        except DataError as exc:
            failures.append((i, str(exc).removeprefix(f"{name}: ")[:WHY_CHARS]))
    return pixels, failures
