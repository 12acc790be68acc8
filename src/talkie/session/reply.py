"""One answer on its way to the user: brain -> clauses -> voice -> the media clock.

A ``Reply`` is prepared as soon as there is something to answer, before the session is sure the
user has finished: the brain streams, each clause is synthesised, and the audio waits (*held*).
When the turn is judged complete the reply is *committed* and its clips are placed on the media
clock (``Speaker.place``), the first one ``start_margin`` from now. If the user goes on first,
the held reply is simply dropped: nothing was heard.

While it plays, the user may talk over it. The reply is then *paused* at once (sound and mouth
stop; what was not heard is kept, from the start of the word being said) and, if the user only
said "mm-hm", *resumed*; otherwise it is *cancelled*, and only the words the user heard count.
``heard_text`` gives those words; ``finished`` resolves when everything placed has played or the
reply was cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal, Protocol

import numpy as np

from talkie.brain.base import Brain, ToolExchange, Turn
from talkie.brain.streaming import ClauseChunker
from talkie.brain.tools.journal import tool_journal
from talkie.errors import TalkieError
from talkie.messages import PhonemeTiming, SpeechClip
from talkie.session.timeline import MediaClock, ScheduledSpeech
from talkie.session.trace import TurnTrace

__all__ = ["APOLOGY", "Reply", "Speaker", "clip_from"]

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't think clearly right now. Please try again in a moment."

State = Literal["held", "playing", "paused", "cancelled"]
Clip = tuple[SpeechClip, np.ndarray]  # a clip and its audio at the timeline's rate


class Speaker(Protocol):
    """What a reply needs from its conversation."""

    clock: MediaClock

    async def synthesize(self, text: str) -> list[Clip]: ...

    def place(self, reply: Reply, clip: SpeechClip, audio: np.ndarray) -> ScheduledSpeech: ...

    def cut(self, at: float) -> list[ScheduledSpeech]: ...

    def brain_failed(self, reply: Reply, error: TalkieError) -> None: ...


class VoiceFailed(TalkieError):
    """Speech synthesis failed: the character cannot say anything, not even an apology."""


class Reply:
    """See the module docstring. ``text`` is fixed words to say (a greeting); otherwise the
    ``brain`` answers ``user_text`` given ``history``. ``spawn`` starts the reply's tasks (the
    conversation owns and cancels them)."""

    def __init__(
        self,
        *,
        speaker: Speaker,
        trace: TurnTrace,
        spawn: Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]],
        brain: Brain | None = None,
        user_text: str = "",
        history: Sequence[Turn] = (),
        text: str = "",
        rewind_s: float = 0.05,
        speech_ahead_s: float | None = None,
    ) -> None:
        self.speaker = speaker
        self.trace = trace
        self.brain = brain
        self.user_text = user_text
        self.history = list(history)
        # The tool calls the brain made for this reply (kept with the assistant's turn).
        self.tool_exchanges: list[ToolExchange] = []
        self.fixed_text = text
        self.state: State = "held"
        self.backchannels: list[str] = []
        self.placed: list[ScheduledSpeech] = []
        self.first_audible: float | None = None
        self._rewind_s = rewind_s
        self._speech_ahead_s = speech_ahead_s
        self._cuts: dict[int, float] = {}  # id(placed item) -> where it was cut
        self._ready: deque[Clip] = deque()
        # A short first clause at a natural break: its synthesis is the first sound's wait.
        self._chunker = ClauseChunker(first_max_words=8, first_min_comma_words=3)
        self._speech: asyncio.Task[None] | None = None  # clauses said ahead of a tool call
        self._produced = asyncio.Event()
        self._changed = asyncio.Event()
        self._spawn = spawn
        self._producer = spawn(self._produce(), f"reply{trace.turn}")

    # -- control --------------------------------------------------------------------------------

    def commit(self) -> None:
        """The turn is complete: the reply may be heard (now, or as soon as it has audio)."""
        if self.state == "held":
            self.trace.mark("endpoint", self.speaker.clock.now())
            self.state = "playing"
            self._flush()

    def audible(self, now: float) -> bool:
        """Is (or will) any placed audio of this reply play after ``now``?"""
        return self.state == "playing" and any(
            item.end > now and id(item) not in self._cuts for item in self.placed
        )

    def heard_for(self, now: float) -> float:
        """Seconds of this reply the user has heard by ``now``."""
        total = 0.0
        for item in self.placed:
            until = min(now, self._cuts.get(id(item), now))
            total += max(0.0, min(until, item.end) - item.start)
        return total

    def pause(self, now: float) -> bool:
        """The user started talking over the reply: stop it now, keep what was not heard (a
        committed reply with nothing placed yet simply waits). Returns False unless playing."""
        if self.state != "playing":
            return False
        cut = {id(item) for item in self.speaker.cut(now)} if self.audible(now) else set()
        remainders: list[Clip] = []
        for item in self.placed:
            if id(item) in cut and id(item) not in self._cuts:
                self._cuts[id(item)] = now
                rest = clip_from(item.clip, max(0.0, now - item.start), rewind_s=self._rewind_s)
                if rest is not None:
                    clip, begin = rest
                    remainders.append((clip, item.audio[round(begin * _rate(item)) :]))
        self._ready.extendleft(reversed(remainders))
        self.state = "paused"
        self._signal()
        return True

    def resume(self) -> None:
        """It was only a backchannel (or noise): go on from where the reply stopped."""
        if self.state == "paused":
            self.state = "playing"
            self._flush()
            self._signal()

    def cancel(self, now: float) -> None:
        """Barge-in for good (or the reply is no longer wanted): stop and drop the rest."""
        if self.state == "cancelled":
            return
        if self.audible(now):
            for item in self.speaker.cut(now):
                self._cuts.setdefault(id(item), now)
        for item in self.placed:
            if item.end > now:
                self._cuts.setdefault(id(item), now)
        self.state = "cancelled"
        self.trace.interrupted = True
        self._ready.clear()
        self._producer.cancel()
        if self._speech is not None:
            self._speech.cancel()
        self._signal()

    def heard_text(self) -> str:
        """The reply's words the user heard (whole words, up to any cut)."""
        words = (item.heard_text(self._cuts.get(id(item), float("inf"))) for item in self.placed)
        return " ".join(w for w in words if w).strip()

    def spoken_recently(self, since: float) -> str:
        """The text of the clips that played (at least partly) after ``since``."""
        return " ".join(item.clip.text for item in self.placed if item.end > since)

    async def finished(self) -> None:
        """Until everything placed has played (or the reply was cancelled)."""
        clock = self.speaker.clock
        while self.state != "cancelled":
            if self.state == "playing" and not self._ready and self._produced.is_set():
                end = max((item.end for item in self.placed), default=0.0)
                if clock.now() >= end:
                    return
                self._changed.clear()
                sleeper = asyncio.ensure_future(clock.sleep_until(end))
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    changed.cancel()
                continue
            self._changed.clear()
            await self._changed.wait()

    # -- production -----------------------------------------------------------------------------

    def speak_pending(self) -> None:
        """A tool call starts: say what the brain streamed before it ("Let me check.") while
        the tool works (the chunker would hold a sentence's end until more text came, that is
        until after the tool). Later clauses wait for it."""
        clauses = self._chunker.flush()
        if not clauses:
            return
        previous = self._speech

        async def say() -> None:
            if previous is not None:
                await previous
            for clause in clauses:
                await self._say(clause)

        self._speech = self._spawn(say(), f"reply{self.trace.turn}-pending")

    async def _produce(self) -> None:
        try:
            if self.fixed_text or self.brain is None:
                await self._say(self.fixed_text)
            else:
                await self._answer(self.brain)
        finally:
            self._produced.set()
            self._signal()

    async def _answer(self, brain: Brain) -> None:
        clock, trace = self.speaker.clock, self.trace
        try:
            # aclosing: a cancelled reply closes the brain's HTTP stream at once.
            with tool_journal() as self.tool_exchanges:
                async with contextlib.aclosing(brain.reply(self.history, self.user_text)) as deltas:  # type: ignore[type-var]
                    async for delta in deltas:
                        trace.mark("brain_first_token", clock.now())
                        for clause in self._chunker.push(delta):
                            await self._say_next(clause)
            for clause in self._chunker.flush():
                await self._say_next(clause)
            await self._say_next("")  # what a tool call left to say
        except VoiceFailed:
            raise  # the session reports it (an apology could not be heard either)
        except TalkieError as exc:
            # The LLM is down or slow: say so, briefly, and stay live.
            log.warning("reply %d: the brain failed: %s", trace.turn, exc)
            trace.error = str(exc)
            self.speaker.brain_failed(self, exc)
            await self._say_next(APOLOGY)
        finally:
            if self._speech is not None and not self._speech.done():
                self._speech.cancel()

    async def _say_next(self, clause: str) -> None:
        """Say ``clause`` after the speech a tool call started, so the order is kept."""
        if self._speech is not None:
            speech, self._speech = self._speech, None
            await speech
        await self._say(clause)

    async def _say(self, text: str) -> None:
        if not text.strip() or self.state == "cancelled":
            return
        clock = self.speaker.clock
        await self._until_speech_runs_short()
        if self.state == "cancelled":
            return
        self.trace.mark("first_clause", clock.now())
        try:
            clips = await self.speaker.synthesize(text)
        except TalkieError as exc:
            self.trace.error = f"speech synthesis failed: {exc}"
            raise VoiceFailed(str(exc)) from exc
        self.trace.mark("tts_first_audio", clock.now())
        if self.state == "cancelled":
            return
        self._ready.extend(clips)
        self._flush()

    async def _until_speech_runs_short(self) -> None:
        """Wait while more than ``speech_ahead_s`` of this reply is made and not yet heard.

        The voice then works a clause at a time while the answer plays, instead of taking a
        core for the whole answer at its start (when every session's frames came late). The
        margin covers a clause's synthesis on a busy machine (~0.3 s for 3 s of speech alone,
        a few times that with other sessions answering)."""
        ahead_s = self._speech_ahead_s
        if ahead_s is None:
            return
        clock = self.speaker.clock
        while self.state != "cancelled":
            now = clock.now()
            wait = self._speech_left(now) - ahead_s
            if wait <= 0:
                return
            # Polled: a pause, a resume or a cut changes what is left at any time.
            await clock.sleep_until(now + min(wait, 0.25))

    def _speech_left(self, now: float) -> float:
        """Seconds of this reply's speech made and not yet heard: the rest of what is placed
        (and not cut) plus the clips waiting to be placed."""
        placed_end = max(
            (item.end for item in self.placed if id(item) not in self._cuts), default=now
        )
        waiting = sum(clip.duration for clip, _ in self._ready)
        return max(0.0, placed_end - now) + waiting

    def _flush(self) -> None:
        while self.state == "playing" and self._ready:
            clip, audio = self._ready.popleft()
            item = self.speaker.place(self, clip, audio)
            self.placed.append(item)
            if self.first_audible is None:
                self.first_audible = item.start
                self.trace.mark("answer_start", item.start)
        self._signal()

    def _signal(self) -> None:
        self._changed.set()


