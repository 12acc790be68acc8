"""One live conversation: ears, brain, voice and face on one media clock.

Video: motion (4-frame steps) -> renderer (worker thread), kept a few frames ahead of the playout
clock and handed out at each frame's presentation time; while nobody speaks, idle life continues,
so the picture never freezes. Audio: speech clips are placed on a timeline at the same clock and
read out in 20 ms frames. A new answer starts as soon as its first clause is synthesised: the
frames rendered ahead but not yet shown are produced again with the mouth for it (motion rewind),
so sound and mouth start together without waiting for the render-ahead buffer to drain.
Barge-in cuts the audio after "now", re-renders the unseen frames with the mouth released, cancels
the brain and TTS work, and keeps in the history only the words the user heard.
Tools: the brain gets ``SessionTools`` as its executor (UI actions round-trip to the page over
the data channel, webhooks are called by the server); what the brain said before a tool call is
spoken while the tool works, and every call is recorded in the turn's trace.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import itertools
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkie.brain import LLMOptions, load_brain
from talkie.brain.base import Brain, Turn
from talkie.brain.guardrails import GuardedBrain, HttpModerator
from talkie.brain.memory import ConversationMemory
from talkie.brain.streaming import ClauseChunker
from talkie.brain.tools import WebhookCaller, WebhookOptions
from talkie.errors import TalkieError
from talkie.hearing import Hearing, HearingOptions
from talkie.messages import AudioChunk, SpeechClip, Transcript, VideoFrame, VoiceActivity
from talkie.motion import MotionGenerator, product_motion_options
from talkie.render import MeshWarpRenderer, RenderOptions
from talkie.session.character import Character
from talkie.session.contract import AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE
from talkie.session.timeline import MediaClock, ScheduledSpeech, SpeechTimeline, resample
from talkie.session.tools import SessionTools
from talkie.session.trace import TraceLog, TurnTrace
from talkie.session.voices import shared_recognizer, shared_voice
from talkie.voice import TextToSpeech

log = logging.getLogger(__name__)

_VOICE_WAITS = concurrent.futures.ThreadPoolExecutor(
    max_workers=8, thread_name_prefix="talkie-voice"
)

APOLOGY = "Sorry, I can't think clearly right now. Please try again in a moment."
# The turn a task works for (set in each turn's task, inherited by the tasks it starts): a tool
# call cut by barge-in is recorded in its own turn, not in the one that interrupted it.
_TURN: contextvars.ContextVar[TurnTrace | None] = contextvars.ContextVar("turn", default=None)


@dataclass(frozen=True)
class SessionOptions:
    fps: float = 24.0
    size: tuple[int, int] = (1280, 720)
    render_ahead: int = 3  # frames rendered ahead of the playout clock (latency vs. safety)
    start_margin: float = 0.06  # seconds between an answer being ready and it playing
    hands_free: bool = True
    greet: bool = True
    seed: int | None = None
    trace_path: Path | None = None
    # "builtin", "openai", "auto" (openai when configured in the env), or the LLM's options
    brain: str | LLMOptions = "auto"
    history_tokens: int = 1500  # recent turns kept verbatim; older ones become a summary
    # where webhook tools may connect (the SSRF policy: public addresses only, by default)
    webhook: WebhookOptions = field(default_factory=WebhookOptions)
    ui_tool_timeout: float = 5.0  # seconds the page has to answer a UI tool call
    max_tool_calls_per_turn: int = 16  # trace entries kept per turn


@dataclass
class _Answering:
    """The answer being streamed: what a tool call needs to say the text before it."""

    chunker: ClauseChunker
    trace: TurnTrace
    generation: int
    spoken: list[ScheduledSpeech]
    speech: asyncio.Task[None] | None = None


class Conversation:
    """Implements ``talkie.session.contract.LiveConversation`` for one character.

    A ``brain`` given here is used as it is (it runs no tools unless it was built with an
    executor); otherwise ``options.brain`` picks one, wired to the character's tools.
    """

    def __init__(
        self,
        *,
        character: Character,
        options: SessionOptions | None = None,
        brain: Brain | None = None,
        tts: TextToSpeech | None = None,
        hearing: Hearing | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.character = character
        self.options = opts = options or SessionOptions()
        self.fps = opts.fps
        self.clock = MediaClock()
        seed = opts.seed if opts.seed is not None else int(uuid.uuid4().int % 2**31)
        self.motion = MotionGenerator(fps=opts.fps, seed=seed, options=product_motion_options())
        self.tools = SessionTools(
            tools=character.tools, emit=self._emit, record=self._record_tool,
            webhooks=WebhookCaller(options=opts.webhook), ui_timeout=opts.ui_tool_timeout,
            before_call=self._speak_pending,
        )  # fmt: skip
        self.brain = brain or load_brain(
            opts.brain, persona=character.persona, retriever=character.knowledge,
            tools=character.tools, executor=self.tools,
        )  # fmt: skip
        if character.guardrails is not None and character.guardrails.active:
            self.brain = GuardedBrain(
                self.brain, character.guardrails, moderator=HttpModerator.from_env(),
                label=character.id,
            )  # fmt: skip
        self.tts: TextToSpeech = tts or shared_voice(character.voice)
        self.hearing = hearing or Hearing(options=HearingOptions(), recognizer=shared_recognizer())
        self.timeline = SpeechTimeline(sample_rate=AUDIO_SAMPLE_RATE)
        self.renderer: MeshWarpRenderer | None = None
        self.memory = ConversationMemory(
            budget_tokens=opts.history_tokens, recall=character.recall
        )
        self.hands_free = opts.hands_free
        self.late_frames = 0
        self.frames_sent = 0

        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=256)
        self._frames: collections.deque[VideoFrame] = collections.deque()
        self._frame_ready = asyncio.Event()
        self._rewound = asyncio.Event()
        self._epoch = 0  # bumped whenever frames rendered ahead become invalid
        self._next_render = 0  # index of the next frame to render
        self._shown = -1  # index of the last frame handed to the transport
        self._audio_index = 0
        self._generation = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._turn_task: asyncio.Task[None] | None = None
        self._turn_counter = itertools.count(1)
        self._trace: TurnTrace | None = None
        self._trace_log = TraceLog(opts.trace_path)
        self._ptt_down = False
        self._speech_end: float | None = None
        self._speech_start: float | None = None  # for last_user_activity (session limits)
        self._closed = False
        self._state = ""
        self._cut_times: dict[int, float] = {}
        self._answering: _Answering | None = None

    @property
    def history(self) -> list[Turn]:
        """The recent turns, word for word (older ones are in ``memory.summary``)."""
        return self.memory.turns

    # -- lifecycle --

    async def start(self) -> None:
        self.renderer = await asyncio.to_thread(
            MeshWarpRenderer, self.character.rig, options=RenderOptions(size=self.options.size)
        )
        # Load the models now, in a worker thread: loading them lazily would stall the event
        # loop (and the media with it) on the first answer or the first words heard.
        await asyncio.gather(
            asyncio.to_thread(_warm_tts, self.tts), asyncio.to_thread(self.hearing.load)
        )
        self.clock = MediaClock()
        self._spawn(self._video_loop(), "video")
        self._spawn(self._hearing_loop(), "hearing")
        self._set_state("listening")
        if self.options.greet:
            self._start_turn(None, greeting=self.brain.greeting())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.tools.cancel_all()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        self.hearing.clear()
        with contextlib.suppress(Exception):
            await self.hearing.aclose()
        self._frames.clear()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"talkie-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "session %s: task %s failed", self.id, task.get_name(), exc_info=task.exception()
            )
            self._emit({"type": "error", "message": "the character hit an internal error"})

    # -- media out --

    async def next_video_frame(self) -> VideoFrame:
        period = 1.0 / self.fps
        while True:
            if self._closed:
                raise asyncio.CancelledError
            if not self._frames:
                self._frame_ready.clear()
                await self._frame_ready.wait()
                continue
            frame = self._frames[0]
            # Behind the clock by more than a frame (the machine was busy): skip to catch up.
            if frame.pts + period < self.clock.now() and len(self._frames) > 1:
                self._frames.popleft()
                self.late_frames += 1
                continue
            await self.clock.sleep_until(frame.pts)
            if not self._frames or self._frames[0] is not frame:
                continue  # barge-in or a new answer replaced the frames meanwhile
            self._frames.popleft()
            if self.clock.now() - frame.pts > period:
                self.late_frames += 1  # handed out more than a frame after its time
            self._shown = frame.index
            self.frames_sent += 1
            self._mark_frame(frame)
            return frame

    async def next_audio_frame(self) -> AudioChunk:
        duration = AUDIO_FRAME_SAMPLES / AUDIO_SAMPLE_RATE
        pts = self._audio_index * duration
        now = self.clock.now()
        if pts < now - 0.2:
            # The transport stalled: jump to now instead of playing stale audio late.
            self._audio_index = int(now / duration)
            pts = self._audio_index * duration
        await self.clock.sleep_until(pts)
        self._audio_index += 1
        samples = self.timeline.read(pts, AUDIO_FRAME_SAMPLES)
        if self._audio_index % 500 == 0:
            self.timeline.forget_before(pts - 1.0)
        return AudioChunk(samples, AUDIO_SAMPLE_RATE, pts)

    async def _video_loop(self) -> None:
        assert self.renderer is not None
        renderer = self.renderer
        period = 1.0 / self.fps
        pending: collections.deque[Any] = collections.deque()
        while True:
            # Produce frame k once the clock is within `render_ahead` frames of showing it.
            due = self._next_render * period - self.options.render_ahead * period
            if due > self.clock.now():
                # Sleep until due, but wake at once if a rewind moves the work earlier.
                self._rewound.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._rewound.wait(), due - self.clock.now())
                continue
            if self.motion.frame_index != self._next_render + len(pending):
                pending.clear()  # a rewind happened: motion restarts at _next_render
            if not pending:
                if self.motion.frame_index != self._next_render:
                    self.motion.rewind(self._next_render)
                pending.extend(self.motion.next_step())
            face = pending.popleft()
            if face.pts + period < self.clock.now():
                # Overloaded: this frame's moment has passed. Skip it rather than render it late,
                # so the picture stays on the audio's clock instead of drifting behind the voice.
                self.late_frames += 1
                self._next_render = face.index + 1
                continue
            epoch = self._epoch
            image = await asyncio.to_thread(renderer.render, face.params)
            if epoch != self._epoch:
                pending.clear()
                continue  # rendered for a future that was rewritten while we rendered
            self._frames.append(VideoFrame(image, face.pts, face.index, face.generation))
            self._next_render = face.index + 1
            self._frame_ready.set()

    def _rewind_unseen(self) -> None:
        """Drop frames rendered ahead but not shown; they will be rendered again (from the
        motion state they started from) with whatever was just scheduled or cut."""
        first_unseen = self._shown + 1
        self._frames.clear()
        self._epoch += 1
        self._rewound.set()
        if self._next_render > first_unseen:
            try:
                self.motion.rewind(first_unseen)
            except ValueError:
                first_unseen = self.motion.frame_index
            self._next_render = first_unseen

    def _mark_frame(self, frame: VideoFrame) -> None:
        trace = self._trace
        start = trace.marks.get("answer_start") if trace else None
        if trace is not None and start is not None and frame.pts >= start - 0.5 / self.fps:
            trace.mark("first_frame_sent", self.clock.now())

    # -- media in --

    def push_audio(self, chunk: AudioChunk) -> None:
        if self._closed:
            return
        if not self.hands_free and not self._ptt_down:
            return
        # Stamp input with the conversation clock (arrival time minus the chunk's duration):
        # the browser's capture clock is not ours, and on loopback/LAN the offset is small.
        pts = max(0.0, self.clock.now() - chunk.duration)
        self.hearing.push(AudioChunk(chunk.samples, chunk.sample_rate, pts))

    async def _hearing_loop(self) -> None:
        async for event in self.hearing.events():
            if isinstance(event, VoiceActivity):
                if event.speaking:
                    self._speech_start = event.pts  # for last_user_activity (session limits)
                    self._on_speech_start()
                else:
                    self._speech_end = event.pts
                    self.motion.set_mode("idle")
            elif isinstance(event, Transcript):
                self._emit({"type": "transcript", "text": event.text, "final": event.final})
                if event.final:
                    self._on_final(event)

    def _on_speech_start(self) -> None:
        self.motion.set_mode("listening")
        if self._character_busy():
            self.interrupt("barge-in")
        self._set_state("listening")

    def _on_final(self, event: Transcript) -> None:
        text = event.text.strip()
        if not text:
            return
        # The hearing stage knows where the speech itself ended (before its hangover).
        speech_end = getattr(event, "speech_end", None) or self._speech_end or event.pts
        self._start_turn(text, speech_end=speech_end, asr_final=self.clock.now())

    def _character_busy(self) -> bool:
        now = self.clock.now()
        return self.timeline.end > now or (
            self._turn_task is not None and not self._turn_task.done()
        )

    # -- client events --

    def handle_client_event(self, event: dict[str, Any]) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ValueError("an event is a JSON object with a string 'type'")
        kind = event["type"]
        if kind == "ptt":
            down = event.get("down")
            if not isinstance(down, bool):
                raise ValueError("'ptt' needs a boolean 'down'")
            self._ptt_down = down
            if down and self._character_busy():
                self.interrupt("push-to-talk")
            if not down and not self.hands_free:
                # Releasing the button ends the turn now: the user's "silence" is fed to the ears
                # so the endpoint fires at once instead of waiting for real silence that, with
                # the microphone gated off, would never arrive.
                silence = np.zeros(int(0.4 * 16_000), np.float32)
                self.hearing.push(AudioChunk(silence, 16_000, self.clock.now()))
        elif kind == "mode":
            hands_free = event.get("hands_free")
            if not isinstance(hands_free, bool):
                raise ValueError("'mode' needs a boolean 'hands_free'")
            self.hands_free = hands_free
        elif kind == "text":
            text = event.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("'text' needs a non-empty string 'text'")
            if len(text) > 2000:
                raise ValueError("'text' is limited to 2000 characters")
            if self._character_busy():
                self.interrupt("typed message")
            self._emit({"type": "transcript", "text": text.strip(), "final": True, "typed": True})
            now = self.clock.now()
            self._start_turn(text.strip(), speech_end=now, asr_final=now, typed=True)
        elif kind == "interrupt":
            self.interrupt("client")
        elif kind == "tool_result":
            self.tools.resolve(event)
        else:
            raise ValueError(f"unknown event type {kind!r}")

    # -- turns --

    def _start_turn(
        self,
        text: str | None,
        *,
        greeting: str = "",
        speech_end: float | None = None,
        asr_final: float | None = None,
        typed: bool = False,
    ) -> None:
        if self._turn_task is not None and not self._turn_task.done():
            self.interrupt("new turn")
        trace = TurnTrace(turn=next(self._turn_counter), user_text=text or "", typed=typed)
        if speech_end is not None:
            trace.mark("speech_end", speech_end)
            trace.mark("endpoint", asr_final if asr_final is not None else speech_end)
        if asr_final is not None:
            trace.mark("asr_final", asr_final)
        self._trace = trace
        self._turn_task = self._spawn(self._run_turn(text, greeting, trace), f"turn{trace.turn}")

    async def _run_turn(self, text: str | None, greeting: str, trace: TurnTrace) -> None:
        """A turn lasts until its answer has finished PLAYING (or is cut): only then is the
        history written, with exactly the words the user heard, and the trace published."""
        generation = self._generation
        spoken: list[ScheduledSpeech] = []
        _TURN.set(trace)
        try:
            if text is None:
                await self._say(greeting, trace, generation, spoken)
            else:
                self._set_state("thinking")
                await self._answer(text, trace, generation, spoken)
            await self.clock.sleep_until(max((s.end for s in spoken), default=0.0))
        except asyncio.CancelledError:
            trace.interrupted = True
            raise
        finally:
            if text is not None:
                self.memory.add(Turn("user", text))
            cut_at = self._cut_times.pop(generation, float("inf"))
            said = " ".join(h for h in (s.heard_text(cut_at) for s in spoken) if h).strip()
            if said:
                self.memory.add(Turn("assistant", said))
            self._emit(trace.as_event())
            self._emit(trace.turn_event(said))
            self._trace_log.write(self.id, trace)
            if self._turn_task is asyncio.current_task():
                self.hearing.set_muted(False)
                self._set_state("listening")

    async def _answer(
        self, text: str, trace: TurnTrace, generation: int, spoken: list[ScheduledSpeech]
    ) -> None:
        chunker = ClauseChunker()
        history = self.memory.context()
        answering = self._answering = _Answering(chunker, trace, generation, spoken)
        try:
            # aclosing: on barge-in the reply's HTTP stream is closed at once, not on the next tick.
            async with contextlib.aclosing(self.brain.reply(history, text)) as deltas:  # type: ignore[type-var]
                async for delta in deltas:
                    trace.mark("brain_first_token", self.clock.now())
                    for clause in chunker.push(delta):
                        await self._say_next(answering, clause)
            for clause in chunker.flush():
                await self._say_next(answering, clause)
            await self._say_next(answering, "")  # what a tool call left to say
        except TalkieError as exc:
            # The LLM is down or slow: say so, briefly, and stay live.
            log.warning("session %s: brain failed: %s", self.id, exc)
            trace.error = str(exc)
            self._emit({"type": "error", "message": "the brain is not answering; please retry"})
            await self._say_next(answering, APOLOGY)
        finally:
            if self._answering is answering:
                self._answering = None
            if answering.speech is not None and not answering.speech.done():
                answering.speech.cancel()

    async def _say_next(self, answering: _Answering, clause: str) -> None:
        """Say ``clause`` after the speech a tool call started, so the order is kept."""
        if answering.speech is not None:
            speech, answering.speech = answering.speech, None
            await speech
        if clause:
            answering.trace.mark("first_clause", self.clock.now())
            await self._say(clause, answering.trace, answering.generation, answering.spoken)

    def _speak_pending(self) -> None:
        """A tool call starts: say what the brain streamed before it ("Let me check.") while
        the tool works (the clause chunker would hold a sentence's end until more text came,
        that is until after the tool). Later clauses wait for it (``_say_next``)."""
        answering = self._answering
        clauses = answering.chunker.flush() if answering is not None else []
        if answering is None or not clauses:
            return
        previous = answering.speech

        async def say() -> None:
            if previous is not None:
                await previous
            for clause in clauses:
                answering.trace.mark("first_clause", self.clock.now())
                await self._say(clause, answering.trace, answering.generation, answering.spoken)

        answering.speech = asyncio.get_running_loop().create_task(say())

    def _record_tool(self, entry: dict[str, Any]) -> None:
        """A tool call finished (or was refused): into the turn's trace, and to the page."""
        trace = _TURN.get()
        if trace is not None and len(trace.tools) < self.options.max_tool_calls_per_turn:
            trace.tools.append(entry)
        log.info("session %s: tool %s (%s): %s, %.0f ms", self.id, entry["name"], entry["kind"],
                 entry["reason"] or "ok", entry["elapsed_ms"])  # fmt: skip
        self._emit({"type": "tool", "turn": trace.turn if trace else None, **entry})

    async def _say(
        self, text: str, trace: TurnTrace, generation: int, spoken: list[ScheduledSpeech]
    ) -> None:
        if not text.strip():
            return
        rate = self.timeline.sample_rate

        def synthesize() -> list[tuple[SpeechClip, np.ndarray]]:
            return [(c, resample(c.audio, c.sample_rate, rate)) for c in self.tts.synthesize(text)]

        # Its own pool: waiting for the shared voice process must never take the threads that
        # render and encode frames (with three sessions answering at once it did, and frames
        # queued behind the waits).
        clips = await asyncio.get_running_loop().run_in_executor(_VOICE_WAITS, synthesize)
        trace.mark("tts_first_audio", self.clock.now())
        for clip, audio in clips:
            if generation != self._generation:
                return
            now = self.clock.now()
            start = max(now + self.options.start_margin, self.timeline.end)
            item = self.timeline.schedule(clip, start=start, generation=generation, audio=audio)
            self.motion.push(clip, start=start, generation=generation)
            if start - self.motion.options.lead < self._next_render / self.fps:
                # Frames rendered ahead did not know about this speech (or its anticipation):
                # produce them again so sound and mouth start together.
                self._rewind_unseen()
            spoken.append(item)
            trace.mark("answer_start", start)
            self._set_state("speaking")
            self._emit({"type": "reply", "text": clip.text, "start": round(start, 3)})
            self.hearing.set_muted(True)

    def interrupt(self, reason: str) -> None:
        """Barge-in: stop sound and mouth now, cancel the answer, keep only what was heard."""
        now = self.clock.now()
        self._cut_times[self._generation] = now
        self._generation += 1
        self.timeline.cut(now)
        if self._turn_task is not None and not self._turn_task.done():
            self._turn_task.cancel()
        # Frames not yet shown still carry the old mouth: produce them again, releasing the mouth
        # from the state on screen (clear after the rewind, which restores scheduled clips).
        self._rewind_unseen()
        self.motion.clear(generation=self._generation)
        self.hearing.set_muted(False)
        self._emit({"type": "interrupted", "reason": reason})
        log.debug("session %s: interrupted (%s) at %.2f s", self.id, reason, now)

    # -- events --

    def events(self) -> AsyncIterator[dict[str, Any]]:
        return self._event_stream()

    async def _event_stream(self) -> AsyncIterator[dict[str, Any]]:
        while not self._closed:
            yield await self._events.get()

    def _emit(self, event: dict[str, Any]) -> None:
        event.setdefault("t", round(self.clock.now(), 3))
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            # Nobody is reading (no data channel): keep the newest events.
            with contextlib.suppress(asyncio.QueueEmpty):
                self._events.get_nowait()
            self._events.put_nowait(event)

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self._emit({"type": "state", "state": state})

    # -- session limits (contract.LiveConversation; the transport runs the timers) --

    @property
    def last_user_activity(self) -> float:
        """Media-clock time of the user's last speech start/end or typed message (0.0 until
        then; now while the user speaks). Speech start and end are the hearing's events; a
        typed message is a user turn, which marks its ``speech_end`` when it is sent."""
        start, end = self._speech_start, self._speech_end
        if start is not None and (end is None or start > end):
            return self.clock.now()  # speaking now
        trace = self._trace
        typed = trace.marks.get("speech_end", 0.0) if trace and trace.user_text else 0.0
        return max(end or 0.0, typed)

    async def farewell(self, text: str) -> None:
        """Say ``text`` as the character (cancelling any answer in progress) and return once
        it has played; a barge-in cuts it short and returns too."""
        self._start_turn(None, greeting=text)
        if self._turn_task is not None:
            await asyncio.wait({self._turn_task})


def _warm_tts(tts: TextToSpeech) -> None:
    with contextlib.suppress(Exception):
        for _ in tts.synthesize("Hi."):
            pass
