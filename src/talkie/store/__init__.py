"""Persistence: the database (``Store``) and content-addressed media files (``MediaStore``)."""

from talkie.store.db import Store
from talkie.store.media import MediaStore
from talkie.store.records import (
    ADMIN_TENANT,
    ApiKeyRecord,
    CharacterRecord,
    MemoryRecord,
    Page,
    SessionRecord,
    TraceRecord,
    TranscriptEntry,
    VoiceRecord,
)

__all__ = [
    "ADMIN_TENANT", "ApiKeyRecord", "CharacterRecord", "MediaStore", "MemoryRecord", "Page",
    "SessionRecord", "Store", "TraceRecord", "TranscriptEntry", "VoiceRecord",
]  # fmt: skip
