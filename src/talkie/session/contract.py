"""What a transport needs from a live conversation (the session <- transport boundary).

The transport (WebRTC, WebSocket, ...) never reaches into the session's stages: it pulls paced
media frames, pushes the user's audio, forwards client events and relays session events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from talkie.messages import AudioChunk, SeenFrame, VideoFrame
from talkie.session.events import SessionEvent

VIDEO_CLOCK_RATE = 90_000  # RTP clock for video timestamps
AUDIO_SAMPLE_RATE = 48_000  # output audio: 48 kHz mono, 20 ms frames (960 samples)
AUDIO_FRAME_SAMPLES = 960


@runtime_checkable
class LiveConversation(Protocol):
    """One user talking to one character.

    Media timing: every frame carries ``pts`` in seconds on the conversation's media clock, which
    starts at 0 when ``start()`` returns. ``next_video_frame``/``next_audio_frame`` return the
    next frame no earlier than its presentation time (they pace themselves), so a transport just
    sends what it gets, stamping RTP timestamps from ``pts``. Video is 24 fps; audio is 48 kHz mono
    in 20 ms frames (silence when the character is not speaking).

    Events (``events()``) are typed ``SessionEvent``s (``talkie.session.events``); their
    ``to_json()`` is what the page receives: ``state``, ``transcript`` (user, partial or final,
    or typed), ``backchannel`` ("mm-hm" said over the character: recorded, not a turn),
    ``reply`` (character text as placed), ``interrupted``, ``trace`` (per-turn latency),
    ``turn`` (a finished turn for transcripts), ``error``, ``tool_call`` (run this UI tool in
    the page and answer with a ``tool_result`` client event) and ``tool`` (a finished tool call
    for the trace: never arguments or results). The fields are documented on each class.
    Client events (``handle_client_event``): ``{"type": "ptt", "down": bool}`` (push to talk),
    ``{"type": "mode", "hands_free": bool}``, ``{"type": "text", "text": str}`` (typed message),
    ``{"type": "interrupt"}``, ``{"type": "tool_result", "id": str, "ok": bool, "result": any}``
    (the page's answer to a ``tool_call``; ``result`` is any JSON value, for the brain to read).
    ``{"type": "vision", "camera": bool, "screen": bool}`` (the page switched its camera or
    screen share on or off; either key). Unknown or malformed events, and a ``tool_result``
    for an id never issued, raise ``ValueError`` with a message.

    Session limits (the transport runs the timers): ``last_user_activity`` is the media-clock
    time of the user's last speech start or end or typed message (0.0, the start of the
    session, until then; the current time while the user is speaking); ``farewell(text)`` has
    the character say ``text`` (as a turn of its own, cancelling any answer in progress) and
    returns once it has been played, after which the transport closes the session.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def push_audio(self, chunk: AudioChunk) -> None: ...

    def wants_frame(self, source: str) -> bool:
        """Would a frame of the user's ``source`` ("camera" or "screen") arriving now be looked
        at? The transport converts and pushes only those (a few per second)."""
        ...

    def push_frame(self, frame: SeenFrame) -> None: ...

    async def next_video_frame(self, lead: float = 0.0) -> VideoFrame:
        """The next frame, no earlier than ``lead`` seconds before its presentation time: a
        transport that encodes frames itself asks for them early, then sends them on time."""
        ...

    def media_time(self) -> float:
        """Now on the media clock (seconds since ``start()`` returned)."""
        ...

    async def next_audio_frame(self) -> AudioChunk: ...

    def events(self) -> AsyncIterator[SessionEvent]: ...

    def handle_client_event(self, event: dict[str, Any]) -> None: ...

    @property
    def last_user_activity(self) -> float:
        """Media time of the user's last speech or typed message (now while they speak)."""
        ...

    async def farewell(self, text: str) -> None:
        """Say ``text`` as the character and return once it has played."""
        ...
