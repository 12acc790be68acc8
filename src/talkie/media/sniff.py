"""Recognise file types by their magic bytes, to say what a user actually gave us.

Only JPEG, PNG and WebP are accepted as images; everything else is named in the error message
("found a PDF document") so the user knows what to do.
"""

from __future__ import annotations

from talkie.errors import InvalidInputError

# Magic bytes of formats we cannot read, to tell the user what they actually gave us.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
    (b"8BPS", "a Photoshop document"),
    (b"PK\x03\x04", "a ZIP archive (or Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg audio/video file"),
    (b"fLaC", "a FLAC audio file"),
    (b"\x1a\x45\xdf\xa3", "a WebM/Matroska video"),
)
_ISO_BRANDS = {
    b"heic": "a HEIC photo",
    b"heix": "a HEIC photo",
    b"hevc": "a HEIC photo",
    b"heim": "a HEIC photo",
    b"heis": "a HEIC photo",
    b"mif1": "a HEIF photo",
    b"msf1": "a HEIF image sequence",
    b"avif": "an AVIF image",
    b"avis": "an AVIF image sequence",
}


def sniff_image_format(head: bytes) -> str | None:
    """Return ``"jpeg"``, ``"png"`` or ``"webp"`` from a file's first bytes, else ``None``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def describe_content(head: bytes) -> str:
    """A short human description of what some unsupported bytes look like ("a PDF document")."""
    if not head:
        return "an empty file"
    image = sniff_image_format(head)
    if image is not None:
        return {"jpeg": "a JPEG image", "png": "a PNG image", "webp": "a WebP image"}[image]
    for magic, what in _OTHER_SIGNATURES:
        if head.startswith(magic):
            return what
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":  # BMP: reserved bytes are zero
        return "a BMP image"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _ISO_BRANDS:
            return _ISO_BRANDS[brand]
        return "an MP4/QuickTime file"
    if len(head) >= 12 and head[:4] == b"RIFF":
        kind = head[8:12]
        if kind == b"WAVE":
            return "a WAV audio file"
        if kind == b"AVI ":
            return "an AVI video"
        return "a RIFF file"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<svg", b"<?xml")) and b"<svg" in head.lower():
        return "an SVG drawing"
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if _looks_like_text(head):
        return "plain text"
    return "data in an unknown format"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sample is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)


def unreadable_file(path: object, exc: OSError) -> InvalidInputError:
    """The one-line error for a file that exists but cannot be opened or read."""
    if isinstance(exc, PermissionError):
        return InvalidInputError(
            f"{path} cannot be read (permission denied); check its permissions"
        )
    return InvalidInputError(f"{path} cannot be read ({exc.strerror or exc}); check the file")
