"""Finding and loading a dataset by name.

Where a dataset lives, in search order:
1. `<root>/<name>/`, root being --data-dir, else $ZOO_DATA_DIR, else the XDG cache
   ($XDG_CACHE_HOME/zoo/data or ~/.cache/zoo/data);
2. with an explicit --data-dir, that folder itself (users point it at the files);
3. the spec's `locations` (system installs, a copy bundled with a package).
A folder counts when it holds every entry of `DatasetSpec.files`; `x.gz` is also
satisfied by an un-gzipped `x`, and `a|b` by either `a` or `b` (two layouts).

If none holds it, zoo downloads it (unless offline) into a temporary folder
beside the target and moves it into place without replacing anything, so a user's
own files are never deleted or overwritten. Failing that, the spec's fallback
dataset is loaded with a notice; failing that, a DataError says where zoo looked.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import zoo

from ..errors import DataError, UsageError, ZooError, describe
from ..spec import DatasetSpec

DATA_DIR_ENV = "ZOO_DATA_DIR"
OFFLINE_ENV = "ZOO_OFFLINE"
CONNECT_TIMEOUT = 3.0
# Applied to every socket a download opens: a stalled server must not hang zoo.
DOWNLOAD_SOCKET_TIMEOUT = 60.0
SPLITS = ("train", "test")


@dataclass(frozen=True, eq=False)  # eq=False: tensors do not compare to a bool
class LoadedDataset:
    images: Any  # torch.uint8 (N, C, H, W)
    labels: Any  # torch.int64 (N,)
    name: str  # the dataset asked for
    variant: str  # the dataset actually loaded (differs after a fallback)
    source: str  # the folder it was read from
    class_names: tuple[str, ...]
    notice: str | None = None  # one line for the CLI to show, e.g. why a fallback was used
    downloaded: bool = False

    def __len__(self) -> int:
        return len(self.labels)

    def check_fits(self, model: str, input_shape) -> LoadedDataset:
        """self, if its images have the model's input shape (C, H, W); else one line saying so.
        A folder of images is resized to fit when read, a registered dataset is as it is."""
        got, want = tuple(self.images.shape[1:]), tuple(input_shape)
        if got != want:
            raise DataError(f"dataset '{self.name}' has {'x'.join(map(str, got))} images but '{model}' takes "
                            f"{'x'.join(map(str, want))}: pick a dataset of that shape with --dataset")
        return self


def data_root(data_dir: str | Path | None = None) -> Path:
    """--data-dir, else $ZOO_DATA_DIR, else the XDG cache folder."""
    if data_dir is not None and str(data_dir) != "":
        return _folder(Path(data_dir).expanduser(), "--data-dir")
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        return _folder(Path(env).expanduser(), DATA_DIR_ENV)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "zoo" / "data"


def _folder(path: Path, given_as: str) -> Path:
    """A data root the user named must be a folder if it exists: a file there is a typo
    that silently falling back to the bundled sample would hide."""
    if path.exists() and not path.is_dir():
        raise DataError(f"{given_as} {path} is a file, not a folder; point it at the folder that holds the data")
    return path


def is_offline(offline: bool = False) -> bool:
    return bool(offline) or os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def check_reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise DataError within about `timeout` seconds unless url's host accepts a
    TCP connection. Download helpers call this first so that no network means a
    quick, clear failure rather than a long hang."""
    parts = urlsplit(url if "://" in url else f"//{url}")
    host, port = parts.hostname or "", parts.port or (80 if parts.scheme == "http" else 443)
    found: list = []
    # getaddrinfo has no timeout and a dead resolver can block it for long: bound it with a thread.
    lookup = threading.Thread(target=lambda: found.append(_getaddrinfo(host, port)), daemon=True)
    lookup.start()
    lookup.join(timeout)
    if not found:
        raise DataError(f"no network: cannot resolve {host} within {timeout:g} s")
    if isinstance(found[0], OSError) or not found[0]:
        raise DataError(f"no network: cannot resolve {host} ({found[0] or 'no address'})")
    family, kind, proto, _, address = found[0][0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
    except OSError as exc:
        raise DataError(f"no network: cannot connect to {host}:{port} within {timeout:g} s ({describe(exc)})") from exc


def _getaddrinfo(host: str, port: int):
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return exc


def _exists(folder: Path, name: str) -> bool:
    base = name[:-3] if name.endswith(".gz") else name
    return (folder / name).exists() or (folder / base).exists()


def missing_files(folder: Path, files: tuple[str, ...]) -> list[str]:
    """Entries of `files` absent from folder (see the module docstring for the rules)."""
    if not files:
        return []  # a dataset generated in code needs nothing on disk: it is always there
    if not folder.is_dir():
        return list(files) or [str(folder)]
    return [entry for entry in files if not any(_exists(folder, alt) for alt in entry.split("|"))]


def candidates(spec: DatasetSpec, data_dir: str | Path | None = None) -> list[Path]:
    """Every folder searched for `spec`, in order."""
    root = data_root(data_dir)
    places = [root / spec.name]
    if data_dir is not None and str(data_dir) != "":
        places.append(root)
    places += [Path(p).expanduser() for p in spec.locations]
    return list(dict.fromkeys(places))  # de-duplicated, order kept


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _move_into_place(tmp: Path, target: Path) -> None:
    """Move what the download produced into target, skipping any name that
    already exists there: the user's files win, always."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(tmp.iterdir()):
        dest = target / entry.name
        if not os.path.lexists(dest):
            os.rename(entry, dest)  # same filesystem (tmp is beside target): atomic


def _absent_folders(folder: Path) -> list[Path]:
    """`folder` and its parents that do not exist yet, outermost first."""
    absent = [p for p in (folder, *folder.parents) if not os.path.lexists(p)]
    return absent[::-1]


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed download created, innermost first, only while they are empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except FileNotFoundError:  # never made (the download failed before it)
            continue
        except OSError:  # not empty: something else lives there now, so it and its parents stay
            return


def download(spec: DatasetSpec, data_dir: str | Path | None = None) -> Path:
    """Download `spec` into <root>/<name>/ and return that folder. Raises on any failure,
    leaving no partial files behind and the user's files untouched."""
    if spec.download is None:
        raise DataError(f"dataset '{spec.name}' cannot be downloaded automatically")
    target = data_root(data_dir) / spec.name
    created = _absent_folders(target)  # made for this download: removed again if it fails
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.download-", dir=target.parent))
    done = False
    try:
        with _socket_timeout(DOWNLOAD_SOCKET_TIMEOUT):
            spec.download(tmp)
        missing = missing_files(tmp, spec.files)
        if missing:
            raise DataError(f"the download of '{spec.name}' did not produce {', '.join(missing)}")
        _move_into_place(tmp, target)
        done = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only our own temporary folder
        if not done:
            _remove_empty(created)
    missing = missing_files(target, spec.files)
    if missing:
        raise DataError(f"{target}: still lacks {', '.join(missing)} after downloading; remove the stale files")
    return target


def _try_download(spec: DatasetSpec, data_dir, offline: bool) -> tuple[Path | None, str]:
    """(folder, "") after a download, else (None, why there was none)."""
    if spec.download is None:
        return None, ""
    if is_offline(offline):
        flag = "--offline" if offline else f"{OFFLINE_ENV}={os.environ.get(OFFLINE_ENV)}"
        return None, f"downloading is off: {flag}"
    try:
        return download(spec, data_dir), ""
    except Exception as exc:  # any download failure falls through to the fallback or a clear error
        return None, f"download failed: {describe(exc)}"


def _how_to_get(spec: DatasetSpec, data_dir, why: str) -> str:
    files = ", ".join(f.split("|")[0] for f in spec.files) or "its files"
    options = [f"put {files} in {data_root(data_dir) / spec.name}", "pass --data-dir"]
    if spec.download is not None and why.startswith("downloading is off"):
        options.append(f"allow downloading (unset {OFFLINE_ENV}, drop --offline)")
    elif spec.download is not None:
        options.append("retry when the download site is reachable")
    return ", ".join(options[:-1]) + ", or " + options[-1]


def _not_found(spec: DatasetSpec, searched: list[Path], why: str) -> str:
    places = ", ".join(str(p) for p in searched)
    reason = f" ({why})" if why else ""
    return f"dataset '{spec.name}' not found in {places}{reason}"


def _validate(spec: DatasetSpec, images, labels, source: Path, split: str):
    """Check a loader's output against its spec: a wrong image size or label is a
    DataError naming the folder, not a shape error deep inside a model."""
    import torch

    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise DataError(f"{source}: the '{spec.name}' loader returned {getattr(images, 'dtype', type(images))} "
                        f"{tuple(getattr(images, 'shape', ()))}, expected uint8 (N, C, H, W)")
    if tuple(images.shape[1:]) != spec.input_shape:
        got, want = "x".join(map(str, images.shape[1:])), "x".join(map(str, spec.input_shape))
        raise DataError(f"{source}: images are {got} (CxHxW) but dataset '{spec.name}' needs {want}; "
                        "these files belong to another dataset")
    labels = torch.as_tensor(labels).to(torch.int64).reshape(-1)
    if len(labels) != len(images):
        raise DataError(f"{source}: {len(images)} images but {len(labels)} labels")
    if len(labels) == 0:  # nothing to learn from or score: a metric of it would be nan
        raise DataError(f"{source}: the {split} split of dataset '{spec.name}' is empty (0 images)")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(spec.class_names)):
        raise DataError(f"{source}: labels span {int(labels.min())}-{int(labels.max())} but dataset "
                        f"'{spec.name}' has {len(spec.class_names)} classes")
    return images, labels


