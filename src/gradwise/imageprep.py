"""Turn a picture of a digit (any size, PNG or JPG) into an MNIST-style 28x28 image.

The classic MNIST preprocessing: grayscale; light ink on a dark background (a picture with a
light background is inverted); crop to the digit's bounding box; scale the longer side to
20 pixels keeping the aspect ratio; paste into a 28x28 frame so that the centre of mass of
the ink sits at the centre.

Models trained on other data saw other formats, and a picture is best shown to a model in the
format it was trained on: ``style="digits"`` gives scikit-learn's 8x8 digits (the offline
fallback: digits filling an 8x8 grid, upsampled 3x and padded to 28x28), ``style="fashion"``
Fashion-MNIST's (the longer side scaled to 28 pixels, the box centred).

Untrusted pictures: the file is opened through :func:`gradwise.safefile.open_untrusted`
(regular files of at most :data:`MAX_FILE_BYTES`); only the formats in :data:`FORMATS` are
tried (never EPS/PostScript, which Pillow would hand to Ghostscript); the pixel count is
checked from the header, before decoding, against :data:`MAX_PIXELS`; Pillow's own limits
(decompression bombs, PNG text chunks over 1 MB) and every decoder failure become one-line
:class:`ImagePrepError` errors naming the file.

Example:
    >>> image = load_digit_image("my_seven.png")   # doctest: +SKIP
    >>> image.shape, image.dtype                    # doctest: +SKIP
    ((28, 28), dtype('uint8'))
"""

from __future__ import annotations

import os
import re
import struct
import warnings
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from gradwise._shown import shown
from gradwise.safefile import open_untrusted

__all__ = ["STYLES", "ImagePrepError", "load_digit_image", "prepare_digit"]

Style = Literal["mnist", "digits", "fashion"]
STYLES = ("mnist", "digits", "fashion")

FRAME = 28
"""Side of the output image, in pixels."""
MNIST_BOX = 20
"""Side of the box the digit is scaled into before centring (MNIST's convention)."""
INK_THRESHOLD = 0.25
"""Fraction of the strongest ink above which a pixel counts for the bounding box."""
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
"""The picture formats read; everything else (EPS/PS above all) is refused unopened."""
MAX_PIXELS = 25_000_000
"""Largest picture accepted (a 5000 x 5000 photo): the digit ends up 20 pixels tall, and
decoding takes about 9 bytes a pixel, so this keeps a picture under about 250 MB. Pillow's
own default (89 Mpx, then a warning) let a 176 KB PNG of 144 Mpx take 1.8 GB."""
MAX_FILE_BYTES = 64 << 20
"""Largest picture file read."""


class ImagePrepError(ValueError):
    """A picture cannot be read, or holds no digit to classify."""


def load_digit_image(path: str | os.PathLike[str], style: Style = "mnist") -> np.ndarray:
    """Read an image file and preprocess it with :func:`prepare_digit`.

    Raises:
        ImagePrepError: the file is missing, not an image, or blank; the message names it.

    Shape:
        returns (28, 28) uint8, ink bright (255) on a dark (0) background.
    """
    if not os.path.lexists(path):
        raise ImagePrepError(f"{shown(path)}: no such file")
    try:
        with open_untrusted(path, max_bytes=MAX_FILE_BYTES, error=ImagePrepError,
                            what="picture") as (handle, _), warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            with Image.open(handle, formats=FORMATS) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise _too_many_pixels(path, f"{image.width} x {image.height}")
                image.load()
                return prepare_digit(image, style=style)
    except ImagePrepError as error:
        message = str(error)
        named = message.startswith((shown(path), str(path)))
        raise ImagePrepError(message if named else f"{shown(path)}: {message}") from None
    except UnidentifiedImageError:
        raise ImagePrepError(
            f"{shown(path)}: not an image in a supported format ({', '.join(FORMATS)})"
        ) from None
    except Image.DecompressionBombError as error:
        # Pillow refuses above 2 x Image.MAX_IMAGE_PIXELS (179 Mpx) inside Image.open, before
        # our check sees the size: the same words as our own cap, not Pillow's "DOS attack"
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        raise _too_many_pixels(path, pixels.group(1) if pixels else "over 179 million") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError,
            ZeroDivisionError, MemoryError) as error:
        # Pillow's decoders report damage in all of these (a zTXt text bomb: ValueError)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if isinstance(error, ValueError) and (
            "MAX_TEXT_CHUNK" in reason or "MAX_TEXT_MEMORY" in reason
        ):
            raise _text_bomb(path, "MAX_TEXT_CHUNK" in reason) from None
        raise ImagePrepError(f"{shown(path)}: cannot decode the picture: {reason[:200]}") from None


