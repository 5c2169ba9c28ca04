"""The dataset layer on real files: IDX (gz and raw), CIFAR-10 (python and binary
batches), the bundled MNIST sample, the system Fashion-MNIST and the resolution
rules. No test touches the network: ZOO_OFFLINE=1 throughout, and the tests that
exercise the download path use a fake downloader with sockets disabled."""
from __future__ import annotations

import gzip
import os
import pickle
import socket
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo.data import cifar, idx, resolve
from zoo.data.classes import FASHION_MNIST_CLASSES, MNIST_CLASSES
from zoo.data.resolve import data_root, is_offline, load_dataset
from zoo.errors import DataError, UnknownNameError

FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "cache"))  # never the user's real cache


@pytest.fixture
def no_network(monkeypatch):
    """For tests that leave offline mode: any connection attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv("ZOO_OFFLINE")


# ---------------------------------------------------------------- writers of real files

def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """An IDX file exactly as MNIST's: big-endian header, uint8 payload, gzip'd if *.gz."""
    magic = magic if magic is not None else (2051 if array.ndim == 3 else 2049)
    data = struct.pack(">i", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_mnist(folder: Path, gz: bool = True, n: int = 20, size=(28, 28), seed: int = 0) -> dict:
    """The four MNIST files with random pixels and labels 0-9 cycling; returns the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    rng, ext, arrays = np.random.default_rng(seed), ".gz" if gz else "", {}
    for split, count in (("train", n), ("test", n // 2)):
        images = rng.integers(0, 256, (count, *size), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        write_idx(folder / f"{NAMES[split][0]}{ext}", images)
        write_idx(folder / f"{NAMES[split][1]}{ext}", labels)
        arrays[split] = (images, labels)
    return arrays


def cifar_arrays(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


def write_cifar(root: Path, binary: bool, n: int = 4) -> dict:
    """Six batches in the real layout; python ones pickled with protocol 2 and bytes
    keys like the Python 2 originals. Returns name -> (data, labels)."""
    folder = root / (cifar.BIN_DIR if binary else cifar.PY_DIR)
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate(cifar.TRAIN_BATCHES + cifar.TEST_BATCHES):
        data, labels = batches[name] = cifar_arrays(n, seed=i)
        if binary:
            records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None], data], axis=1)
            (folder / f"{name}.bin").write_bytes(records.tobytes())
        else:
            batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                     b"filenames": [f"img{j}.png".encode() for j in range(n)]}
            (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return batches


def snapshot(folder: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("ext", [".gz", ""])
def test_idx_reads_gz_and_raw(tmp_path, ext):
    images = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9, 2], dtype=np.uint8)
    got = idx.read_idx_images(write_idx(tmp_path / f"img{ext}", images))
    got_labels = idx.read_idx_labels(write_idx(tmp_path / f"lab{ext}", labels))
    assert got.dtype == torch.uint8 and got.shape == (7, 1, 28, 28)
    assert torch.equal(got[:, 0], torch.from_numpy(images))
    assert got_labels.dtype == torch.int64 and got_labels.tolist() == labels.tolist()