def _load_from(spec: DatasetSpec, folder: Path, split: str, downloaded: bool) -> LoadedDataset:
    images, labels = _validate(spec, *spec.load(folder, split), folder, split)
    return LoadedDataset(images, labels, spec.name, spec.name, str(folder), spec.class_names,
                         None, downloaded)


def _get_spec(name_or_spec: str | DatasetSpec) -> DatasetSpec:
    if isinstance(name_or_spec, DatasetSpec):
        return name_or_spec
    return zoo.get_dataset(name_or_spec)


def _load_fallback(spec: DatasetSpec, split, data_dir, offline, searched, why, seen) -> LoadedDataset:
    try:
        fallback = zoo.get_dataset(spec.fallback)
    except ZooError as exc:
        raise DataError(f"{_not_found(spec, searched, why)}, and its fallback "
                        f"'{spec.fallback}' is unavailable: {exc}") from exc
    if fallback.input_shape != spec.input_shape or len(fallback.class_names) != len(spec.class_names):
        raise DataError(f"dataset '{spec.name}': fallback '{fallback.name}' has a different image shape "
                        "or class count, so it cannot stand in for it")
    loaded = _load(fallback, split, data_dir, offline, seen)
    notice = (f"{_not_found(spec, searched, why)}; using '{loaded.variant}' instead "
              f"({fallback.summary.rstrip('.')}). Get the full set: {_how_to_get(spec, data_dir, why)}")
    return dataclasses.replace(loaded, name=spec.name, notice=notice)


