"""How fast a folder of images becomes a dataset: first decode, then the cached start.

    .venv/bin/python benchmarks/image_folder.py                  # all 70,000 Fashion-MNIST images
    .venv/bin/python benchmarks/image_folder.py --limit 10000 --json

Writes Fashion-MNIST (/usr/share/datasets/fashion-mnist; the bundled MNIST sample
when absent) as PNG files in PATH/train/CLASS/ and PATH/test/CLASS/ in a
temporary folder (kept with --keep), then times, each in a fresh process so no
import or file cache of the parent helps:

  first decode   zoo.imagefolder.load.load_folder with an empty cache: the scan,
                 Pillow decoding in worker processes, writing the cache;
  cached start   the same call again: the scan, the cache key, reading the cache;
both after `import torch` and zoo (timed apart: `zoo train` pays it anyway). Then, in
this process, one decoding worker against one per core on the same files.

Targets (issue 14): >= 5,000 images/s first decode on 2 cores, cached start <= 2 s.
Other processes on the machine skew the numbers: the load average is printed with
them, and each timing is the median of --repeats runs. Not a test: nothing here asserts.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

FASHION = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")

TIMED = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
import torch  # zoo train has it loaded before any data: timed apart
from zoo.imagefolder.load import load_folder
t1 = time.perf_counter()
data = load_folder(sys.argv[1], (1, 28, 28), cache_root=Path(sys.argv[2]))
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "imports": t1 - t0, "images": len(data.train.files) + len(data.test.files),
                  "cached": data.cached}))
"""


def idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


def source() -> tuple[Path, str]:
    if (FASHION / "train-images-idx3-ubyte.gz").is_file():
        return FASHION, "Fashion-MNIST"
    from zoo.plugins.datasets import sample_dir

    return sample_dir(), "the bundled MNIST sample"


def _write(args: tuple[str, np.ndarray, np.ndarray, int]) -> int:
    from PIL import Image

    folder, images, labels, start = args
    for i, (img, label) in enumerate(zip(images, labels)):
        Image.fromarray(img, mode="L").save(f"{folder}/{CLASSES[label]}/{start + i:05d}.png")
    return len(images)


def write_pngs(root: Path, limit: int | None) -> int:
    """PATH/train/CLASS/N.png and PATH/test/CLASS/N.png from the IDX files, written in parallel."""
    data, _ = source()
    jobs, total = [], 0
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = idx(data / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        labels = idx(data / f"{prefix}-labels-idx1-ubyte.gz", 8)
        if limit is not None:
            keep = limit * len(images) // 70_000 or 1
            images, labels = images[:keep], labels[:keep]
        for name in CLASSES:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for start in range(0, len(images), 2000):
            jobs.append((str(root / split), images[start:start + 2000], labels[start:start + 2000], start))
        total += len(images)
    with ProcessPoolExecutor() as pool:
        assert sum(pool.map(_write, jobs)) == total
    return total


def timed(folder: Path, cache: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", TIMED, str(folder), str(cache)], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)


def worker_ratio(folder: Path, count: int = 4000) -> dict:
    """Decoding the same files in this process, one worker against one per core, side by side."""
    from zoo.imagefolder.decode import available_cores, decode_files

    files = sorted((folder / "train").rglob("*.png"))[:count]
    times = {}
    for workers in (1, available_cores(), 1, available_cores()):
        t0 = time.perf_counter()
        decode_files(files, (1, 28, 28), workers=workers, parallel_from=0)
        times.setdefault(workers, []).append(time.perf_counter() - t0)
    one, many = min(times[1]), min(times[available_cores()])
    return {"files": len(files), "one_worker_images_per_second": round(len(files) / one),
            "all_cores_images_per_second": round(len(files) / many), "speedup": round(one / many, 2)}


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0] if Path("/proc/loadavg").exists() else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="Write only about this many images.")
    parser.add_argument("--repeats", type=int, default=3, help="Timings per measure; the median is shown.")
    parser.add_argument("--keep", action="store_true", help="Keep the PNG folder and print where it is.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="zoo-image-folder-"))
    try:
        t0 = time.perf_counter()
        count = write_pngs(root / "pngs", args.limit)
        written = time.perf_counter() - t0
        loads, first, cached = [load()], [], []
        for i in range(args.repeats):
            cache = root / f"cache-{i}"
            first.append(timed(root / "pngs", cache))
            loads.append(load())
            cached.append(timed(root / "pngs", cache))
            loads.append(load())
            assert cached[-1]["cached"] and not first[-1]["cached"]
            shutil.rmtree(cache)
        ratio = worker_ratio(root / "pngs")
        loads.append(load())
        first_s = statistics.median(r["seconds"] for r in first)
        cached_s = statistics.median(r["seconds"] for r in cached)
        result = {
            "images": count, "source": source()[1], "cores": len(os.sched_getaffinity(0)),
            "write_seconds": round(written, 2),
            "first_decode_seconds": round(first_s, 2), "first_decode_images_per_second": round(count / first_s),
            "cached_start_seconds": round(cached_s, 2),
            "import_seconds": round(statistics.median(r["imports"] for r in first + cached), 2),
            "workers": ratio,
            "all_first": [round(r["seconds"], 2) for r in first], "all_cached": [round(r["seconds"], 2) for r in cached],
            "load_average_1min": loads,
        }
        if args.keep:
            result["folder"] = str(root / "pngs")
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"{count:,} PNG images of {result['source']} ({result['cores']} cores; written in {written:.1f} s)")
            print(f"first decode : {first_s:6.2f} s  = {count / first_s:,.0f} images/s   (target >= 5,000/s)")
            print(f"cached start : {cached_s:6.2f} s                      (target <= 2 s)")
            print(f"  (both after importing torch and zoo, {result['import_seconds']:.1f} s here)")
            print(f"workers      : {ratio['one_worker_images_per_second']:,}/s with one, "
                  f"{ratio['all_cores_images_per_second']:,}/s with {result['cores']} ({ratio['speedup']}x), "
                  f"{ratio['files']:,} files decoded side by side in one process")
            print(f"medians of {args.repeats}; each in a fresh process; 1-min load average during the runs: "
                  f"{', '.join(loads)} (other processes share the machine)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
