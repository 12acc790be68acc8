"""talkie.media.image: strict loading of untrusted JPEG/PNG/WebP files."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from talkie.errors import InvalidInputError
from talkie.media.image import decode_image_bytes, load_image

# -- fixture builders -------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` RGB pixels but whose file is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def one_line_error(excinfo: pytest.ExceptionInfo[InvalidInputError]) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert ";" in msg, "the message should say what to do after what is wrong"
    return msg


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- good inputs -------------------------------------------------------------------------------


def test_loads_png_as_rgb_uint8(astronaut_path: Path) -> None:
    img = load_image(astronaut_path)
    assert img.shape == (512, 512, 3)
    assert img.dtype == np.uint8
    assert img.flags["C_CONTIGUOUS"]
    from skimage import data

    np.testing.assert_array_equal(img, data.astronaut())


def test_loads_cat(cat_path: Path) -> None:
    assert load_image(cat_path).shape == (300, 451, 3)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepts_jpeg_png_webp_by_content_not_extension(
    tmp_path: Path, portrait: Image.Image, fmt: str
) -> None:
    path = write(tmp_path, "picture.dat", encode(portrait, fmt))
    img = load_image(path)
    assert img.shape == (512, 512, 3)
    assert np.abs(img.astype(int) - np.asarray(portrait, dtype=int)).mean() < 8


def test_decode_bytes_for_uploads(portrait: Image.Image) -> None:
    img = decode_image_bytes(encode(portrait, "JPEG"), name="upload.jpg")
    assert img.shape == (512, 512, 3)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path, portrait: Image.Image) -> None:
    path = write(tmp_path, "cmyk.jpg", encode(portrait.convert("CMYK"), "JPEG", quality=95))
    img = load_image(path)
    assert img.shape == (512, 512, 3)
    assert np.abs(img.astype(int) - np.asarray(portrait, dtype=int)).mean() < 8


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # A 200x100 landscape with "rotate 90 CW" in EXIF is shown as a 100x200 portrait.
    src = np.zeros((100, 200, 3), np.uint8)
    src[:, :100] = (255, 0, 0)  # left half red
    src[:, 100:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6
    path = write(tmp_path, "rotated.jpg", encode(Image.fromarray(src), "JPEG", exif=exif.tobytes()))
    img = load_image(path)
    assert img.shape == (200, 100, 3)
    # After a 90-degree clockwise turn the left (red) half is on top.
    assert img[20, 50, 0] > 200 and img[20, 50, 2] < 60
    assert img[180, 50, 2] > 200 and img[180, 50, 0] < 60


def test_rgba_is_composited_over_white(tmp_path: Path, portrait: Image.Image) -> None:
    rgba = np.asarray(portrait.convert("RGBA")).copy()
    rgba[:, :256, 3] = 0  # left half fully transparent
    rgba[:, 256:, 3] = 255
    path = write(tmp_path, "alpha.png", encode(Image.fromarray(rgba), "PNG"))
    img = load_image(path)
    assert (img[:, :256] == 255).all()
    np.testing.assert_array_equal(img[:, 256:], np.asarray(portrait)[:, 256:])


@pytest.mark.parametrize("mode", ["L", "LA", "P", "1"])
def test_other_modes_become_rgb(tmp_path: Path, portrait: Image.Image, mode: str) -> None:
    path = write(tmp_path, f"{mode}.png", encode(portrait.convert(mode), "PNG"))
    img = load_image(path)
    assert img.shape == (512, 512, 3)
    assert img.dtype == np.uint8


def test_palette_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (80, 80), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.paste(1, (40, 0, 80, 80))
    path = write(tmp_path, "pal.png", encode(pal, "PNG", transparency=0))
    img = load_image(path)
    assert (img[:, :40] == 255).all()  # transparent black -> white
    assert (img[:, 40:] == (255, 0, 0)).all()


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 128 * 128).reshape(128, 128).astype(np.uint16)
    path = write(tmp_path, "g16.png", encode(Image.fromarray(ramp), "PNG"))
    img = load_image(path)
    assert img.shape == (128, 128, 3)
    assert img[0, 0, 0] == 0 and img[-1, -1, 0] == 255
    assert 120 <= img[64, 0, 0] <= 135  # mid-grey stays mid-grey


def test_16_bit_rgb_png(tmp_path: Path) -> None:
    # Pillow cannot write 48-bit RGB; build it from raw scanlines.
    w = h = 64
    px = np.full((h, w, 3), 0x8000, dtype=">u2")
    raw = b"".join(b"\x00" + px[y].tobytes() for y in range(h))
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )
    img = load_image(write(tmp_path, "rgb48.png", data))
    assert img.shape == (64, 64, 3)
    assert 120 <= int(img[0, 0, 0]) <= 135


# -- bad inputs --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist") as e:
        load_image(tmp_path / "nope.jpg")
    one_line_error(e)


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="folder"):
        load_image(tmp_path)


def test_unreadable_file(
    tmp_path: Path, portrait: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "locked.png", encode(portrait, "PNG"))
    if os.geteuid() == 0:  # root reads anything: simulate the permission error instead

        def deny(self: Path, *args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "open", deny)
    else:
        path.chmod(0)
    with pytest.raises(InvalidInputError, match=r"cannot be read \(permission denied\)"):
        load_image(path)


def test_text_file_renamed_png(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.png", b"these are my notes, not a picture\n" * 10)
    with pytest.raises(InvalidInputError) as e:
        load_image(path)
    msg = one_line_error(e)
    assert msg.startswith("notes.png is not an image Talkie can read (found plain text)")
    assert "JPEG, PNG or WebP" in msg


def test_pdf_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "photo.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    with pytest.raises(InvalidInputError) as e:
        load_image(path)
    assert one_line_error(e) == (
        "photo.jpg is not an image Talkie can read (found a PDF document); "
        "use a JPEG, PNG or WebP file"
    )


@pytest.mark.parametrize(
    ("fmt", "found"), [("GIF", "a GIF image"), ("BMP", "a BMP image"), ("TIFF", "a TIFF image")]
)
def test_other_image_formats_are_named(
    tmp_path: Path, portrait: Image.Image, fmt: str, found: str
) -> None:
    path = write(tmp_path, "pic.png", encode(portrait, fmt))
    with pytest.raises(InvalidInputError, match=f"found {found}"):
        load_image(path)


def test_heic_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "IMG_0001.jpg", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    with pytest.raises(InvalidInputError, match="found a HEIC photo"):
        load_image(path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="found an empty file"):
        load_image(write(tmp_path, "empty.png", b""))


def test_too_many_bytes(tmp_path: Path, portrait: Image.Image) -> None:
    path = write(tmp_path, "big.png", encode(portrait, "PNG"))
    with pytest.raises(InvalidInputError, match="too large") as e:
        load_image(path, max_bytes=1000)
    one_line_error(e)
    with pytest.raises(InvalidInputError, match="too large"):
        decode_image_bytes(path.read_bytes(), max_bytes=1000)


def test_decompression_bomb_rejected_from_header(tmp_path: Path) -> None:
    data = bomb_png(100_000, 100_000)  # 10 gigapixels in ~100 bytes
    assert len(data) < 200
    path = write(tmp_path, "bomb.png", data)
    with pytest.raises(InvalidInputError, match="too many pixels") as e:
        load_image(path)
    one_line_error(e)


def test_max_pixels_is_enforced_below_pillows_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "large.png", bomb_png(8000, 6000))  # 48 MP > 40 MP default
    with pytest.raises(InvalidInputError, match="48 megapixels"):
        load_image(path)


def test_pillows_own_bomb_guard_is_an_error_too() -> None:
    # With our limit lifted, Pillow's decompression-bomb error must still become our error.
    with pytest.raises(InvalidInputError, match="too many pixels"):
        decode_image_bytes(bomb_png(20_000, 20_000), max_pixels=10**12)


@pytest.mark.parametrize("side", [7000, 60000])  # 49 MP (our limit), 3.6 GP (Pillow's too)
def test_jpeg_bomb_checked_from_header(portrait: Image.Image, side: int) -> None:
    # Patch the SOF0 dimensions of a real JPEG: decoding would allocate side*side*3 bytes.
    data = bytearray(encode(portrait, "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    with pytest.raises(InvalidInputError, match="too many pixels"):
        decode_image_bytes(bytes(data), name="huge.jpg")


@pytest.mark.parametrize(("fmt", "keep"), [("JPEG", 0.5), ("PNG", 0.5), ("WEBP", 0.5)])
def test_truncated_files_are_errors(
    tmp_path: Path, portrait: Image.Image, fmt: str, keep: float
) -> None:
    full = encode(portrait, fmt)
    path = write(tmp_path, f"cut.{fmt.lower()}", full[: int(len(full) * keep)])
    with pytest.raises(InvalidInputError, match="truncated|corrupt") as e:
        load_image(path)
    one_line_error(e)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corrupt_png_data(tmp_path: Path, portrait: Image.Image) -> None:
    data = bytearray(encode(portrait, "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 100 : idat + 400] = b"\x55" * 300  # garbage inside the compressed stream
    with pytest.raises(InvalidInputError, match="corrupt|truncated"):
        load_image(write(tmp_path, "bad.png", bytes(data)))


def test_tiny_image(tmp_path: Path) -> None:
    path = write(tmp_path, "dot.png", encode(Image.new("RGB", (1, 1)), "PNG"))
    with pytest.raises(InvalidInputError, match=r"too small \(1x1 pixels\)") as e:
        load_image(path)
    one_line_error(e)


def test_thin_image(tmp_path: Path) -> None:
    path = write(tmp_path, "strip.png", encode(Image.new("RGB", (1000, 40)), "PNG"))
    with pytest.raises(InvalidInputError, match="too small"):
        load_image(path)