def test_idx_gzip_is_detected_by_content_not_name(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    gz = write_idx(tmp_path / "labels.gz", labels)
    renamed = gz.rename(tmp_path / "labels-idx1-ubyte")  # gzip content, no .gz suffix
    assert idx.read_idx_labels(renamed).tolist() == list(range(10))


def test_truncated_gzip_is_a_data_error_naming_the_file(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((50, 28, 28), np.uint8) + 7)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupt gzip") as err:
        idx.read_idx_images(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_payload_shorter_than_header_says_truncated(tmp_path):
    path = write_idx(tmp_path / "imgs", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"10x28x28 = 7840 bytes but the file holds 7740; it is truncated"):
        idx.read_idx_images(path)


def test_wrong_magic_names_found_and_expected(tmp_path):
    labels_file = write_idx(tmp_path / "labels.gz", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match=r"wrong magic number 2049, expected 2051") as err:
        idx.read_idx_images(labels_file)  # a labels file where images belong
    assert str(labels_file) in str(err.value)


def test_missing_idx_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        idx.read_idx_labels(tmp_path / "nope.gz")


def test_count_mismatch_names_both_files(tmp_path):
    write_mnist(tmp_path, n=20)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.zeros(19, np.uint8))
    with pytest.raises(DataError, match="20 images but .* 19 labels") as err:
        load_dataset("mnist", "train", data_dir=tmp_path)
    assert str(labels) in str(err.value) and "train-images-idx3-ubyte.gz" in str(err.value)


def test_wrong_image_size_names_the_file(tmp_path):
    write_mnist(tmp_path / "mnist", size=(32, 32))
    with pytest.raises(DataError, match=r"images are 32x32 but this dataset needs 28x28") as err:
        load_dataset("mnist", "test", data_dir=tmp_path)
    assert str(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz") in str(err.value)


def test_label_out_of_range(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(10, 12, np.uint8))
    with pytest.raises(DataError, match="label 12 is out of range for 10 classes"):
        load_dataset("mnist", "test", data_dir=tmp_path)


# ---------------------------------------------------------------- bundled and system datasets

@pytest.mark.parametrize("split,count,per_class", [("train", 4000, 400), ("test", 1000, 100)])
def test_bundled_mnist_sample(split, count, per_class):
    ds = load_dataset("mnist-sample", split)
    assert ds.images.shape == (count, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert torch.bincount(ds.labels, minlength=10).tolist() == [per_class] * 10
    assert ds.variant == "mnist-sample" and ds.notice is None and not ds.downloaded
    assert ds.class_names == MNIST_CLASSES and Path(ds.source).name == "mnist_sample"
    assert ds.images.float().std() > 50  # real digits, not a blank array


@pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").exists(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_found_in_usr_share():
    ds = load_dataset("fashion-mnist", "test")
    assert ds.source == str(FASHION) and ds.variant == "fashion-mnist" and ds.notice is None
    assert ds.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.labels).tolist() == [1000] * 10
    assert ds.class_names == FASHION_MNIST_CLASSES


def test_first_party_datasets_are_registered():
    assert {"mnist", "fashion-mnist", "mnist-sample", "cifar10"} <= set(zoo.list_datasets())
    assert zoo.get_dataset("mnist").fallback == "mnist-sample"


# ---------------------------------------------------------------- CIFAR-10

@pytest.mark.parametrize("binary", [False, True])
def test_cifar_both_layouts(tmp_path, binary):
    batches = write_cifar(tmp_path / "cifar10", binary)
    train = load_dataset("cifar10", "train", data_dir=tmp_path)
    test = load_dataset("cifar10", "test", data_dir=tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    data, labels = batches["test_batch"]
    assert test.labels.tolist() == labels
    # Rows are channel-planar: 1024 red, then green, then blue, each row-major.
    assert torch.equal(test.images, torch.from_numpy(data.reshape(4, 3, 32, 32)))
    assert train.labels[4:8].tolist() == batches["data_batch_2"][1]


def test_cifar_layouts_agree(tmp_path):
    write_cifar(tmp_path / "py", binary=False)
    write_cifar(tmp_path / "bin", binary=True)
    a, b = cifar.load_cifar10(tmp_path / "py", "train"), cifar.load_cifar10(tmp_path / "bin", "train")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_cifar_batch_pickled_by_numpy_1_loads(tmp_path):
    """The real batches name numpy.core.multiarray (numpy 1); numpy 2 writes numpy._core."""
    batches = write_cifar(tmp_path, binary=False)
    path = tmp_path / cifar.PY_DIR / "test_batch"
    old = path.read_bytes().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n_reconstruct" in old
    path.write_bytes(old)
    images, labels = cifar.load_cifar10(tmp_path, "test")
    assert torch.equal(images.reshape(4, -1), torch.from_numpy(batches["test_batch"][0]))


def test_cifar_batch_that_does_not_unpickle(tmp_path):
    write_cifar(tmp_path, binary=False)
    bad = tmp_path / cifar.PY_DIR / "test_batch"
    bad.write_bytes(b"\x80\x02}q\x00(U\x04data" + os.urandom(64))
    with pytest.raises(DataError, match="does not unpickle") as err:
        cifar.load_cifar10(tmp_path, "test")
    assert str(bad) in str(err.value)


class Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_cifar_refuses_os_system_payload(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": Exploit(marker), b"labels": [0]}, protocol=2)
    pickle.loads(payload)  # control: plain pickle really runs it
    assert marker.exists()
    marker.unlink()
    write_cifar(tmp_path, binary=False)
    evil = tmp_path / cifar.PY_DIR / "test_batch"
    evil.write_bytes(payload)
    with pytest.raises(DataError, match=r"refuses to unpickle (posix|os)\.system: this is not a CIFAR batch") as err:
        load_dataset("cifar10", "test", data_dir=tmp_path)
    assert str(evil) in str(err.value)
    assert not marker.exists()


def test_cifar_missing_keys_and_wrong_sizes(tmp_path):
    write_cifar(tmp_path, binary=False)
    batch = tmp_path / cifar.PY_DIR / "test_batch"
    batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=2))
    with pytest.raises(DataError, match="has no 'data' or 'labels'"):
        cifar.load_cifar10(tmp_path, "test")
    batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(DataError, match=r"expected uint8 \(N, 3072\)"):
        cifar.load_cifar10(tmp_path, "test")


def test_cifar_truncated_binary_batch(tmp_path):
    write_cifar(tmp_path, binary=True)
    path = tmp_path / cifar.BIN_DIR / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="not a whole number of 3073-byte") as err:
        cifar.load_cifar10(tmp_path, "train")
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- resolution

def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root(None) == tmp_path / "env"
    monkeypatch.delenv("ZOO_DATA_DIR")
    assert data_root(None) == tmp_path / "xdg" / "zoo" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec says: ignore it
    assert data_root(None) == tmp_path / "home" / ".cache" / "zoo" / "data"


def test_is_offline(monkeypatch):
    assert is_offline(False)  # ZOO_OFFLINE=1 from the fixture
    monkeypatch.delenv("ZOO_OFFLINE")
    assert not is_offline(False) and is_offline(True)


def test_mnist_falls_back_to_sample_offline(tmp_path):
    ds = load_dataset("mnist", "test", data_dir=tmp_path / "empty")
    assert ds.name == "mnist" and ds.variant == "mnist-sample" and len(ds) == 1000
    assert "mnist-sample" in ds.notice and "ZOO_OFFLINE" in ds.notice
    assert str(tmp_path / "empty" / "mnist") in ds.notice and "\n" not in ds.notice


def test_data_dir_pointing_at_the_four_gunzipped_files(tmp_path):
    arrays = write_mnist(tmp_path / "downloads", gz=False)
    ds = load_dataset("mnist", "train", data_dir=tmp_path / "downloads")
    assert ds.variant == "mnist" and ds.notice is None and ds.source == str(tmp_path / "downloads")
    assert torch.equal(ds.images[:, 0], torch.from_numpy(arrays["train"][0]))


def test_dataset_folder_under_env_root(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "root"))
    write_mnist(tmp_path / "root" / "mnist", n=30)
    ds = load_dataset("mnist", "train")
    assert ds.variant == "mnist" and len(ds) == 30


