"""A fake live conversation for transport/server/browser tests (no models, cheap frames).

It follows ``talkie.session.contract.LiveConversation``: self-paced 24 fps 1280x720 frames (a
moving test pattern with the frame number written on it), 20 ms audio frames (silence, with a
440 Hz beep while "speaking"), scripted events, and it records the microphone audio it gets.
A typed ``tool:NAME {json arguments}`` asks the page to run that UI tool (a ``tool_call``
event, as the real conversation sends); the page's ``tool_result`` answers are kept.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import cv2
import numpy as np

from talkie.messages import AudioChunk, VideoFrame
from talkie.session.contract import AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE
from talkie.session.events import (
    ReplySpoken,
    SessionError,
    SessionEvent,
    StateChanged,
    ToolCallRequested,
    TurnFinished,
    TurnTraced,
    UserTranscript,
)

FPS = 24.0
SIZE = (1280, 720)
CATCH_UP = 0.25  # a consumer later than this skips ahead instead of draining a burst


def _background() -> np.ndarray:
    w, h = SIZE
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (x * 0.6 + 40).astype(np.uint8)
    img[..., 1] = (y * 0.5 + 60).astype(np.uint8)
    img[..., 2] = 150
    return img


class FakeConversation:
    """Implements ``LiveConversation`` with a test pattern and a beep."""

    instances: list[FakeConversation] = []  # every conversation created (tests inspect them)

    def __init__(self, character: Any = None) -> None:
        self.character = character
        self._bg = _background()
        self._t0 = 0.0
        self._video_index = 0
        self._audio_index = 0
        self._speak_until = -1.0
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._turn = 0
        self.started = False
        self.closed = False
        self.mic_seconds = 0.0
        self.mic_peak = 0.0
        self.mic_pts: list[float] = []
        self.client_events: list[dict[str, Any]] = []
        self._heard_reported = 0
        self._last_activity = 0.0  # a loud microphone chunk or a typed message
        self.farewells: list[str] = []
        self.tool_results: list[dict[str, Any]] = []
        FakeConversation.instances.append(self)

    # -- LiveConversation ----------------------------------------------------------------------

    async def start(self) -> None:
        self._t0 = time.monotonic()
        self.started = True
        self._emit(StateChanged(t=self.now(), state="listening"))

    async def close(self) -> None:
        self.closed = True
        self._events.put_nowait(None)

    def push_audio(self, chunk: AudioChunk) -> None:
        self.mic_seconds += chunk.duration
        peak = float(np.max(np.abs(chunk.samples), initial=0.0))
        self.mic_peak = max(self.mic_peak, peak)
        if peak > 0.05:  # "speech": anything louder than a quiet room
            self._last_activity = self.now()
        if len(self.mic_pts) < 5000:
            self.mic_pts.append(chunk.pts)
        if int(self.mic_seconds) > self._heard_reported:
            self._heard_reported = int(self.mic_seconds)
            self._emit(UserTranscript(t=self.now(), text=f"heard {self._heard_reported} s"))

    async def next_video_frame(self, lead: float = 0.0) -> VideoFrame:
        index = await self._pace("_video_index", FPS, lead)
        img = self._bg.copy()
        t = index / FPS
        cx = int(640 + 400 * np.sin(t * 1.3))
        cy = int(360 + 200 * np.cos(t * 0.9))
        cv2.circle(img, (cx, cy), 60, (250, 240, 60), -1)
        cv2.putText(
            img, f"frame {index}", (40, 90), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (255, 255, 255), 5
        )
        return VideoFrame(img, pts=t, index=index)

    async def next_audio_frame(self) -> AudioChunk:
        rate = AUDIO_SAMPLE_RATE
        index = await self._pace("_audio_index", rate / AUDIO_FRAME_SAMPLES)
        t = index * AUDIO_FRAME_SAMPLES / rate
        if t < self._speak_until:
            n = np.arange(index * AUDIO_FRAME_SAMPLES, (index + 1) * AUDIO_FRAME_SAMPLES)
            samples = (0.3 * np.sin(2 * np.pi * 440.0 * n / rate)).astype(np.float32)
        else:
            samples = np.zeros(AUDIO_FRAME_SAMPLES, np.float32)
        return AudioChunk(samples, rate, pts=t)

    async def events(self) -> AsyncIterator[SessionEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    def handle_client_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        self.client_events.append(event)
        if kind == "ptt":
            if not isinstance(event.get("down"), bool):
                raise ValueError('"ptt" needs "down": true or false')
        elif kind == "mode":
            if not isinstance(event.get("hands_free"), bool):
                raise ValueError('"mode" needs "hands_free": true or false')
        elif kind == "interrupt":
            self._speak_until = -1.0
            self._emit(StateChanged(t=self.now(), state="listening"))
        elif kind == "text":
            text = event.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError('"text" needs a non-empty "text"')
            self._last_activity = self.now()
            if text.startswith("tool:"):
                name, _, args = text[5:].partition(" ")
                call = ToolCallRequested(
                    t=self.now(), id="call_" + secrets.token_hex(4), name=name,
                    arguments=json.loads(args or "{}"),
                )  # fmt: skip
                self._emit(call)
            elif text.startswith("fail:"):  # as the real one reports a failed provider
                self._emit(SessionError(t=self.now(), message="it failed", stage=text[5:].strip()))
            else:
                self._reply(text.strip())
        elif kind == "tool_result":
            self.tool_results.append(event)
        elif kind == "vision":
            if not all(isinstance(event.get(k), bool) for k in ("camera", "screen") if k in event):
                raise ValueError('"vision" needs boolean "camera" and/or "screen"')
        else:
            raise ValueError(f"unknown client event type {kind!r}")

    def wants_frame(self, source: str) -> bool:
        return False  # this fake has no eyes: camera and screen frames are dropped

    def push_frame(self, frame: Any) -> None:
        pass

    @property
    def last_user_activity(self) -> float:
        return self._last_activity

    async def farewell(self, text: str) -> None:
        """Say goodbye: a reply event and a 0.8 s beep, returning once it has played."""
        self.farewells.append(text)
        now = self.now()
        self._emit(ReplySpoken(t=now, text=text, start=now))
        self._emit(StateChanged(t=now, state="speaking"))
        self._speak_until = now + 0.8
        await asyncio.sleep(0.8)

    # -- helpers -------------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self._t0

    def media_time(self) -> float:
        return self.now()

    def _emit(self, event: SessionEvent) -> None:
        if not self.closed:
            self._events.put_nowait(event)

    def _reply(self, text: str) -> None:
        self._turn += 1
        now = self.now()
        self._emit(UserTranscript(t=now, text=text, final=True, typed=True))
        self._emit(StateChanged(t=now, state="thinking"))
        reply = f"You said: {text}"
        self._emit(ReplySpoken(t=now, text=reply, start=now + 0.22))
        self._emit(StateChanged(t=now, state="speaking"))
        self._speak_until = now + 1.0
        marks = {
            "speech_end": now,
            "asr_final": now + 0.02,
            "brain_first_token": now + 0.05,
            "first_clause": now + 0.06,
            "tts_first_audio": now + 0.15,
            "endpoint": now + 0.16,
            "first_frame_sent": now + 0.2,
            "answer_start": now + 0.22,
        }
        relative = {k: round(v - now, 4) for k, v in marks.items()}
        self._emit(TurnTraced(t=now, turn=self._turn, marks=marks, relative=relative, latency=0.22))
        asyncio.get_running_loop().call_later(
            1.0, self._emit, StateChanged(t=now + 1.0, state="listening")
        )
        # the finished turn, as the real conversation reports it (the server records it)
        wall = time.time()
        self._emit(
            TurnFinished(
                t=now, turn=self._turn, user_text=text, typed=True, said=reply,
                started_at=wall, ended_at=wall + 1.0,
                trace={"turn": self._turn, "marks": marks, "latency": 0.22, "error": ""},
            )
        )  # fmt: skip

    async def _pace(self, attr: str, rate: float, lead: float = 0.0) -> int:
        if self.closed:
            raise RuntimeError("the conversation is closed")
        index: int = getattr(self, attr)
        now = self.now()
        if now - index / rate > CATCH_UP:
            index = int(now * rate)
        delay = index / rate - lead - now
        if delay > 0:
            await asyncio.sleep(delay)
        setattr(self, attr, index + 1)
        return index