def _load(spec: DatasetSpec, split: str, data_dir, offline: bool, seen: tuple[str, ...]) -> LoadedDataset:
    if spec.name in seen:
        raise DataError(f"dataset fallbacks form a loop: {' -> '.join(seen + (spec.name,))}")
    searched = candidates(spec, data_dir)
    for folder in searched:
        if not missing_files(folder, spec.files):
            return _load_from(spec, folder, split, downloaded=False)
    folder, why = _try_download(spec, data_dir, offline)
    if folder is not None:
        return _load_from(spec, folder, split, downloaded=True)
    if spec.fallback:
        return _load_fallback(spec, split, data_dir, offline, searched, why, seen + (spec.name,))
    raise DataError(f"{_not_found(spec, searched, why)}; {_how_to_get(spec, data_dir, why)}")


def load_dataset(name_or_spec: str | DatasetSpec, split: str = "train", data_dir: str | Path | None = None,
                 offline: bool = False) -> LoadedDataset:
    """Find, (download,) load and validate one split of a dataset. See the module docstring."""
    spec = _get_spec(name_or_spec)
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}: use 'train' or 'test'")
    return _load(spec, split, data_dir, offline, ())


def locate(name_or_spec: str | DatasetSpec, data_dir: str | Path | None = None) -> Path | None:
    """The folder a dataset would be read from right now, without loading or downloading."""
    spec = _get_spec(name_or_spec)
    return next((folder for folder in candidates(spec, data_dir) if not missing_files(folder, spec.files)), None)