def _rate(item: ScheduledSpeech) -> float:
    return len(item.audio) / max(1e-9, item.clip.duration)


def word_starts(clip: SpeechClip) -> list[float]:
    """Where each word of ``clip`` starts (the first phoneme after a silence/word gap)."""
    starts: list[float] = []
    gap = True
    for p in clip.phonemes:
        if not p.phoneme.strip() or p.phoneme == "_":
            gap = True
            continue
        if gap:
            starts.append(p.start)
            gap = False
    return starts


def clip_from(
    clip: SpeechClip, offset: float, *, rewind_s: float = 0.05
) -> tuple[SpeechClip, float] | None:
    """What is left of ``clip`` after ``offset`` seconds, from the start of the word being said
    then (a resumed reply repeats the cut word instead of starting mid-word), and where in the
    clip that is (seconds). None if no word is left to say."""
    starts = word_starts(clip)
    said = [s for s in starts if s <= offset]
    begin = max(said[-1] - rewind_s, _gap_before(clip, said[-1])) if said else 0.0
    if not [s for s in starts if s >= begin] or begin >= clip.duration - 0.02:
        return None
    first = round(begin * clip.sample_rate)
    phonemes = tuple(
        PhonemeTiming(p.phoneme, max(0.0, p.start - begin), p.end - begin)
        for p in clip.phonemes
        if p.end > begin
    )
    words = clip.text.split()
    if len(words) == len(starts):
        text = " ".join(words[len(said) - 1 if said else 0 :])
    else:  # word count and timings disagree: cut the text in proportion
        share = begin / max(1e-9, clip.duration)
        text = " ".join(words[int(len(words) * share) :])
    return SpeechClip(clip.audio[first:], clip.sample_rate, phonemes, text, clip.pts), begin


def _gap_before(clip: SpeechClip, word_start: float) -> float:
    """The start of the silence just before ``word_start`` (a resume never eats the previous
    word's end)."""
    gaps = [p.start for p in clip.phonemes if not p.phoneme.strip() and p.end <= word_start + 1e-6]
    return gaps[-1] if gaps else 0.0
