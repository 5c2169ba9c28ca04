"""Reading files zoo did not just write: datasets, run folders, weights, ONNX files
that someone else made. Every such read goes through here, so the rules live in one place:

- regular files only: the file is opened with O_NONBLOCK (a FIFO cannot hang the
  open) and checked with fstat on the open descriptor (no race with a rename), so a
  FIFO, a device such as /dev/zero, a socket or a folder is one clear error;
- symbolic links are followed only where a caller allows it (`follow_links`);
- every kind of file has a size cap no honest file reaches (`Limit`), checked before
  anything is read and again while reading (a file that grows, /proc files that
  claim size 0);
- JSON is parsed under the size cap and a nesting limit, then checked field by field
  by the caller's schema (`zoo.schema`);
- `for_display` escapes control characters so text from a file cannot drive the terminal.

The errors are the caller's typed error class, one line naming the file and the bound.
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import DataError, ZooError

KB, MB, GB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limit:
    """The size cap for one kind of file, and what that kind of file is, for the error line."""

    what: str
    max_bytes: int

    def text(self) -> str:
        return human_size(self.max_bytes)

    @property
    def a(self) -> str:
        """'a run.json', 'an IDX file'."""
        return f"{'an' if self.what[:1].lower() in 'aeio' else 'a'} {self.what}"


# Bounds chosen far above any honest file (see README "Files from elsewhere").
RUN_JSON = Limit("run.json", 16 * MB)  # a 1,000-epoch run with 1,000 class names is ~0.3 MB
CHECKPOINT_JSON = Limit("checkpoint.json", 64 * MB)  # optimizer scalars; tensors live in safetensors
VECTORS_JSON = Limit("vectors.json", 1 * MB)  # a few descriptions and hashes
TENSOR_PB = Limit("test vector", 512 * MB)
IDX_FILE = Limit("IDX file", 4 * GB)  # the largest public IDX set (EMNIST ByClass) is 0.55 GB
CIFAR_BATCH = Limit("CIFAR-10 batch", 256 * MB)  # the real batches are 31 MB
IMAGE_FILE = Limit("image file", 256 * MB)
ONNX_FILE = Limit("ONNX file", 2 * GB)  # protobuf's own limit for one message
METRICS_CSV = Limit("metrics.csv", 64 * MB)
BATCHES_CSV = Limit("batches.csv", 256 * MB)  # --log-every 1 for 100 epochs of ImageNet is ~70 MB
MODEL_CARD = Limit("model card", 16 * MB)  # a run's README.md: a page of text
WEIGHTS_FILE = Limit("weights file", 16 * GB)  # safetensors: zoo's largest model (vgg) is ~0.1 GB

JSON_MAX_DEPTH = 64  # zoo's own JSON files nest 6 levels deep at most


def human_size(n: int) -> str:
    for unit, size in (("GB", GB), ("MB", MB), ("KB", KB)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def for_display(text: object, limit: int = 200) -> str:
    """`text` safe to print: control characters (C0 such as ESC, BEL, newline, tab; DEL;
    C1 such as CSI) become visible escapes like `\\x1b`, and very long text is cut.
    Rich markup is not touched here: the console layer escapes it as usual."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 or ch in "\u2028\u2029\u202e\u2066\u2067\u2068\u2069":
            out.append(repr(ch)[1:-1] if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    shown = "".join(out)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def describe_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


@contextlib.contextmanager
def open_regular(path: str | Path, limit: Limit, error: type[ZooError] = DataError,
                 follow_links: bool = True, missing: str = "") -> Iterator[IO[bytes]]:
    """A binary file object for `path`, which must be a regular file of at most
    `limit.max_bytes`; anything else is `error` with one line naming the file.
    `missing` is what to do when there is no file (appended to 'file not found')."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise error(f"{for_display(path)}: file not found" + (f"; {missing}" if missing else "")) from exc
    except IsADirectoryError as exc:
        raise error(f"{for_display(path)}: is a folder, not {limit.a}") from exc
    except OSError as exc:
        if not follow_links and path.is_symlink():
            raise error(f"{for_display(path)}: is a symbolic link; zoo does not follow links here, "
                        "put the real file in its place") from exc
        raise error(f"{for_display(path)}: cannot be read ({exc.strerror or exc}); check its permissions") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{for_display(path)}: is {describe_kind(info.st_mode)}; {limit.a} must be a regular file")
        check_size(path, info.st_size, limit, error)
        os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh


def check_regular(path: str | Path, limit: Limit, error: type[ZooError] = DataError, missing: str = "") -> Path:
    """`path` when it is a regular file within `limit`, for libraries that open it themselves
    (safetensors maps the file): a FIFO or device is refused here instead of hanging there."""
    with open_regular(path, limit, error, missing=missing):
        return Path(path)


def check_size(path: Path, size: int, limit: Limit, error: type[ZooError] = DataError) -> None:
    if size > limit.max_bytes:
        raise error(f"{for_display(path)}: {human_size(size)} is over zoo's limit of {limit.text()} "
                    f"for {limit.a}; no honest {limit.what} is that large")


def read_bounded(fh: IO[bytes], path: Path, limit: Limit, error: type[ZooError] = DataError) -> bytes:
    """All of `fh`, refusing to read more than the limit (files that grow, /proc files).
    The size fstat reports, plus one byte, is read first: asking for limit-sized reads
    would allocate that much for every small file (a folder of 70,000 tiny images)."""
    try:
        size = os.fstat(fh.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        size = 0
    data = fh.read(min(size + 1, limit.max_bytes + 1))
    if len(data) > size:  # it grew, or /proc said 0: the rest, still bounded
        data += fh.read(limit.max_bytes + 1 - len(data))
    if len(data) > limit.max_bytes:
        check_size(path, len(data), limit, error)
    return data


def read_bytes(path: str | Path, limit: Limit, error: type[ZooError] = DataError,
               follow_links: bool = True, missing: str = "") -> bytes:
    """The whole regular file at `path`, under `limit`."""
    with open_regular(path, limit, error, follow_links, missing) as fh:
        return read_bounded(fh, Path(path), limit, error)


def read_json(path: str | Path, limit: Limit, error: type[ZooError] = DataError,
              follow_links: bool = True, missing: str = "") -> Any:
    """Parsed JSON of a regular file under `limit`, nested at most JSON_MAX_DEPTH deep."""
    return parse_json(read_bytes(path, limit, error, follow_links, missing), str(path), error)


def parse_json(data: bytes | str, where: str, error: type[ZooError] = DataError) -> Any:
    """JSON text from a file (or a metadata value) `where` names; one line when it is not."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except RecursionError as exc:
        raise error(f"{for_display(where)}: JSON nested deeper than zoo's limit of {JSON_MAX_DEPTH} levels") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{for_display(where)}: is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except ValueError as exc:
        raise error(f"{for_display(where)}: is not valid JSON ({exc})") from exc
    if json_depth(value) > JSON_MAX_DEPTH:
        raise error(f"{for_display(where)}: JSON nested deeper than zoo's limit of {JSON_MAX_DEPTH} levels")
    return value


def json_depth(value: Any) -> int:
    """Nesting depth, without recursion (the parser already bounded it by the recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level > JSON_MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in item)
    return deepest