def test_unknown_dataset_name():
    with pytest.raises(UnknownNameError, match="did you mean mnist"):
        load_dataset("mnsit", "train")


def test_not_found_without_fallback_says_where_and_what_to_do(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", "train", data_dir=tmp_path / "nowhere")
    text = str(err.value)
    assert text.startswith("dataset 'cifar10' not found in ")
    assert str(tmp_path / "nowhere" / "cifar10") in text and "--data-dir" in text and "unset ZOO_OFFLINE" in text


def test_failed_load_leaves_user_files_untouched(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    before = snapshot(tmp_path)
    with pytest.raises(DataError, match="corrupt gzip"):
        load_dataset("mnist", "train", data_dir=tmp_path)
    assert snapshot(tmp_path) == before


def test_loader_output_is_checked_against_input_shape(tmp_path):
    (tmp_path / "toy").mkdir()
    spec = zoo.DatasetSpec(name="toy", summary="toy", input_shape=(1, 28, 28), class_names=("a", "b"),
                           load=lambda root, split: (torch.zeros(3, 1, 32, 32, dtype=torch.uint8), torch.zeros(3)))
    with pytest.raises(DataError, match=r"images are 1x32x32 \(CxHxW\) but dataset 'toy' needs 1x28x28") as err:
        load_dataset(spec, "train", data_dir=tmp_path)
    assert str(tmp_path / "toy") in str(err.value)


# ---------------------------------------------------------------- downloads (fake, no network)

def fake_spec(download) -> zoo.DatasetSpec:
    mnist = zoo.get_dataset("mnist")
    return zoo.DatasetSpec(name="toy-mnist", summary="toy", input_shape=(1, 28, 28), class_names=MNIST_CLASSES,
                           load=mnist.load, files=mnist.files, download=download)


def test_download_lands_in_place_without_overwriting_user_files(tmp_path, no_network):
    target = tmp_path / "toy-mnist"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    user_labels = write_idx(target / "t10k-labels-idx1-ubyte.gz", np.arange(10, dtype=np.uint8) % 3)
    before = user_labels.read_bytes()
    ds = load_dataset(fake_spec(lambda root: write_mnist(root, n=20)), "test", data_dir=tmp_path)
    assert ds.downloaded and ds.source == str(target)
    assert (target / "notes.txt").read_text() == "mine" and user_labels.read_bytes() == before
    assert ds.labels.tolist() == [i % 3 for i in range(10)]  # the user's labels, not the download's
    assert [p.name for p in tmp_path.iterdir()] == ["toy-mnist"]  # no temporary folder left


def test_failed_download_falls_through_and_cleans_up(tmp_path, no_network):
    (tmp_path / "toy-mnist").mkdir()
    (tmp_path / "toy-mnist" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)

    def broken(root: Path) -> None:
        write_idx(root / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
        raise ConnectionError("connection reset")

    with pytest.raises(DataError, match="download failed: ConnectionError: connection reset"):
        load_dataset(fake_spec(broken), "train", data_dir=tmp_path)
    assert snapshot(tmp_path) == before and [p.name for p in tmp_path.iterdir()] == ["toy-mnist"]


@pytest.mark.parametrize("how", ["env", "flag"])
def test_offline_never_downloads(tmp_path, monkeypatch, how):
    calls = []
    if how == "flag":
        monkeypatch.delenv("ZOO_OFFLINE")
    with pytest.raises(DataError, match="--offline" if how == "flag" else "ZOO_OFFLINE=1"):
        load_dataset(fake_spec(calls.append), "train", data_dir=tmp_path, offline=how == "flag")
    assert calls == []


def test_unreachable_host_fails_fast(monkeypatch):
    def hanging_resolver(*args, **kwargs):
        time.sleep(5)
    monkeypatch.setattr(socket, "getaddrinfo", hanging_resolver)
    start = time.monotonic()
    with pytest.raises(DataError, match="no network: cannot resolve example.invalid within 0.2 s"):
        resolve.check_reachable("https://example.invalid/x.gz", timeout=0.2)
    assert time.monotonic() - start < 2


def test_data_dir_that_is_a_file_is_an_error(tmp_path):
    from zoo.data.resolve import load_dataset
    from zoo.errors import DataError

    afile = tmp_path / "notes.txt"
    afile.write_text("not data")
    with pytest.raises(DataError, match="is a file, not a folder"):
        load_dataset("mnist", "test", data_dir=afile)
    assert afile.read_text() == "not data"
