"""One live conversation: the loop that runs a character's ears, brain, voice and face.

The parts come in one bundle (``talkie.session.parts``); this core only runs them:

- **Video**: motion -> renderer, a few frames ahead of the playout clock
  (``talkie.session.frames``); idle life goes on while nobody speaks, so the picture never
  freezes. Speech placed sooner than the frames already rendered has them produced again.
- **Audio**: replies are placed on a timeline on the same media clock and read out in 20 ms
  frames; each frame is also handed to the ears as the echo reference.
- **Turns**: the ears' segments go to ``TurnTaker``, which prepares answers early and decides
  when they are heard, paused, resumed or cancelled (``talkie.session.turns``); each answer is a
  ``Reply`` (``talkie.session.reply``).
- **Events** out are typed (``talkie.session.events``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import numpy as np

from talkie.brain.base import Turn
from talkie.brain.memory import ConversationMemory
from talkie.errors import TalkieError
from talkie.hearing import FinalTranscript, PauseTranscript
from talkie.hearing.vocabulary import Hotwords, salient_terms
from talkie.messages import AudioChunk, SeenFrame, SpeechClip, Transcript, VideoFrame, VoiceActivity
from talkie.motion import MotionGenerator, product_motion_options
from talkie.render.base import Renderer
from talkie.session.character import Character
from talkie.session.client_events import (
    GroupModeChanged,
    InterruptRequested,
    ModeChanged,
    PushToTalk,
    SpeakerChanged,
    TextTyped,
    ToolResultSent,
    VisionSwitched,
    parse_client_event,
)  # fmt: skip
from talkie.session.contract import AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE
from talkie.session.events import (
    Interrupted,
    ReplySpoken,
    SessionError,
    SessionEvent,
    StateChanged,
    ToolCallFinished,
    ToolCallRequested,
    UserTranscript,
    VideoLowered,
)
from talkie.session.frames import VideoLine
from talkie.session.parts import (
    SessionOptions,
    SessionParts,
    build_parts,
    plan_video,
    warm_voice,
)
from talkie.session.reply import APOLOGY, Reply, VoiceFailed
from talkie.session.timeline import MediaClock, ScheduledSpeech, SpeechTimeline, resample
from talkie.session.trace import TraceLog, TurnTrace
from talkie.session.turns import TurnTaker, UserTurn
from talkie.session.vision import ConversationEyes, SessionVision, accepts_images

__all__ = ["APOLOGY", "Conversation", "SessionOptions"]

log = logging.getLogger(__name__)

# The turn a task works for (set in each reply's task, inherited by the tasks it starts): a
# tool call cut by barge-in is recorded in its own turn, not in the one that interrupted it.
_TURN: contextvars.ContextVar[TurnTrace | None] = contextvars.ContextVar("turn", default=None)
_MAX_EVENTS = 256


def character_hotwords(character: Character) -> Hotwords:
    """The words the recogniser is told to expect in a session of ``character``: its name,
    then the salient terms of its persona and of its knowledge base."""
    persona = character.persona
    terms = salient_terms(
        [persona.name, persona.system_prompt, persona.knowledge, persona.greeting]
    )
    vocabulary = getattr(character.knowledge, "vocabulary", None)
    if callable(vocabulary):
        with contextlib.suppress(Exception):  # hotwords are an aid, never a failure
            terms += [t for t in vocabulary() if t not in terms]
    return Hotwords([persona.name, *terms])


class Conversation:
    """Implements ``talkie.session.contract.LiveConversation`` for one character, with the
    product's parts (``build_parts``) unless ``parts`` are given."""

    def __init__(
        self,
        *,
        character: Character,
        options: SessionOptions | None = None,
        parts: SessionParts | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.character = character
        # On a busy machine a new session gets smaller or fewer frames (opts then say which).
        opts, self.video = plan_video(options or SessionOptions())
        self.options = opts
        self.parts = parts or build_parts(character, opts)
        self.fps = opts.fps
        self.brain = self.parts.brain
        self.tts = self.parts.voice
        self.hearing = self.parts.hearing
        self.tools = self.parts.tools
        self.tools.attach(
            call_page=self._call_page, record=self._record_tool, before_call=self._speak_pending
        )
        self.clock = MediaClock()  # replaced by the parts' clock when the session starts
        seed = opts.seed if opts.seed is not None else int(uuid.uuid4().int % 2**31)
        self.motion = MotionGenerator(fps=opts.fps, seed=seed, options=product_motion_options())
        self.timeline = SpeechTimeline(sample_rate=AUDIO_SAMPLE_RATE)
        self.renderer: Renderer | None = None
        self.memory = ConversationMemory(budget_tokens=opts.history_tokens, recall=character.recall)
        self.turns = TurnTaker(self, opts.turns)
        self.hands_free = opts.hands_free
        self._user_activity = 0.0  # media time of the user's latest speech or message

        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue(maxsize=_MAX_EVENTS)
        self.frames = VideoLine(
            motion=self.motion, clock=self.clock, fps=opts.fps,
            render_ahead=opts.render_ahead, offload=self.parts.offload,
        )  # fmt: skip
        self._audio_index = 0
        self._generation = 0  # stamps frames; bumped when speech is cut
        self._tasks: set[asyncio.Task[Any]] = set()
        self._active: Reply | None = None
        self._turn_numbers = itertools.count(1)
        self._trace_log = TraceLog(opts.trace_path)
        self._ptt_down = False
        self._closed = False
        self._state = ""
        self._discarded: set[int] = set()  # ids of replies dropped without a record
        self.hotwords = character_hotwords(character)
        self.vision = SessionVision(
            ConversationEyes(self, opts.vision), options=opts.vision,
            keep_image=accepts_images(self.brain),
        )  # fmt: skip

    @property
    def late_frames(self) -> int:
        return self.frames.late_frames

    @property
    def repeated_frames(self) -> int:
        return self.frames.frames_repeated

    @property
    def frames_sent(self) -> int:
        return self.frames.frames_sent

    @property
    def history(self) -> list[Turn]:
        """The recent turns, word for word (older ones are in ``memory.summary``)."""
        return self.memory.turns

    @property
    def last_user_activity(self) -> float:
        """Media time of the user's latest speech (start or end) or typed message; now while
        they are speaking (0.0 until then). The transport's idle timeout reads it."""
        return self.clock.now() if self.hearing.speaking else self._user_activity

    def media_time(self) -> float:
        return self.clock.now()

    async def farewell(self, text: str) -> None:
        """Say ``text`` as the character (cutting any answer in progress) and return once it
        has played (or was cut by the user): the transport then ends the session."""
        if self._active is not None:
            self.interrupt(self._active, "goodbye")
        trace = TurnTrace(turn=self.next_turn_number())
        reply = self._start_reply(trace, text=text)
        reply.commit()
        await reply.finished()

    @property
    def active(self) -> Reply | None:
        """The reply being prepared, played or paused (at most one at a time)."""
        return self._active

    # -- lifecycle --

    async def start(self) -> None:
        parts = self.parts
        building = parts.offload(parts.renderer)
        if parts.warm:
            # Load the models now, in worker threads, beside the renderer: loading them lazily
            # would stall the event loop (and the media with it) on the first answer or the
            # first words heard.
            renderer, _, _ = await asyncio.gather(
                building,
                parts.offload_voice(warm_voice, self.tts),
                parts.offload(self.hearing.load),
            )
        else:
            renderer = await building
        self.renderer = renderer
        self.clock = self.frames.clock = parts.clock()
        self.hearing.set_prompt(self.hotwords.prompt())
        self.spawn(self.frames.run(renderer), "video")
        self.spawn(self._hearing_loop(), "hearing")
        self._set_state("listening")
        if self.video.reduced:
            width, height = self.video.size
            self.emit(VideoLowered(self.clock.now(), width, height, self.video.fps,
                                   self.video.reason))  # fmt: skip
        if self.options.greet:
            self._greet(self.brain.greeting())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.tools.cancel_all()
        self.turns.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        await self.vision.close()
        with contextlib.suppress(Exception):
            self.hearing.clear()
            await self.hearing.aclose()
        self.frames.close()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"talkie-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.error("session %s: task %s failed", self.id, task.get_name(), exc_info=error)
        if isinstance(error, VoiceFailed):
            stage, message = "tts", "the character's voice failed"
        elif task.get_name().endswith("-hearing"):
            stage, message = "asr", "the character stopped hearing you; please reconnect"
        elif task.get_name().endswith("-video"):
            stage, message = "video", "the character's video stopped"
        else:
            stage, message = "session", "the character hit an internal error"
        self.emit(SessionError(t=self.clock.now(), message=message, stage=stage))

    # -- media out --

    async def next_video_frame(self, lead: float = 0.0) -> VideoFrame:
        frame = await self.frames.next_frame(lead)
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
        chunk = AudioChunk(samples, AUDIO_SAMPLE_RATE, pts)
        if not self._closed:
            # The ears tell the user from this echo. If they have failed, the hearing task
            # reports it (and ends the turn-taking); the voice itself must go on playing.
            with contextlib.suppress(Exception):
                self.hearing.push_reference(chunk)
        return chunk

    def _mark_frame(self, frame: VideoFrame) -> None:
        reply = self._active
        start = reply.first_audible if reply is not None else None
        if reply is not None and start is not None and frame.pts >= start - 0.5 / self.fps:
            reply.trace.mark("first_frame_sent", self.clock.now())

    # -- media in --

    def push_audio(self, chunk: AudioChunk) -> None:
        if self._closed or self.hearing.failed:  # the hearing task reports its failure
            return
        if not self.hands_free and not self._ptt_down:
            return
        # Stamp input with the conversation clock (arrival time minus the chunk's duration) unless
        # the transport already mapped it onto our clock (negative: said before the clock started,
        # while the page connected; see talkie.transport.preroll).
        pts = chunk.pts if chunk.pts != 0 else max(0.0, self.clock.now() - chunk.duration)
        self.hearing.push(AudioChunk(chunk.samples, chunk.sample_rate, pts))

    async def _hearing_loop(self) -> None:
        async for event in self.hearing.events():
            now = self.clock.now()
            if isinstance(event, VoiceActivity):
                self._user_activity = now
                if event.speaking:
                    self.motion.set_mode("listening")
                    self.turns.on_speech_start(event.pts)
                    self._set_state("listening")
                else:
                    self.turns.on_speech_end(event.pts)
                    if self._active is None or not self._active.audible(now):
                        self.motion.set_mode("idle")
            elif isinstance(event, FinalTranscript):
                if event.text.strip():
                    who = self.turns.speaker or ("meeting" if self.turns.group else "")
                    said = event.text.strip()
                    self.emit(UserTranscript(t=now, text=said, final=True, speaker=who))
                    self.hotwords.learn_names(event.text)
                self.turns.on_segment(event)
            elif isinstance(event, PauseTranscript):
                self.emit(UserTranscript(t=now, text=event.text, final=False))
                self.turns.on_pause(event.text, event.speech_end)
            elif isinstance(event, Transcript):
                self.emit(UserTranscript(t=now, text=event.text, final=False))
                # A brain that can start on the question while it is being asked (a local
                # LLM filling its KV cache) gets the words so far.
                prepare = getattr(self.brain, "prepare", None)
                if callable(prepare) and event.text.strip():
                    prepare(self.memory.context(), event.text)

    def wants_frame(self, source: str) -> bool:
        """Should the transport convert and hand over a ``source`` frame arriving now?"""
        return not self._closed and self.vision.wants(source)

    def push_frame(self, frame: SeenFrame) -> None:
        if not self._closed:
            self.vision.push(frame)

    def set_screen_words(self, lines: tuple[str, ...]) -> None:
        """Words on the user's screen are likely in their questions: hotwords for the ears."""
        self.hotwords.set_screen(lines)
        self.hearing.set_prompt(self.hotwords.prompt())

    # -- client events --

    def handle_client_event(self, event: dict[str, Any]) -> None:
        match parse_client_event(event):
            case PushToTalk(down=down):
                self._push_to_talk(down)
            case ModeChanged(hands_free=hands_free):
                self.hands_free = hands_free
            case TextTyped(text=text):
                self._user_activity = self.clock.now()
                self.emit(UserTranscript(t=self.clock.now(), text=text, final=True, typed=True))
                self.turns.on_typed(text)
            case InterruptRequested():
                if self._active is not None:
                    self.interrupt(self._active, "client")
            case ToolResultSent(event=raw):
                self.tools.resolve(raw)
            case VisionSwitched(event=raw):
                self.vision.handle_event(raw)
            case GroupModeChanged() | SpeakerChanged() as meeting:
                self.turns.meeting_event(meeting, self.character.persona.name)

    def _push_to_talk(self, down: bool) -> None:
        self._ptt_down = down
        reply = self._active
        if down and reply is not None and reply.audible(self.clock.now()):
            self.interrupt(reply, "push-to-talk")
        if not down and not self.hands_free:
            # Releasing the button ends the turn now: the user's "silence" is fed to the ears
            # so the segment ends at once (with the microphone gated off, real silence would
            # never arrive), and its answer does not wait for more.
            self.turns.answer_now()
            silence = np.zeros(int(0.4 * 16_000), np.float32)
            self.hearing.push(AudioChunk(silence, 16_000, self.clock.now()))

    # -- replies (TurnTaker's host) --

    def next_turn_number(self) -> int:
        return next(self._turn_numbers)

    def prepare(self, turn: UserTurn) -> Reply:
        """An answer to ``turn`` as it stands, held until the turn is judged complete."""
        trace = TurnTrace(turn=turn.number, user_text=turn.text, typed=turn.typed)
        trace.mark("speech_end", turn.speech_end)
        trace.mark("asr_final", turn.received)
        seen = self.vision.context(turn.text)  # what it sees, for this answer only
        if seen is not None:
            trace.vision = seen.sight.reference() if seen.sight else {}
        history = self.memory.context() + ([seen] if seen is not None else [])
        return self._start_reply(trace, brain=True, user_text=turn.text, history=history, turn=turn)

    def say(self, text: str) -> None:
        """The character says ``text`` now, as a turn of its own (greeting someone it sees)."""
        self._greet(text)

    def _greet(self, text: str) -> None:
        trace = TurnTrace(turn=self.next_turn_number())
        self._start_reply(trace, text=text).commit()

    def _start_reply(
        self,
        trace: TurnTrace,
        *,
        brain: bool = False,
        user_text: str = "",
        history: list[Turn] | None = None,
        text: str = "",
        turn: UserTurn | None = None,
    ) -> Reply:
        token = _TURN.set(trace)  # the reply's tasks inherit it (tool calls are recorded there)
        try:
            reply = Reply(
                speaker=self, trace=trace, spawn=self.spawn, brain=self.brain if brain else None,
                user_text=user_text, history=history or [], text=text,
                rewind_s=self.options.turns.resume_rewind_s,
                speech_ahead_s=self.options.speech_ahead_s,
            )  # fmt: skip
            self._active = reply
            self.spawn(self._run_reply(reply, turn), f"turn{trace.turn}")
        finally:
            _TURN.reset(token)
        return reply

    def commit(self, reply: Reply) -> None:
        reply.commit()
        if reply.first_audible is None and reply.state == "playing":
            self._set_state("thinking")

    async def _run_reply(self, reply: Reply, turn: UserTurn | None) -> None:
        """A reply lasts until it has finished PLAYING (or was cut): only then is the history
        written, with exactly the words the user heard, and the trace published."""
        try:
            await reply.finished()
        finally:
            if reply.first_audible is not None:
                self.turns.character_spoke(self.clock.now())  # follow-ups count from here
            if id(reply) in self._discarded:
                self._discarded.discard(id(reply))
            else:
                self._record(reply, turn)
            if self._active is reply:
                self._active = None
                self._set_state("listening")
                if not self.turns.pending:
                    self.motion.set_mode("idle")

    def _record(self, reply: Reply, turn: UserTurn | None) -> None:
        trace, now = reply.trace, self.clock.now()
        if turn is not None:
            trace.user_text = turn.text
            self.memory.add(Turn("user", turn.text))
        said = reply.heard_text()
        if said or reply.tool_exchanges:
            self.memory.add(Turn("assistant", said, tuple(reply.tool_exchanges)))
        self.emit(trace.as_event(now))
        self.emit(trace.turn_event(now, said, tuple(reply.backchannels)))
        self._trace_log.write(self.id, trace)

    def drop(self, reply: Reply) -> None:
        """The reply is no longer wanted and was not (really) heard: no record of it."""
        self._discarded.add(id(reply))
        reply.cancel(self.clock.now())

    def interrupt(self, reply: Reply, reason: str) -> None:
        """Barge-in for good: stop sound and mouth now, keep only what was heard."""
        now = self.clock.now()
        reply.cancel(now)
        self.emit(Interrupted(t=now, reason=reason))
        log.debug("session %s: interrupted (%s) at %.2f s", self.id, reason, now)

    def paused(self, reply: Reply) -> None:
        self._set_state("listening")

    def resumed(self, reply: Reply) -> None:
        if reply.audible(self.clock.now()):
            self._set_state("speaking")

    def heard_echo(self) -> None:
        self.hearing.confirm_echo()

    def turn_changed(self, turn: UserTurn | None) -> None:
        self.hearing.set_prompt(self.hotwords.prompt(turn.text if turn else ""))

    # -- the reply's speaker --

    async def synthesize(self, text: str) -> list[tuple[SpeechClip, np.ndarray]]:
        rate = self.timeline.sample_rate

        def run() -> list[tuple[SpeechClip, np.ndarray]]:
            return [(c, resample(c.audio, c.sample_rate, rate)) for c in self.tts.synthesize(text)]

        clips: list[tuple[SpeechClip, np.ndarray]] = await self.parts.offload_voice(run)
        return clips

    def place(self, reply: Reply, clip: SpeechClip, audio: np.ndarray) -> ScheduledSpeech:
        """Put a clip on the clock, as soon as possible after what is already placed."""
        now = self.clock.now()
        start = max(now + self.options.start_margin, self.timeline.end)
        item = self.timeline.schedule(clip, start=start, generation=self._generation, audio=audio)
        self.motion.push(clip, start=start, generation=self._generation)
        if start - self.motion.options.lead < self.frames.next_render / self.fps:
            # Frames rendered ahead did not know about this speech (or its anticipation):
            # produce them again so sound and mouth start together.
            self.frames.rewind_unseen()
        self._set_state("speaking")
        self.emit(ReplySpoken(
            t=now, text=clip.text, start=round(start, 3), turn=reply.trace.turn,
            duration=round(clip.duration, 3),
        ))  # fmt: skip
        return item

    def cut(self, at: float) -> list[ScheduledSpeech]:
        """Nothing plays after ``at``; the mouth is released from the frame on screen."""
        cut = self.timeline.cut(at)
        self._generation += 1
        # Frames not yet shown still carry the old mouth: produce them again, releasing the
        # mouth from the state on screen (clear after the rewind, which restores pushed clips).
        self.frames.rewind_unseen()
        self.motion.clear(generation=self._generation)
        return cut

    def brain_failed(self, reply: Reply, error: TalkieError) -> None:
        self.emit(
            SessionError(
                t=self.clock.now(), message="the brain is not answering; please retry", stage="llm"
            )
        )

    # -- tools --

    def _call_page(self, call_id: str, name: str, arguments: dict[str, Any]) -> None:
        self.emit(ToolCallRequested(t=self.clock.now(), id=call_id, name=name, arguments=arguments))

    def _speak_pending(self) -> None:
        reply = self._active
        if reply is not None:
            reply.speak_pending()

    def _record_tool(self, entry: dict[str, Any]) -> None:
        """A tool call finished (or was refused): into the turn's trace, and to the page."""
        trace = _TURN.get()
        if trace is not None and len(trace.tools) < self.options.max_tool_calls_per_turn:
            trace.tools.append(entry)
        log.info("session %s: tool %s (%s): %s, %.0f ms", self.id, entry["name"], entry["kind"],
                 entry["reason"] or "ok", entry["elapsed_ms"])  # fmt: skip
        self.emit(ToolCallFinished(t=self.clock.now(), turn=trace.turn if trace else None, **entry))

    # -- events --

    def events(self) -> AsyncIterator[SessionEvent]:
        return self._event_stream()

    async def _event_stream(self) -> AsyncIterator[SessionEvent]:
        while not self._closed:
            yield await self._events.get()

    def emit(self, event: SessionEvent) -> None:
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
            self.emit(StateChanged(t=self.clock.now(), state=state))
