"""Strict, safe image loading: JPEG, PNG or WebP in, RGB uint8 (H x W x 3) out.

Uploaded images are untrusted. The format is decided by magic bytes (never the extension), the
dimensions are read from the header and checked *before* any pixel is decoded (decompression
bombs), truncated or corrupt files are errors rather than half-grey pictures, EXIF orientation is
applied, and every colour mode is normalised to 8-bit RGB. Every failure raises
``InvalidInputError`` with one line that says what is wrong and what to do.
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from talkie.errors import InvalidInputError
from talkie.media.sniff import describe_content, sniff_image_format, unreadable_file

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * MIB
DEFAULT_MAX_PIXELS = 40_000_000
MIN_SIDE = 64

_USE = "use a JPEG, PNG or WebP file"
_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


def load_image(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a JPEG, PNG or WebP file into an RGB uint8 array of shape (H, W, 3).

    Raises ``InvalidInputError`` (one line: what is wrong, what to do) when the file is missing,
    unreadable, too big, not a supported image, too many pixels, corrupt/truncated or too small.
    """
    p = Path(path)
    name = p.name or str(p)
    if not p.exists():
        raise InvalidInputError(f"{p} does not exist; check the path to the image")
    if p.is_dir():
        raise InvalidInputError(
            f"{p} is a folder, not an image; give the path to a JPEG, PNG or WebP file"
        )
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise InvalidInputError(
                f"{name} is too large ({size / MIB:.1f} MiB, the limit is "
                f"{max_bytes / MIB:.0f} MiB); save it as a smaller JPEG"
            )
        with p.open("rb") as f:
            # Read at most one byte over the limit: the file may have grown since stat().
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise unreadable_file(p, exc) from exc
    return decode_image_bytes(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels)


def decode_image_bytes(
    data: bytes,
    *,
    name: str = "the image",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode JPEG/PNG/WebP bytes (e.g. an upload) into an RGB uint8 array of shape (H, W, 3).

    ``name`` is only used in error messages. Same checks and errors as ``load_image``.
    """
    if len(data) > max_bytes:
        raise InvalidInputError(
            f"{name} is too large ({len(data) / MIB:.1f} MiB, the limit is "
            f"{max_bytes / MIB:.0f} MiB); save it as a smaller JPEG"
        )
    fmt = sniff_image_format(data[:16])
    if fmt is None:
        raise InvalidInputError(
            f"{name} is not an image Talkie can read (found {describe_content(data[:512])}); {_USE}"
        )
    if fmt == "png":
        # Check the IHDR ourselves first: it costs nothing and does not depend on Pillow's limits.
        _check_dimensions(name, _png_header_size(data), max_pixels)
    img = _open_checked(data, fmt, name, max_pixels)
    try:
        _load_pixels(img, name, fmt)
        img = _apply_exif_orientation(img, name)
        rgb = _to_rgb(img)
    finally:
        img.close()
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise InvalidInputError(
            f"{name} is too small ({w}x{h} pixels); use an image at least {MIN_SIDE} pixels on "
            "each side (a face of 256 pixels or more works best)"
        )
    return rgb


def _png_header_size(data: bytes) -> tuple[int, int] | None:
    # PNG: 8-byte signature, then the IHDR chunk: length(4) "IHDR" width(4) height(4) ...
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _check_dimensions(name: str, size: tuple[int, int] | None, max_pixels: int) -> None:
    if size is None:
        return
    w, h = size
    if w * h > max_pixels:
        raise InvalidInputError(
            f"{name} has too many pixels ({w}x{h} = {w * h / 1e6:.0f} megapixels, the limit is "
            f"{max_pixels / 1e6:.0f}); resize it (e.g. to 4000x3000 or smaller) and try again"
        )


def _open_checked(data: bytes, fmt: str, name: str, max_pixels: int) -> Image.Image:
    """Open (header only, no pixel decoding) and check the dimensions."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns below its hard limit: treat the warning as an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInputError(
            f"{name} has too many pixels to decode safely (a possible decompression bomb); "
            "resize it (e.g. to 4000x3000 or smaller) and try again"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
        raise _corrupt(name, fmt, exc) from exc
    _check_dimensions(name, img.size, max_pixels)
    return img


def _load_pixels(img: Image.Image, name: str, fmt: str) -> None:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone flipped Pillow's global switch; truncated files would decode as grey garbage.
        logger.warning(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True; truncated images go undetected"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInputError(
            f"{name} has too many pixels to decode safely; resize it (e.g. to 4000x3000 or smaller)"
        ) from exc
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        struct.error,
        zlib.error,
        MemoryError,
    ) as exc:
        raise _corrupt(name, fmt, exc) from exc


def _corrupt(name: str, fmt: str, exc: BaseException) -> InvalidInputError:
    label = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP"}[fmt]
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # Pillow names in-memory files by their repr ("<_io.BytesIO object at 0x...>"): noise.
    reason = re.sub(r"\s*<_io\.\w+ object at 0x[0-9a-f]+>", "", reason).strip() or "unreadable"
    what = "truncated" if "truncated" in reason.lower() else "corrupt"
    return InvalidInputError(
        f"{name} looks like a {label} but is {what} ({reason}); re-export or re-download the image"
    )


def _apply_exif_orientation(img: Image.Image, name: str) -> Image.Image:
    try:
        rotated = ImageOps.exif_transpose(img)
    except Exception as exc:  # a broken EXIF block should not cost the user their photo
        logger.warning("ignoring unreadable EXIF orientation in %s: %s", name, exc)
        return img
    return rotated if rotated is not None else img


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> contiguous RGB uint8; alpha is composited over white."""
    mode = img.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit (or 32-bit) greyscale: scale to 8 bits (Pillow's convert() would clip instead).
        arr = np.asarray(img).astype(np.float64)
        scale = 255.0 / 65535.0 if mode != "F" else (255.0 if arr.max(initial=0) <= 1.0 else 1.0)
        grey = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    has_alpha = (
        mode in ("RGBA", "LA", "PA", "RGBa", "La")
        or (mode == "P" and "transparency" in img.info)
        or (mode in ("L", "RGB", "1") and "transparency" in img.info)
    )
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        rgb = rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
