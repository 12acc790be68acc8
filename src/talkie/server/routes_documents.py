"""/v1/characters/{id}/documents: the character's knowledge base (Markdown and plain text), and
/v1/characters/{id}/search to see which passages a question finds.

A document is uploaded as the raw request body (``text/markdown`` or ``text/plain``) under an id
the client chooses; uploading the same id again replaces it, deleting it removes its passages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from talkie.brain.kb import MAX_DOCUMENT_BYTES, DocumentInfo
from talkie.server.context import Caller, Svc, character_for
from talkie.server.errors import ApiError, errors
from talkie.server.models import utc

router = APIRouter(prefix="/v1/characters/{character_id}", tags=["knowledge"])

_TEXT_TYPES = {
    "text/markdown": "markdown", "text/x-markdown": "markdown", "text/plain": "text",
}  # fmt: skip
DocumentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]


class Document(BaseModel):
    id: str
    source: str
    title: str | None
    kind: str
    chars: int
    passages: int
    sha256: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: DocumentInfo) -> Document:
        return cls(
            id=d.document_id, source=d.source, title=d.title, kind=d.kind, chars=d.chars,
            passages=d.chunks, sha256=d.sha256, created_at=utc(d.created_at),
            updated_at=utc(d.updated_at),
        )  # fmt: skip


class DocumentList(BaseModel):
    character_id: str
    documents: list[Document]


class Hit(BaseModel):
    document_id: str
    source: str
    heading: str
    text: str
    score: float


class SearchResult(BaseModel):
    query: str
    passages: list[Hit]


_BODY = {
    "requestBody": {
        "required": True,
        "content": {t: {"schema": {"type": "string"}} for t in _TEXT_TYPES},
    }
}


@router.put(
    "/documents/{document_id}",
    response_model=Document,
    openapi_extra=_BODY,
    responses=errors(400, 401, 403, 404, 413, 415),
    summary="Upload or replace a knowledge document (Markdown is split by its headings)",
)
async def put_document(
    character_id: str,
    document_id: DocumentId,
    request: Request,
    who: Caller,
    svc: Svc,
    source: Annotated[str | None, Query(max_length=200)] = None,
) -> Document:
    who.require("characters:manage")
    await character_for(svc, who, character_id, writable=True)
    mime = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    kind = _TEXT_TYPES.get(mime)
    if kind is None:
        raise ApiError(
            415, "unsupported_type",
            f"send the document as text/markdown or text/plain, not {mime[:60] or 'nothing'}",
        )  # fmt: skip
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_DOCUMENT_BYTES:
            raise ApiError(
                413, "too_large", f"the document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB"
            )
    name = source or document_id + (".md" if kind == "markdown" else ".txt")
    info = await svc.run(
        lambda: svc.knowledge().put_document(
            character_id, document_id, source=name, text=bytes(body),
            kind=kind,  # type: ignore[arg-type]
        )
    )  # fmt: skip
    return Document.of(info)


@router.get(
    "/documents",
    response_model=DocumentList,
    responses=errors(400, 401, 403, 404),
    summary="List the character's knowledge documents",
)
async def list_documents(character_id: str, who: Caller, svc: Svc) -> DocumentList:
    who.require("characters:read")
    await character_for(svc, who, character_id)
    docs = await svc.run(svc.knowledge().list_documents, character_id)
    return DocumentList(character_id=character_id, documents=[Document.of(d) for d in docs])


@router.delete(
    "/documents/{document_id}",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
    summary="Delete a knowledge document and its passages",
)
async def delete_document(
    character_id: str, document_id: DocumentId, who: Caller, svc: Svc
) -> Response:
    who.require("characters:manage")
    await character_for(svc, who, character_id, writable=True)
    if not await svc.run(svc.knowledge().delete_document, character_id, document_id):
        raise ApiError(404, "unknown_document", f"no document {document_id!r}")
    return Response(status_code=204)


@router.get(
    "/search",
    response_model=SearchResult,
    responses=errors(400, 401, 403, 404),
    summary="The passages of the character's documents that best match a question",
)
async def search(
    character_id: str,
    who: Caller,
    svc: Svc,
    q: Annotated[str, Query(min_length=1, max_length=1000)],
    k: Annotated[int, Query(ge=1, le=10)] = 3,
) -> SearchResult:
    who.require("characters:read")
    await character_for(svc, who, character_id)
    found = await svc.run(lambda: svc.knowledge().search(character_id, q, k=k))
    return SearchResult(
        query=q,
        passages=[
            Hit(document_id=p.document_id, source=p.source, heading=p.heading, text=p.text,
                score=round(p.score, 4))
            for p in found
        ],
    )  # fmt: skip