def _text_bomb(path: str | os.PathLike[str], one_chunk: bool) -> ImagePrepError:
    """A PNG whose compressed text or colour-profile chunks expand past Pillow's caps
    (``PngImagePlugin.MAX_TEXT_CHUNK``, 1 MiB per chunk; ``MAX_TEXT_MEMORY``, 64 MiB in all),
    said in terms of the file rather than Pillow's internals."""
    from PIL import PngImagePlugin

    if one_chunk:
        what = (f"a compressed text or colour-profile chunk (zTXt, iTXt or iCCP) that expands "
                f"to more than {PngImagePlugin.MAX_TEXT_CHUNK >> 20} MiB")
    else:
        what = (f"text chunks (tEXt, zTXt, iTXt) of more than "
                f"{PngImagePlugin.MAX_TEXT_MEMORY >> 20} MiB in all")
    return ImagePrepError(f"{shown(path)}: refused: the picture holds {what}, the most a "
                          "picture may carry (a decompression bomb, or not a digit photo)")


def _too_many_pixels(path: str | os.PathLike[str], size: str) -> ImagePrepError:
    """The one message for a picture over :data:`MAX_PIXELS`, whoever noticed (the header
    check here or Pillow's decompression-bomb guard)."""
    return ImagePrepError(f"{shown(path)}: refused: {size} pixels, more than the "
                          f"{MAX_PIXELS // 1_000_000} million a digit picture may have")


def prepare_digit(image: Image.Image | np.ndarray, style: Style = "mnist") -> np.ndarray:
    """Preprocess one digit picture the way MNIST digits were (or sklearn digits, see module).

    Args:
        image: a Pillow image (any mode) or an array: (H, W) grayscale, (H, W, 3) RGB or
            (H, W, 4) RGBA, uint8 0..255 or float 0..1.
        style: ``"mnist"`` (20x20 box centred by mass in 28x28), ``"digits"`` (the 8x8
            scikit-learn format, upsampled to 28x28) or ``"fashion"`` (28x28 box, centred).

    Raises:
        ImagePrepError: the picture is blank (no ink stands out from the background).

    Shape:
        returns (28, 28) uint8, ink bright on a dark background.
    """
    if style not in STYLES:
        raise ValueError(f"prepare_digit: style must be one of {STYLES}, got {style!r}")
    ink = _ink_map(_as_pil(image))  # (H, W) float32 in [0, 1], 1 = strongest ink
    cropped = _crop_to_ink(ink)
    if style == "digits":
        return _to_digits_format(cropped)
    if style == "fashion":
        return _to_fashion_format(cropped)
    return _to_mnist_format(cropped)


