"""Checks on what users upload to the knowledge base: ids, source names, document text.

Every problem is an ``InvalidInputError`` whose message says what is wrong and what to do (the
server turns it into a 4xx answer).
"""

from __future__ import annotations

import re
import unicodedata

from talkie.errors import InvalidInputError

__all__ = ["MAX_DOCUMENT_BYTES", "check_id", "check_source", "document_kind", "document_text"]

# 2 MB of text is a 400-page book: far beyond a handbook, and it keeps a mistaken upload (a
# video, a database dump) from tying up the embedding model for minutes.
MAX_DOCUMENT_BYTES = 2_000_000
_MAX_ID_CHARS = 200
_MAX_SOURCE_CHARS = 255
_MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")
# Control characters other than tab, newline, carriage return and form feed: real text has
# (almost) none, binary files have many.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MAX_CONTROL_SHARE = 0.001
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_id(value: object, what: str) -> str:
    """A character or document id: non-empty text of at most 200 characters, one line."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be text, not {type(value).__name__}")
    value = value.strip()
    if not value:
        raise InvalidInputError(f"{what} is empty")
    if len(value) > _MAX_ID_CHARS or _CONTROL.search(value) or "\n" in value:
        raise InvalidInputError(f"{what} must be one line of at most {_MAX_ID_CHARS} characters")
    return value


def check_source(value: object) -> str:
    """A source name (usually the uploaded file's name): what the character cites."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("a document needs a source name (its file name)")
    value = " ".join(value.split())
    if len(value) > _MAX_SOURCE_CHARS or _CONTROL.search(value):
        raise InvalidInputError(
            f"source name must be at most {_MAX_SOURCE_CHARS} printable characters"
        )
    return value


def document_kind(kind: str | None, source: str) -> str:
    """``"markdown"`` or ``"text"``: as given, else from the source's file suffix."""
    if kind is None:
        return "markdown" if source.lower().endswith(_MARKDOWN_SUFFIXES) else "text"
    if kind not in ("markdown", "text"):
        raise InvalidInputError(f"document kind must be 'markdown' or 'text', not {kind!r}")
    return kind


def document_text(text: str | bytes, source: str) -> str:
    """The document as clean text: UTF-8 decoded (a BOM is dropped), NFC-normalised.

    Raises ``InvalidInputError`` for binary content, other encodings, more than
    ``MAX_DOCUMENT_BYTES`` or no visible text.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        raw = bytes(text)
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise _too_large(source, len(raw))
        if b"\x00" in raw:
            raise InvalidInputError(f"{source} looks like a binary file; upload Markdown or text")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"{source} is not UTF-8 text (byte {exc.start}); save it as UTF-8 and upload "
                "it again"
            ) from exc
    elif isinstance(text, str):
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size > MAX_DOCUMENT_BYTES:
            raise _too_large(source, size)
        text = text.removeprefix("\ufeff")
    else:
        raise InvalidInputError(f"document text must be str or bytes, not {type(text).__name__}")
    controls = len(_CONTROL.findall(text))
    if "\x00" in text or controls > max(2, _MAX_CONTROL_SHARE * len(text)):
        raise InvalidInputError(f"{source} looks like a binary file; upload Markdown or text")
    if _SURROGATE.search(text):
        raise InvalidInputError(f"{source} contains invalid characters (lone surrogates)")
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        raise InvalidInputError(f"{source} is empty")
    return text


def _too_large(source: str, size: int) -> InvalidInputError:
    return InvalidInputError(
        f"{source} is {size / 1e6:.1f} MB; the limit is {MAX_DOCUMENT_BYTES / 1e6:.0f} MB per "
        "document (split it into several files)"
    )
