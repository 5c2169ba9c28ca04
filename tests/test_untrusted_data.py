"""Dataset files made to be hostile (issue 15.1, 9.10): a gzip bomb behind a valid IDX
header, headers declaring absurd sizes, FIFOs and devices where a file should be, CIFAR
labels out of any integer range. Each is one DataError naming the file and the field,
and memory stays near the data's real size. The files are real and small on disk."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo import safeio
from zoo.data import cifar, idx
from zoo.errors import DataError

pytestmark = pytest.mark.timeout(120)  # a FIFO that hangs must fail the test, not the suite


def gzip_member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


def write_bomb(path: Path, images: int, extra_mb: int) -> Path:
    """A valid 28x28 images header and payload, then `extra_mb` MB of zeros, as gzip members
    (one compressed 64 MB block of zeros repeated: a 1 GB bomb is well under 2 MB on disk)."""
    header = struct.pack(">iIII", 2051, images, 28, 28)
    block = gzip_member(bytes(64 << 20))
    with open(path, "wb") as fh:
        fh.write(gzip_member(header + bytes(images * 28 * 28)))
        for _ in range(extra_mb // 64):
            fh.write(block)
    return path


def test_gzip_bomb_is_refused_after_the_declared_bytes(tmp_path):
    path = write_bomb(tmp_path / "train-images-idx3-ubyte.gz", 100, 256)
    assert path.stat().st_size < 1 << 20  # small on disk
    with pytest.raises(DataError, match=r"holds more data after them.*gzip bomb") as info:
        idx.read_idx_images(path)
    assert str(path) in str(info.value)


def test_gzip_bomb_memory_stays_near_the_real_size(tmp_path):
    """60,000 images (47 MB) followed by 2 GB of zeros: the reader stops after 47 MB + 1 byte.
    Measured in a fresh process (peak RSS), as the issue's 12 GB was."""
    path = write_bomb(tmp_path / "bomb.gz", 60000, 2048)
    assert path.stat().st_size < 4 << 20
    # VmHWM, not ru_maxrss: on Linux the latter keeps the (large) pytest parent's peak across exec.
    code = ("import re\nfrom zoo.data import idx\nfrom zoo.errors import DataError\n"
            f"try:\n    idx.read_idx_images({str(path)!r})\nexcept DataError as e:\n    print('refused', e)\n"
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
            "print('peak_mb', int(hwm) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=110).stdout
    assert "refused" in out and "holds more data after them" in out, out
    peak = int(out.split("peak_mb")[1])
    # torch and numpy alone take a few hundred MB; 2 GB of zeros would be far above this.
    assert peak < 1024, out


@pytest.mark.parametrize("dims", [(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (60000, 1 << 25, 1)])
def test_idx_header_with_huge_dimensions_is_one_line(tmp_path, dims):
    path = tmp_path / "imgs.gz"
    path.write_bytes(gzip.compress(struct.pack(">iIII", 2051, *dims) + bytes(100)))
    with pytest.raises(DataError, match=r"header declares .* over zoo's limit of 4 GB") as info:
        idx.read_idx_images(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("raw", [False, True])
def test_fifo_as_idx_file_is_refused_without_hanging(tmp_path, raw):
    path = tmp_path / ("train-images-idx3-ubyte" if raw else "train-images-idx3-ubyte.gz")
    os.mkfifo(path)
    with pytest.raises(DataError, match=r"is a FIFO \(named pipe\); an IDX file must be a regular file"):
        idx.read_idx_images(path)


def test_device_as_idx_file_is_refused(tmp_path):
    link = tmp_path / "train-labels-idx1-ubyte"
    link.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="is a device"):
        idx.read_idx_labels(link)


def test_raw_idx_with_trailing_bytes_is_refused(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(struct.pack(">iI", 2049, 3) + bytes(3) + b"extra")
    with pytest.raises(DataError, match="holds more data after them"):
        idx.read_idx_labels(path)


def test_cifar_label_beyond_any_integer_names_file_and_field(tmp_path):
    folder = tmp_path / cifar.PY_DIR
    folder.mkdir()
    batch = {b"data": np.zeros((2, cifar.PIXELS), np.uint8), b"labels": [0, 2 ** 70]}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match=r"test_batch: field 'labels' holds a number beyond 64 bits"):
        cifar.load_cifar10(tmp_path, "test")


def test_cifar_batch_that_is_a_fifo_is_refused(tmp_path):
    folder = tmp_path / cifar.PY_DIR
    folder.mkdir()
    os.mkfifo(folder / "test_batch")
    with pytest.raises(DataError, match="FIFO"):
        cifar.load_cifar10(tmp_path, "test")


def test_cifar_binary_batch_over_the_cap_is_refused_before_reading(tmp_path):
    folder = tmp_path / cifar.BIN_DIR
    folder.mkdir()
    with open(folder / "test_batch.bin", "wb") as fh:  # sparse: nothing is really written
        fh.truncate(safeio.CIFAR_BATCH.max_bytes + 1)
    with pytest.raises(DataError, match="over zoo's limit of 256 MB for a CIFAR-10 batch"):
        cifar.load_cifar10(tmp_path, "test")
