"""Reading an image file as the pixels a model takes. One function, so `zoo predict`,
`zoo features --image` and anything else see exactly the same pixels for a file.

Image files come from anywhere, so `open_image` (also for image-folder datasets)
applies zoo's rules before decoding: a regular file (a FIFO or device is refused, not
waited on), at most IMAGE_FILE bytes and MAX_PIXELS pixels, the bound checked from
the header before a byte of pixels is decoded.
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from . import safeio
from .errors import DataError

MODES = {1: "L", 3: "RGB"}
MAX_PIXELS = 64_000_000  # an 8000x8000 photo; zoo's models take 28x28 or 32x32 inputs
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def check_pixels(path: str | Path, size: tuple[int, int]) -> None:
    """DataError when a (width, height) image is over zoo's pixel bound."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise DataError(f"{safeio.for_display(path)}: {width}x{height} is {width * height / 1e6:.0f} million "
                        f"pixels, over zoo's limit of {MAX_PIXELS // 1_000_000} million for an image; "
                        "zoo's models take tiny inputs: shrink it first")


@contextlib.contextmanager
def open_image(path: str | Path, draft: tuple[int, int] | None = None) -> Iterator[object]:
    """A decoded PIL image of a regular image file within zoo's bounds, or one DataError.
    `draft` (width, height): a JPEG may be decoded at a 1/2, 1/4 or 1/8 scale no smaller
    than that (libjpeg's DCT scaling, far faster than decoding a photo whole)."""
    from PIL import Image, UnidentifiedImageError

    data = _read(path)  # one bounded read; the name is escaped only when there is an error
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own bound (89 MP); ours, checked next, is lower.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise DataError(f"{safeio.for_display(path)}: not an image file Pillow can read (use PNG or JPEG)") from exc
    except Image.DecompressionBombError as exc:
        raise DataError(f"{safeio.for_display(path)}: has more than {2 * Image.MAX_IMAGE_PIXELS // 1_000_000} million "
                        f"pixels, over zoo's limit of {MAX_PIXELS // 1_000_000} million for an image; "
                        "zoo's models take tiny inputs: shrink it first") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{safeio.for_display(path)}: not a readable image ({exc})") from exc
    with img:
        check_pixels(path, img.size)
        if draft is not None and img.format == "JPEG":
            img.draft(None, draft)
        try:
            img.load()  # decode now: a truncated file fails here, not later
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"{safeio.for_display(path)}: cannot decode the image ({exc}); "
                            "is the file complete?") from exc
        yield img


def _read(path: str | Path) -> bytes:
    try:
        return safeio.read_bytes(path, safeio.IMAGE_FILE, DataError)
    except DataError as exc:
        if not os.path.lexists(path):
            raise DataError(f"{safeio.for_display(path)}: no such file") from exc
        raise


def to_8bit(img):
    """16-bit grayscale (PNG 'I;16', and 'I' as PNG decodes it) scaled to 0..255, not
    clipped: Pillow's own convert('L') clips every value above 255 to white."""
    from PIL import Image

    if img.mode in SIXTEEN_BIT or (img.mode == "I" and img.format == "PNG"):
        wide = np.asarray(img, dtype=np.uint32)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), mode="L")
    return img


def load_image(path: str | Path, input_shape: tuple[int, int, int], invert: bool = False) -> np.ndarray:
    """uint8 (C, H, W) pixels of a PNG/JPEG file in the model's channels and size: converted to
    gray or RGB, centre-cropped to the input's aspect ratio (no distortion), then resized.
    `invert` turns a dark-on-light drawing into MNIST's light-on-dark (255 - pixel)."""
    from PIL import Image, ImageOps

    channels, height, width = input_shape
    if channels not in MODES:
        raise DataError(f"models with {channels} input channels cannot read image files (only 1 or 3)")
    # A JPEG photo is decoded at no less than twice the input size (then resampled as any image).
    with open_image(path, draft=(2 * width, 2 * height)) as img:
        img = to_8bit(img)
        if img.mode != MODES[channels]:  # convert() to the same mode would only copy
            img = img.convert(MODES[channels])
        if img.size != (width, height):
            img = ImageOps.fit(img, (width, height), method=Image.Resampling.LANCZOS)
        pixels = np.asarray(img, dtype=np.uint8)
    if invert:
        pixels = 255 - pixels
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)  # (C, H, W)
