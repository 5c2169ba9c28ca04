"""Image files made to be hostile (issue 15.11, 9.11): a FIFO or device passed as an
image, a header declaring 12000x12000 or 30000x30000 pixels (the files are a few KB),
and a 16-bit PNG, which must be scaled, not clipped to white."""
from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.errors import DataError
from zoo.images import MAX_PIXELS, load_image, open_image

pytestmark = pytest.mark.timeout(120)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def big_png(path: Path, width: int, height: int) -> Path:
    """A real grayscale PNG of width x height black pixels; rows of zeros deflate to almost nothing."""
    raw = zlib.compressobj(9)
    row = bytes(width + 1)
    body = b"".join(raw.compress(row) for _ in range(height)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b""))
    return path


def png16(path: Path, values: np.ndarray) -> Path:
    """A 16-bit grayscale PNG written byte by byte (big-endian samples, as the format says)."""
    h, w = values.shape
    raw = b"".join(b"\0" + values[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
                     + png_chunk(b"IEND", b""))
    return path


def test_fifo_as_image_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "digit.png")
    with pytest.raises(DataError, match=r"is a FIFO \(named pipe\); an image file must be a regular file"):
        load_image(tmp_path / "digit.png", (1, 28, 28))


def test_device_as_image_is_refused(tmp_path):
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    with pytest.raises(DataError, match="is a device"):
        load_image(tmp_path / "zero.png", (1, 28, 28))


@pytest.mark.parametrize("side", [12000, 30000])
def test_huge_image_is_refused_from_its_header(tmp_path, side):
    path = big_png(tmp_path / "huge.png", side, 16) if side == 30000 else big_png(tmp_path / "huge.png", side, side)
    if side == 30000:  # write the header of a 30000x30000 image over a small one: nothing is decoded anyway
        data = bytearray(path.read_bytes())
        data[16:24] = struct.pack(">II", side, side)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        path.write_bytes(bytes(data))
    assert path.stat().st_size < 1 << 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not be printed
        with pytest.raises(DataError) as info:
            load_image(path, (1, 28, 28))
    message = str(info.value)
    assert f"over zoo's limit of {MAX_PIXELS // 1_000_000} million" in message and "is the file complete" not in message


def test_image_just_within_the_bound_is_read(tmp_path):
    path = big_png(tmp_path / "ok.png", 4000, 4000)
    with open_image(path) as img:
        assert img.size == (4000, 4000)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.tile(np.linspace(0, 65535, 28).astype(np.uint16), (28, 1))
    path = png16(tmp_path / "deep.png", values)
    assert Image.open(path).mode.startswith("I")
    pixels = load_image(path, (1, 28, 28))[0]
    expected = np.round(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert np.abs(pixels.astype(int) - expected).max() <= 1
    assert pixels.min() == 0 and 120 < np.median(pixels) < 135  # mid-grey stays mid-grey, not white
