"""The first-party datasets: MNIST, Fashion-MNIST, the bundled MNIST sample and CIFAR-10.

Readers and downloaders import torch/torchvision only when called, so listing
the registry stays cheap. Downloads write into the folder zoo.data.resolve
hands them (a temporary one) and use torchvision's URLs and checksums, so they
stay in step with what torchvision users get.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import zoo
from zoo.data.classes import CIFAR10_CLASSES, FASHION_MNIST_CLASSES, MNIST_CLASSES
from zoo.errors import DataError, describe

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MNIST_CITATION = "Y. LeCun, C. Cortes and C. J. C. Burges, The MNIST database of handwritten digits (CC BY-SA 3.0)"


def _load_idx(root: Path, split: str):
    from zoo.data.idx import load_idx_split

    return load_idx_split(root, split, image_size=(28, 28), num_classes=10)


def _load_cifar10(root: Path, split: str):
    from zoo.data.cifar import load_cifar10

    return load_cifar10(root, split)


def _idx_downloader(torchvision_class: str):
    """Fetch the four .gz files from the first mirror torchvision lists that works."""

    def download(root: Path) -> None:
        from torchvision import datasets
        from torchvision.datasets.utils import download_url

        from zoo.data.resolve import check_reachable

        cls = getattr(datasets, torchvision_class)
        errors = []
        for mirror in cls.mirrors:
            try:
                check_reachable(mirror)  # fail in seconds, not minutes, without a network
                for filename, md5 in cls.resources:
                    download_url(f"{mirror}{filename}", root=str(root), filename=filename, md5=md5)
                return
            except Exception as exc:  # try the next mirror
                errors.append(f"{mirror}: {describe(exc)}")
        if all(": no network" in e for e in errors):  # the common offline case, said briefly
            raise DataError(f"no network: none of the {len(errors)} {torchvision_class} mirrors is reachable")
        raise DataError(f"no {torchvision_class} mirror worked: {'; '.join(errors)}")

    return download


def _download_cifar10(root: Path) -> None:
    from torchvision.datasets import CIFAR10

    from zoo.data.resolve import check_reachable

    check_reachable(CIFAR10.url)
    CIFAR10(str(root), train=True, download=True)  # downloads, checks md5, extracts cifar-10-batches-py/
    (root / CIFAR10.filename).unlink(missing_ok=True)  # the 170 MB archive is no longer needed


def sample_dir() -> Path:
    """The bundled mnist-sample folder inside the installed zoo.data package."""
    return Path(str(resources.files("zoo.data") / "mnist_sample"))


@zoo.hookimpl
def register_datasets(register):
    register(zoo.DatasetSpec(
        name="mnist",
        summary="MNIST handwritten digits: 60,000 train and 10,000 test 28x28 grey images",
        input_shape=(1, 28, 28),
        class_names=MNIST_CLASSES,
        load=_load_idx,
        files=IDX_FILES,
        download=_idx_downloader("MNIST"),
        fallback="mnist-sample",
        citation=MNIST_CITATION,
    ))
    register(zoo.DatasetSpec(
        name="fashion-mnist",
        summary="Fashion-MNIST: 70,000 28x28 grey images of clothing in 10 classes (Zalando)",
        input_shape=(1, 28, 28),
        class_names=FASHION_MNIST_CLASSES,
        load=_load_idx,
        files=IDX_FILES,
        download=_idx_downloader("FashionMNIST"),
        # Debian's dataset-fashion-mnist package installs the four files here.
        locations=("/usr/share/datasets/fashion-mnist",),
        citation="H. Xiao, K. Rasul and R. Vollgraf, Fashion-MNIST, arXiv:1708.07747, 2017 (MIT)",
    ))
    register(zoo.DatasetSpec(
        name="mnist-sample",
        summary="the bundled 5,000-digit MNIST sample, 4,000 train and 1,000 test, 500 per class",
        input_shape=(1, 28, 28),
        class_names=MNIST_CLASSES,
        load=_load_idx,
        files=IDX_FILES,
        locations=(str(sample_dir()),),
        citation=MNIST_CITATION,
    ))
    register(zoo.DatasetSpec(
        name="cifar10",
        summary="CIFAR-10: 50,000 train and 10,000 test 32x32 colour images in 10 classes",
        input_shape=(3, 32, 32),
        class_names=CIFAR10_CLASSES,
        load=_load_cifar10,
        files=("cifar-10-batches-py|cifar-10-batches-bin",),
        download=_download_cifar10,
        citation="A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
    ))
