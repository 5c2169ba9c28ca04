"""Reading an image file as the pixels a model takes. One function, so `zoo predict`,
`zoo features --image` and anything else see exactly the same pixels for a file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError

MODES = {1: "L", 3: "RGB"}


def load_image(path: str | Path, input_shape: tuple[int, int, int], invert: bool = False) -> np.ndarray:
    """uint8 (C, H, W) pixels of a PNG/JPEG file in the model's channels and size: converted to
    gray or RGB, centre-cropped to the input's aspect ratio (no distortion), then resized.
    `invert` turns a dark-on-light drawing into MNIST's light-on-dark (255 - pixel)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    channels, height, width = input_shape
    if channels not in MODES:
        raise DataError(f"models with {channels} input channels cannot read image files (only 1 or 3)")
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not later
            img = img.convert(MODES[channels])
            if img.size != (width, height):
                img = ImageOps.fit(img, (width, height), method=Image.Resampling.LANCZOS)
            pixels = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file Pillow can read (use PNG or JPEG)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # truncated or corrupt
        raise DataError(f"{path}: cannot decode the image ({exc}); is the file complete?") from None
    if invert:
        pixels = 255 - pixels
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)  # (C, H, W)
