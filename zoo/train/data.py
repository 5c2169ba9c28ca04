"""Getting a dataset into the loop: load, subset, place, and iterate in batches.

A dataset that fits stays as uint8 on the training device (a 60k MNIST split is
47 MB) and each batch is one index gather there. One that does not fit on a GPU
stays in pinned host memory and a DataLoader feeds whole batches (gathered the
same way, so the sample order and augmentation are identical either way).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from ..errors import DataError, UsageError
from ..spec import ModelSpec
from .augment import AugmentParams, BatchTransform

# Share of free GPU memory the uint8 dataset may take; the rest is for the model and activations.
DEVICE_DATA_SHARE = 0.5


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class RunData:
    train: Split
    test: Split
    name: str
    variant: str
    source: str
    class_names: tuple[str, ...]
    notices: list[str]
    folder: Any = None  # zoo.imagefolder.load.FolderData when the dataset is a folder of the user's images


def load_run_data(spec: ModelSpec, dataset: str, data_dir: str | Path | None, offline: bool,
                  limit: int | None, seed: int, holdout: float | None = None, skip_bad: bool = False,
                  on_progress: Callable | None = None) -> RunData:
    from ..data.resolve import load_dataset
    from ..imagefolder import DEFAULT_HOLDOUT, is_folder_dataset

    if is_folder_dataset(dataset):
        return load_folder_run_data(spec, dataset, data_dir, limit, seed,
                                    DEFAULT_HOLDOUT if holdout is None else holdout, skip_bad, on_progress)

    train = load_dataset(dataset, "train", data_dir=data_dir, offline=offline)
    test = load_dataset(dataset, "test", data_dir=data_dir, offline=offline)
    train.check_fits(spec.name, spec.input_shape)
    if len(train.class_names) != spec.num_classes:
        raise DataError(f"dataset '{dataset}' has {len(train.class_names)} classes but model '{spec.name}' "
                        f"predicts {spec.num_classes}")
    notices = list(dict.fromkeys(n for n in (train.notice, test.notice) if n))
    return RunData(
        train=subset(Split(train.images, train.labels), limit, seed),
        test=subset(Split(test.images, test.labels), limit, seed + 1),
        name=train.name, variant=train.variant, source=train.source,
        class_names=tuple(train.class_names), notices=notices,
    )


def load_folder_run_data(spec: ModelSpec, dataset: str, data_dir, limit: int | None, seed: int, holdout: float,
                         skip_bad: bool, on_progress: Callable | None) -> RunData:
    """A folder of images, decoded to the model's channels and size (zoo.imagefolder)."""
    from ..data.resolve import data_root
    from ..imagefolder.load import load_folder

    data = load_folder(dataset, tuple(spec.input_shape), holdout, seed, skip_bad, data_root(data_dir), on_progress)
    where = str(data.root)
    return RunData(
        train=subset(Split(data.train.images, data.train.labels), limit, seed),
        test=subset(Split(data.test.images, data.test.labels), limit, seed + 1),
        name=where, variant=where, source=where, class_names=data.class_names, notices=list(data.notices),
        folder=data)


def subset(split: Split, limit: int | None, seed: int) -> Split:
    """A seeded random subset: files such as mnist-sample are sorted by class, so
    the first N samples would all be zeros."""
    if limit is None or limit >= len(split):
        return split
    keep = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:limit]
    return Split(split.images[keep], split.labels[keep])


def fits_on_device(split_bytes: int, device: torch.device) -> bool:
    """The CPU holds the data already; a GPU gets it when it takes at most half its free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return split_bytes <= DEVICE_DATA_SHARE * free


def split_bytes(*splits: Split) -> int:
    return sum(s.images.numel() * s.images.element_size() + s.labels.numel() * 8 for s in splits)


def num_batches(n: int, batch_size: int) -> int:
    """ceil(n / batch_size), minus a last batch of one sample: batch norm cannot train on it."""
    batches = -(-n // batch_size)
    return batches - 1 if batches > 1 and n % batch_size == 1 else batches


def batches_per_epoch(world, n: int, batch_size: int) -> int:
    """Batches each process trains per epoch. Several processes step in lockstep, so each
    gets the same whole number of full batches of its shard (the ragged rest is dropped:
    a process with one batch fewer would leave the others waiting in a collective)."""
    if not world.many:
        return num_batches(n, batch_size)
    per_process = n // world.size
    if per_process < batch_size:
        raise UsageError(f"{n:,} training images give each of the {world.size} processes {per_process:,}, "
                         f"fewer than --batch-size {batch_size} (the batch size is per process): use a "
                         "smaller batch, fewer processes or more data")
    return per_process // batch_size


def epoch_plan(n: int, epoch: int, seed: int, transform: BatchTransform) -> tuple[torch.Tensor, AugmentParams]:
    """The sample order and augmentation draws of one epoch, from a generator seeded
    by (seed, epoch) alone: the same on every device, and a resumed run needs no
    saved data-RNG state to continue exactly where it stopped."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g), transform.draw_params(n, g)


class _EpochBatches(torch.utils.data.Dataset):
    """Item i is the i-th batch of an epoch, gathered from host memory."""

    def __init__(self, split: Split, order: torch.Tensor, batch_size: int):
        self.split, self.order, self.batch_size = split, order, batch_size

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.split.images[idx], self.split.labels[idx]


def iterate(split: Split, order: torch.Tensor, params: AugmentParams, batch_size: int, batches: int,
            start: int, device: torch.device, on_device: bool) -> Iterator[tuple[int, torch.Tensor, torch.Tensor,
                                                                                 AugmentParams]]:
    """(batch index, uint8 images, labels, augmentation draws), all on `device`,
    for batches start..batches-1 of an epoch."""
    if on_device:  # order and params were moved to the device once for the epoch
        for i in range(start, batches):
            lo, hi = i * batch_size, (i + 1) * batch_size
            idx = order[lo:hi]
            yield i, split.images[idx], split.labels[idx], params.slice(lo, hi)
        return
    cuda = device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        _EpochBatches(split, order, batch_size), batch_size=None, sampler=range(start, batches),
        num_workers=2 if cuda else 0, pin_memory=cuda)
    for i, (x, y) in zip(range(start, batches), loader):
        lo, hi = i * batch_size, (i + 1) * batch_size
        yield i, x.to(device, non_blocking=True), y.to(device, non_blocking=True), params.slice(lo, hi)
