"""Reading an uploaded photo from an HTTP request: size-capped, multipart or raw image body.

A small ``multipart/form-data`` parser lives here so the server needs no extra dependency
(Starlette's form parsing requires ``python-multipart``), and so the whole request is capped in
size before it is read into memory.
"""

from __future__ import annotations

import email.message
from dataclasses import dataclass

from starlette.requests import Request

from talkie.media.sniff import describe_content, sniff_image_format
from talkie.server.errors import ApiError

MIB = 1024 * 1024
_FORM_OVERHEAD = 64 * 1024  # multipart headers and the name field on top of the image
MAX_FIELD_CHARS = 1_000_000  # a text field of the form (the knowledge text is the longest)
MAX_SAMPLE_BYTES = 20 * MIB  # a voice sample to match or clone (30 s of speech is far less)
SAMPLE_BODY_LIMIT = MAX_SAMPLE_BYTES + _FORM_OVERHEAD


def upload_body_limit(max_bytes: int, max_field_chars: int = MAX_FIELD_CHARS) -> int:
    """The most bytes a photo upload request may carry: the photo, its text fields (UTF-8, up
    to 4 bytes a character) and the form's own overhead."""
    return max_bytes + max_field_chars * 4 + _FORM_OVERHEAD


@dataclass(frozen=True)
class Upload:
    data: bytes
    fields: dict[str, str]  # the form's text fields (or the query string for a raw image body)
    filename: str


@dataclass(frozen=True)
class _Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


async def read_upload(
    request: Request, *, max_bytes: int, text_fields: frozenset[str], max_field_chars: int
) -> Upload:
    """The image and text fields from a multipart form (file field ``image``), or a raw image
    body with the fields in the query string. Raises ``ApiError`` (413, 415, 400) naming the
    field; unknown and repeated fields are refused."""
    content_type = request.headers.get("content-type", "")
    limit = upload_body_limit(max_bytes, max_field_chars)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), max_bytes)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise _too_large(len(body), max_bytes)
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "multipart/form-data":
        parts = parse_multipart(bytes(body), content_type)
        seen: set[str] = set()
        for part in parts:
            if part.name in seen:
                raise ApiError(400, "invalid_field", f"{part.name[:60]}: given more than once")
            seen.add(part.name)
            if part.name != "image" and part.name not in text_fields:
                raise ApiError(400, "unknown_field", f"{part.name[:60]!r} is not a known field")
        image = next((p for p in parts if p.name == "image"), None)
        if image is None:
            raise ApiError(400, "no_image", 'image: the form has no "image" file field')
        fields = {p.name: _text(p) for p in parts if p.name != "image"}
        upload = Upload(image.data, fields, image.filename or "")
    elif mime.startswith("image/") or mime == "application/octet-stream":
        fields = {}
        for key, value in request.query_params.multi_items():
            if key not in text_fields:
                raise ApiError(400, "unknown_field", f"{key[:60]!r} is not a known field")
            fields[key] = value
        upload = Upload(bytes(body), fields, "")
    else:
        raise ApiError(
            415,
            "unsupported_type",
            f'send the photo as multipart/form-data (field "image") or as an image body, '
            f"not {mime[:60] or 'no content type'}",
        )
    for key, value in upload.fields.items():
        if len(value) > max_field_chars:
            raise ApiError(400, "invalid_field", f"{key}: too long ({len(value)} characters)")
    if not upload.data:
        raise ApiError(400, "empty", "image: the uploaded image is empty; choose a photo file")
    if len(upload.data) > max_bytes:
        raise _too_large(len(upload.data), max_bytes)
    if sniff_image_format(upload.data[:16]) is None:
        found = describe_content(upload.data[:512])
        raise ApiError(
            415,
            "not_an_image",
            f"image: the upload is not an image Talkie can read (found {found}); "
            "use a JPEG, PNG or WebP photo",
        )
    return upload


def _text(part: _Part) -> str:
    try:
        return part.data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_field", f"{part.name}: not UTF-8 text") from None


def parse_multipart(body: bytes, content_type: str) -> list[_Part]:
    """Split a ``multipart/form-data`` body into its parts (exact bytes, no re-encoding)."""
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ApiError(400, "bad_form", "the multipart form has no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise ApiError(400, "bad_form", "the multipart form is malformed (no parts)")
    parts: list[_Part] = []
    for raw in chunks[1:]:
        if raw.startswith(b"--"):
            break  # closing delimiter
        raw = raw[2:] if raw.startswith(b"\r\n") else raw
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            raise ApiError(400, "bad_form", "the multipart form is malformed (part headers)")
        headers = email.message.Message()
        for line in raw[:end].decode("latin-1").split("\r\n"):
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip()] = value.strip()
        data = raw[end + 4 :]
        if data.endswith(b"\r\n"):
            data = data[:-2]
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_param("filename", header="content-disposition")
        parts.append(
            _Part(
                name=name if isinstance(name, str) else "",
                filename=filename if isinstance(filename, str) else None,
                content_type=headers.get("content-type", ""),
                data=data,
            )
        )
    return parts


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"the photo is too large ({size / MIB:.1f} MiB, the limit is {limit / MIB:.0f} MiB); "
        "save it as a smaller JPEG",
    )