def _as_pil(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImagePrepError(
            f"prepare_digit: expected an (H, W), (H, W, 3) or (H, W, 4) array, got {array.shape}"
        )
    if array.size == 0:
        raise ImagePrepError(f"prepare_digit: the image is empty, shape {array.shape}")
    if array.dtype.kind == "f":
        array = np.clip(np.nan_to_num(array) * 255.0, 0, 255)
    return Image.fromarray(np.asarray(array, dtype=np.uint8))


def _ink_map(image: Image.Image) -> np.ndarray:
    """Grayscale, inverted if the background is light, background level at 0, peak at 1."""
    if image.width == 0 or image.height == 0:
        raise ImagePrepError("the image is empty")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = _flatten_alpha(image.convert("RGBA"))
    gray = np.asarray(image.convert("L"), dtype=np.float32)  # (H, W) 0..255
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 127.5:
        gray = 255.0 - gray
        background = 255.0 - background
    ink = np.clip(gray - background, 0.0, None)
    peak = float(ink.max())
    if peak < 32.0:  # nothing stands out from the background by more than an eighth
        raise ImagePrepError("no digit found: the picture is blank or has almost no contrast")
    return ink / peak


def _flatten_alpha(rgba: Image.Image) -> Image.Image:
    """Put a transparent picture on a background that contrasts with its visible strokes."""
    pixels = np.asarray(rgba, dtype=np.float32)
    alpha = pixels[..., 3]
    visible = alpha > 127
    if not visible.any() or visible.all():
        return rgba.convert("RGB")
    stroke_level = float(pixels[..., :3][visible].mean())
    backdrop = (255, 255, 255) if stroke_level < 127.5 else (0, 0, 0)
    canvas = Image.new("RGB", rgba.size, backdrop)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def _crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The bounding box of the pixels with enough ink (faint noise does not widen it)."""
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resize_longer_side(ink: np.ndarray, side: int) -> np.ndarray:
    """Scale so the longer side is ``side`` pixels, keeping the aspect ratio (at least 1 px)."""
    height, width = ink.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # Pillow: (w, h)
    resized = Image.fromarray(ink.astype(np.float32), mode="F").resize(
        size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _to_mnist_format(cropped: np.ndarray) -> np.ndarray:
    digit = _resize_longer_side(cropped, MNIST_BOX)  # (h, w), max(h, w) == 20
    height, width = digit.shape
    rows, cols = np.indices(digit.shape)
    mass = float(digit.sum())
    center_row = float((rows * digit).sum()) / mass
    center_col = float((cols * digit).sum()) / mass
    # top-left corner that puts the centre of mass at the frame's centre, kept inside the frame
    top = int(np.clip(round(FRAME / 2 - 0.5 - center_row), 0, FRAME - height))
    left = int(np.clip(round(FRAME / 2 - 0.5 - center_col), 0, FRAME - width))
    frame = np.zeros((FRAME, FRAME), dtype=np.float32)
    frame[top : top + height, left : left + width] = digit
    return np.rint(frame * 255.0).astype(np.uint8)


def _to_digits_format(cropped: np.ndarray) -> np.ndarray:
    """scikit-learn's digits: a 32x32 bitmap summed in 4x4 blocks to 8x8 levels 0..16."""
    digit = _resize_longer_side(cropped, 32)
    height, width = digit.shape
    canvas = np.zeros((32, 32), dtype=np.float32)
    top, left = (32 - height) // 2, (32 - width) // 2
    canvas[top : top + height, left : left + width] = digit
    levels = np.rint(canvas.reshape(8, 4, 8, 4).mean(axis=(1, 3)) * 16.0)  # (8, 8) 0..16
    scaled = np.rint(levels * (255.0 / 16.0)).astype(np.uint8)
    upsampled = np.kron(scaled, np.ones((3, 3), dtype=np.uint8))  # (24, 24)
    return np.pad(upsampled, 2)  # (28, 28), as gradwise.data.load_digits_fallback does


def _to_fashion_format(cropped: np.ndarray) -> np.ndarray:
    item = _resize_longer_side(cropped, FRAME)
    height, width = item.shape
    frame = np.zeros((FRAME, FRAME), dtype=np.float32)
    top, left = (FRAME - height) // 2, (FRAME - width) // 2
    frame[top : top + height, left : left + width] = item
    return np.rint(frame * 255.0).astype(np.uint8)
