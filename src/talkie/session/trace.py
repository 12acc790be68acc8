"""Per-turn latency traces: when each stage of a turn happened, on the conversation's clock."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talkie.session.events import TurnFinished, TurnTraced

log = logging.getLogger(__name__)

# Stages of a turn. ``speech_end`` is the end of the user's (last) speech as present in the
# input audio; ``asr_final`` when its final transcript was ready; the answer is prepared from
# there (``brain_first_token``, ``first_clause``, ``tts_first_audio``) while the session waits to
# be sure the user is done; ``endpoint`` is when it judged the turn complete (the answer may then
# be heard); ``answer_start`` is when the answer's first audio sample plays (its video frame
# shows the mouth moving at the same presentation time).
STAGES = (
    "speech_end",
    "asr_final",
    "brain_first_token",
    "first_clause",
    "tts_first_audio",
    "endpoint",
    "first_frame_sent",
    "answer_start",
)


@dataclass
class TurnTrace:
    turn: int
    user_text: str = ""
    marks: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    error: str = ""
    typed: bool = False
    started_at: float = field(default_factory=time.time)  # wall clock, for transcripts
    # Tool calls of this turn, in order: {name, kind, ok, reason, elapsed_ms} (no arguments,
    # results or secrets: traces are stored and shown through the API).
    tools: list[dict[str, Any]] = field(default_factory=list)
    # The vision observation the answer was given (``Sight.reference()``: which inputs were
    # on, when the presence and screen text it used were observed, whether a picture went to
    # the brain; never text or pixels).
    vision: dict[str, Any] = field(default_factory=dict)

    def mark(self, stage: str, t: float) -> None:
        """Record the first time ``stage`` happened (later marks of the same stage are ignored)."""
        self.marks.setdefault(stage, round(t, 4))

    @property
    def latency(self) -> float | None:
        """End of user speech -> first answer audio playing (seconds), if both are known."""
        if "speech_end" in self.marks and "answer_start" in self.marks:
            return round(self.marks["answer_start"] - self.marks["speech_end"], 4)
        return None

    def as_event(self, t: float) -> TurnTraced:
        base = self.marks.get("speech_end")
        relative = (
            {k: round(v - base, 4) for k, v in self.marks.items()} if base is not None else {}
        )
        return TurnTraced(
            t=t, turn=self.turn, marks=dict(self.marks), relative=relative,
            latency=self.latency, interrupted=self.interrupted, error=self.error,
            tools=[dict(call) for call in self.tools], vision=dict(self.vision),
        )  # fmt: skip

    def turn_event(self, t: float, said: str, backchannels: tuple[str, ...] = ()) -> TurnFinished:
        """The finished turn for transcripts: what the user said, what the character said (only
        the words that were heard, if cut), when (wall clock), and the latency trace."""
        trace = self.as_event(t).to_json()
        del trace["type"], trace["t"]
        return TurnFinished(
            t=t, turn=self.turn, user_text=self.user_text, typed=self.typed, said=said,
            started_at=round(self.started_at, 3), ended_at=round(time.time(), 3),
            interrupted=self.interrupted, backchannels=backchannels, trace=trace,
        )  # fmt: skip


class TraceLog:
    """Appends finished traces as JSON lines (no user text: it is personal data)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, session_id: str, trace: TurnTrace) -> None:
        event = trace.as_event(0.0).to_json()
        record = {
            "session": session_id,
            **{k: v for k, v in event.items() if k not in ("type", "t")},
        }
        log.info("turn %d latency %s", trace.turn, trace.latency)
        if self.path is None:
            return
        line = json.dumps(record, sort_keys=True)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
