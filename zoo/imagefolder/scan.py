"""Finding the classes and image files of a folder, the way torchvision's ImageFolder does.

torchvision (datasets/folder.py): the classes are the sorted names of the folder's
sub-folders; each class's files are found by walking its folder recursively, in
sorted order, keeping names whose lower-cased suffix is one of IMG_EXTENSIONS.
A class folder without a single image is an error. Differences, on purpose:
hidden entries (".ipynb_checkpoints", ".DS_Store") are skipped, only regular files
count, and a link whose target lies outside the dataset folder is not followed
(nor is a link loop walked twice).

Two layouts: PATH/CLASS/... (a seeded hold-out becomes the test split), or
PATH/train/CLASS/... beside PATH/test/CLASS/... (or val/).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import DataError

# torchvision.datasets.folder.IMG_EXTENSIONS
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
TEST_FOLDERS = ("test", "val")


class Entry(NamedTuple):  # a tuple: 70,000 of them are made on every start
    path: str  # relative to the split folder, with "/" separators
    label: int
    size: int
    mtime_ns: int


@dataclass
class Listing:
    """One split folder: its classes (sorted folder names) and image files."""

    folder: Path
    classes: tuple[str, ...]
    files: list[Entry]
    outside_links: list[str] = field(default_factory=list)  # links not followed (they leave the folder)
    ignored: int = 0  # files that are not images by their name

    def paths(self) -> list[Path]:
        return [self.folder / e.path for e in self.files]


@dataclass
class Layout:
    root: Path  # the dataset folder, absolute
    train: Listing
    test: Listing | None  # None: a hold-out of train is the test split
    test_folder: str | None = None

    @property
    def split(self) -> str:
        return "folders" if self.test is not None else "holdout"


def find_layout(path: str | Path) -> Layout:
    """The classes and files of a dataset folder, or one DataError saying what is wrong."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"--dataset {root} is a file; give the folder that holds one sub-folder per class")
    root = root.resolve()
    subdirs = set(_subfolders(root, root))
    tests = [t for t in TEST_FOLDERS if t in subdirs]
    if "train" in subdirs and subdirs <= {"train", *TEST_FOLDERS}:
        train = list_split(root / "train", root)
        if not tests:
            return Layout(root, train, None)
        test = list_split(root / tests[0], root, train.classes)
        return Layout(root, train, test, tests[0])
    _refuse_mixed_layout(root, subdirs)
    return Layout(root, list_split(root, root), None)


def _refuse_mixed_layout(root: Path, subdirs: set[str]) -> None:
    """A train/, test/ or val/ folder whose own sub-folders are named like other folders
    there is the two layouts mixed (say boot/ and sandal/ beside test/boot/), not a class:
    trained as one, it would be a class of every kind of image. A real class named "train"
    (a dataset of vehicles) has no such sub-folders."""
    splits = [s for s in ("train", *TEST_FOLDERS) if s in subdirs]
    inner = {s: set(_subfolders(root / s, root)) for s in splits}
    for split in splits:
        elsewhere = (subdirs - {split}).union(*(inner[t] for t in splits if t != split))
        shared = sorted(inner[split] & elsewhere)
        if shared:
            raise DataError(f"{root} mixes two layouts: {split}/ holds class folders ({', '.join(shared[:3])}) named "
                            f"like other folders there; keep the classes either in {root}/CLASS/ or in "
                            f"{root}/train/CLASS/ with the test images in {root}/test/CLASS/")


def list_split(folder: Path, root: Path, train_classes: tuple[str, ...] | None = None) -> Listing:
    """One split folder's files; a test split (`train_classes` given) is labelled by the
    training split's class indices and may not have classes of its own."""
    classes = tuple(sorted(_subfolders(folder, root)))
    if not classes:
        raise DataError(f"{folder} has no class folders: put the images in {folder}/CLASS/, one folder per class")
    if train_classes is None and len(classes) < 2:
        raise DataError(f"{folder} has only one class folder ({classes[0]}): a classifier needs at least two")
    if train_classes is not None:
        extra = [c for c in classes if c not in train_classes]
        if extra:
            raise DataError(f"the test split {folder} has classes the training split lacks: {', '.join(extra)}; "
                            "add them to train/ or remove them from the test split")
    index = {c: i for i, c in enumerate(train_classes or classes)}
    listing = Listing(folder, tuple(train_classes or classes), [])
    for name in classes:
        found = _walk(folder / name, name, index[name], root, listing, {os.path.realpath(folder / name)})
        if not found:
            raise DataError(f"class folder {folder / name} has no images ({', '.join(IMAGE_EXTENSIONS)}): "
                            "add some or remove the folder")
    return listing


def _inside(target: str, root: Path) -> bool:
    return target == str(root) or target.startswith(str(root) + os.sep)


def _subfolders(folder: Path, root: Path) -> list[str]:
    """Names of the non-hidden folders in `folder` whose real place is inside the dataset folder `root`."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise DataError(f"cannot read the folder {folder} ({exc.strerror or exc})") from exc
    names = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=True):
            continue
        if entry.is_symlink() and not _inside(os.path.realpath(entry.path), root):
            continue  # a link out of the dataset is not one of its classes
        names.append(entry.name)
    return names


def _walk(folder: Path, rel: str, label: int, root: Path, listing: Listing, seen: set[str]) -> int:
    """Append the images under `folder` to listing.files in torchvision's order (folders
    sorted by path, files sorted by name within each); how many."""
    groups: list[tuple[str, list[Entry]]] = []
    _collect(folder, rel, label, root, listing, seen, groups)
    count = 0
    for _, entries in sorted(groups, key=lambda g: g[0]):
        listing.files += entries
        count += len(entries)
    return count


def _collect(folder: Path, rel: str, label: int, root: Path, listing: Listing, seen: set[str],
             groups: list[tuple[str, list[Entry]]]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"cannot read the folder {folder} ({exc.strerror or exc})") from exc
    files: list[Entry] = []
    groups.append((str(folder), files))
    for entry in entries:
        if entry.name.startswith("."):
            continue
        name = f"{rel}/{entry.name}"
        if entry.is_symlink() and not _inside(os.path.realpath(entry.path), root):
            listing.outside_links.append(name)
            continue
        if entry.is_dir(follow_symlinks=True):
            real = os.path.realpath(entry.path)
            if real not in seen:  # a link back up the tree is walked once
                seen.add(real)
                _collect(Path(entry.path), name, label, root, listing, seen, groups)
        elif not entry.name.lower().endswith(IMAGE_EXTENSIONS):
            listing.ignored += 1
        elif entry.is_file(follow_symlinks=True):  # regular files only: no fifos or devices
            st = entry.stat(follow_symlinks=True)
            files.append(Entry(name, label, st.st_size, st.st_mtime_ns))
