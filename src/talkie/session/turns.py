"""Turn-taking: when the user has finished, and what talking over the character means.

The ears deliver *segments* (a breath group and its transcript). ``TurnTaker`` gathers them
into the user's turn and decides when it may be answered:

- each segment with words joins the open turn, and an answer to the whole turn so far is
  prepared at once (``Host.prepare``: held, not heard). The turn's words and the end-of-turn
  model set how long to wait after the last speech (``TurnEndPolicy``); when that silence has
  passed with no new segment in progress, the answer is committed and heard;
- a segment that arrives before the answer was heard (the user paused, then went on) joins the
  turn: the prepared answer is dropped and the whole question is answered once;
- the user starting to talk while the character speaks *pauses* it at once (``Reply.pause``).
  When the segment's words arrive: nothing, a backchannel ("mm-hm", "yeah") or the character's
  own words coming back resume it, and a backchannel is recorded; if the user is finishing
  the question the answer began too early for (soon after their last words, little of the
  answer heard), the answer is dropped and the whole turn answered; anything else cancels the
  answer (only what was heard is kept) and starts a new turn.

In group mode (``TurnTakingOptions.group``, a meeting) a turn that is not meant for the
character (``talkie.session.group``) is *overheard*: reported, never prepared nor answered. Its
words stay open for the next segment (a name said after a pause, "... what do you think, Nova?").

Nothing here blocks or sleeps except the commit timer, which sleeps on the media clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from talkie.hearing.listener import FinalTranscript
from talkie.hearing.turn_end import TurnCue, classify, is_backchannel, words
from talkie.session.client_events import GroupModeChanged, SpeakerChanged
from talkie.session.events import Backchannel, Overheard, SessionEvent
from talkie.session.group import GroupOptions, group_options, is_addressed, without_address
from talkie.session.parts import TurnTakingOptions
from talkie.session.reply import Reply
from talkie.session.timeline import MediaClock

__all__ = ["Segment", "TurnTaker", "UserTurn"]

_ASKING: frozenset[TurnCue] = frozenset({"question", "request"})


@dataclass(frozen=True)
class Segment:
    """One breath group of the user's: words, where the speech was, the end-of-turn model's
    probability, and when its transcript arrived (media seconds)."""

    text: str
    speech_start: float
    speech_end: float
    probability: float | None = None
    received: float = 0.0


@dataclass
class UserTurn:
    """What the user said for one answer (one or more segments, or a typed message)."""

    number: int
    segments: list[Segment] = field(default_factory=list)
    typed: bool = False
    reply: Reply | None = None
    answers: str = ""  # the words ``reply`` answers (it is kept while they stay the same)
    deadline: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def speech_end(self) -> float:
        worded = [s for s in self.segments if s.text.strip()]
        return (worded or self.segments)[-1].speech_end

    @property
    def received(self) -> float:
        return self.segments[-1].received


class Host(Protocol):
    """What the turn taker needs from its conversation."""

    clock: MediaClock

    @property
    def active(self) -> Reply | None: ...

    def prepare(self, turn: UserTurn) -> Reply: ...

    def commit(self, reply: Reply) -> None: ...

    def drop(self, reply: Reply) -> None: ...

    def interrupt(self, reply: Reply, reason: str) -> None: ...

    def paused(self, reply: Reply) -> None: ...

    def resumed(self, reply: Reply) -> None: ...

    def turn_changed(self, turn: UserTurn | None) -> None: ...

    def heard_echo(self) -> None: ...

    def next_turn_number(self) -> int: ...

    def emit(self, event: SessionEvent) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...


@dataclass
class _Barge:
    reply: Reply
    at: float  # media time the user's speech started
    resumed: bool = False  # went on before the words were known (a short sound, slow ears)


class TurnTaker:
    """See the module docstring. Call the ``on_*`` methods from the event loop, in order."""

    def __init__(self, host: Host, options: TurnTakingOptions) -> None:
        self.host = host
        self.options = options
        self.pending: UserTurn | None = None  # the turn not yet heard being answered
        self._barge: _Barge | None = None
        self._open_segments = 0  # segments started whose transcript has not arrived
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._commit_task: asyncio.Task[None] | None = None
        self._answer_now = False  # push-to-talk released: no waiting for the next segment
        self.group: GroupOptions | None = options.group
        self.speaker = ""  # who is talking, where a meeting says (transcripts keep it)
        self._spoke_at: float | None = None  # media time the character's voice was last heard
        self._speech_start = 0.0  # of the user's latest segment

    # -- inputs ---------------------------------------------------------------------------------

    def on_speech_start(self, pts: float) -> None:
        self._speech_start = pts
        self._open_segments += 1
        self._quiet.clear()
        self._pause_active(pts)

    def _pause_active(self, pts: float) -> None:
        """The user talks while the character speaks (or is about to): it stops at once."""
        reply = self.host.active
        if reply is not None and self._barge is None and reply.pause(self.host.clock.now()):
            self._barge = _Barge(reply, pts)
            self.host.paused(reply)

    def on_speech_end(self, pts: float) -> None:
        """The user stopped. A short sound over the character is most likely "mm-hm": if its
        words are slow to come (a busy machine), the character goes on meanwhile."""
        barge = self._barge
        if barge is None or pts - barge.at > self.options.backchannel_max_s:
            return

        async def resume_if_still_unknown() -> None:
            await self.host.clock.sleep_until(pts + self.options.barge_words_wait_s)
            if self._barge is barge and barge.reply.state == "paused":
                barge.resumed = True
                barge.reply.resume()
                self.host.resumed(barge.reply)

        self.host.spawn(resume_if_still_unknown(), "barge-wait")

    def on_segment(self, final: FinalTranscript) -> None:
        """A segment's final transcript (``text`` may be empty: a cough, noise)."""
        self._open_segments = max(0, self._open_segments - 1)
        if self._open_segments == 0:
            self._quiet.set()
        now = self.host.clock.now()
        segment = Segment(
            final.text.strip(), final.speech_start, final.speech_end, final.turn_probability, now
        )
        if self._barge is None and segment.text:
            self._pause_active(segment.speech_start)  # it began to play while they spoke
        barge, self._barge = self._barge, None
        if barge is not None and self._barged(barge, segment):
            return
        self._forget_heard_turn(now)
        turn = self.pending
        if not segment.text:
            if turn is not None and not turn.segments:  # prepared on a pause, then nothing
                self._drop(turn)
                self.pending = None
            return  # nothing said: an open turn keeps its answer and its deadline
        turn = self._unless_overheard_before(turn, segment.speech_start)
        if turn is None:
            turn = self.pending = UserTurn(self.host.next_turn_number())
        turn.segments.append(segment)
        if not turn.typed and self.group is not None:
            if not self._for_character(turn.text, now):
                self._drop(turn)  # (an answer prepared in the pause: words now known not ours)
                who = self.speaker or "meeting"
                self.host.emit(Overheard(t=now, text=segment.text, speaker=who))
                return
            turn.segments = self._unaddressed(turn.segments)
        self._prepare(turn)  # keeps the answer prepared in the pause if the words are the same

    def on_pause(self, text: str, speech_end: float) -> None:
        """The words of a segment, known in the pause that may end it: start on the answer now
        (held; the segment's final, usually the same words, commits it)."""
        if self._barge is not None or not text.strip():
            return  # over the character: the final decides between backchannel and turn
        now = self.host.clock.now()
        self._forget_heard_turn(now)
        turn = self._unless_overheard_before(self.pending, self._speech_start)
        active = self.host.active
        if active is not None and (turn is None or active is not turn.reply):
            return  # the character is still busy with another answer
        turn = turn or UserTurn(self.host.next_turn_number())
        draft = UserTurn(
            turn.number,
            [*turn.segments, Segment(text.strip(), speech_end, speech_end, None, now)],
            typed=turn.typed,
        )
        if turn.reply is not None and turn.answers == draft.text:
            return
        if not draft.typed and self.group is not None:
            if not self._for_character(draft.text, now):
                return  # not for the character (group mode): its final decides again
            draft.segments = self._unaddressed(draft.segments)
        self._drop(turn)
        turn.reply, turn.answers = self.host.prepare(draft), draft.text
        self.pending = turn

    def on_typed(self, text: str) -> None:
        """A typed message: its own turn, answered at once. A spoken turn still being gathered
        (its answer held) is part of it; an answer under way is cut."""
        now = self.host.clock.now()
        self._forget_heard_turn(now)
        turn = self.pending
        if turn is not None and turn.reply is not None and turn.reply.state == "held":
            self._drop(turn)
        else:
            turn = None
            reply = self._barge.reply if self._barge is not None else self.host.active
            if reply is not None and reply.state != "cancelled":
                self.host.interrupt(reply, "typed message")
        self._barge = None
        turn = turn or UserTurn(self.host.next_turn_number())
        turn.typed = True
        turn.segments.append(Segment(text.strip(), now, now, None, now))
        self._prepare(turn, wait=False)
        self.pending = None  # answered at once: later words are a new turn (or a barge-in)

    def answer_now(self) -> None:
        """Push-to-talk released: answer the next segment without waiting for more."""
        self._answer_now = True

    def reset(self) -> None:
        """The ears were cleared (no transcript will come for segments in progress)."""
        self._open_segments = 0
        self._quiet.set()

    def set_group(self, group: GroupOptions | None) -> None:
        """Switch group mode on (a meeting) or off (one-to-one)."""
        self.group = group

    def meeting_event(self, event: GroupModeChanged | SpeakerChanged, character_name: str) -> None:
        """The page switched group mode or said who is talking."""
        if isinstance(event, SpeakerChanged):
            self.speaker = event.name
        else:
            names, follow = event.names, event.follow_up_s
            self.set_group(group_options(event.on, names, follow, character_name=character_name))

    def character_spoke(self, until: float) -> None:
        """The character's voice was heard until media time ``until`` (follow-ups count
        from there)."""
        self._spoke_at = until if self._spoke_at is None else max(self._spoke_at, until)

    def _unless_overheard_before(self, turn: UserTurn | None, start: float) -> UserTurn | None:
        """``turn``, unless it is overheard words more than a breath before ``start``: then
        the new words are a turn of their own (the chatter would confuse the answer)."""
        if (
            turn is not None
            and turn.reply is None
            and self.group is not None
            and start - turn.speech_end > self.group.join_s
        ):
            self.pending = None
            return None
        return turn

    def _unaddressed(self, segments: list[Segment]) -> list[Segment]:
        """The segments without the words that call the character (group mode)."""
        assert self.group is not None
        names = self.group.names
        return [dataclasses.replace(s, text=without_address(s.text, names)) for s in segments]

    def _for_character(self, text: str, now: float) -> bool:
        if self.group is None:
            return True
        active = self.host.active
        if active is not None and active.audible(now):
            since: float | None = 0.0
        else:
            since = None if self._spoke_at is None else max(0.0, now - self._spoke_at)
        return is_addressed(text, self.group, since_character_spoke=since)

    def cancel(self) -> None:
        if self._commit_task is not None:
            self._commit_task.cancel()

    # -- decisions ------------------------------------------------------------------------------

    def _barged(self, barge: _Barge, segment: Segment) -> bool:
        """The user spoke over ``barge.reply``. Returns True if the segment was handled."""
        reply, opts = barge.reply, self.options
        duration = segment.speech_end - segment.speech_start
        said_by_character = self._echo(reply, segment)
        if (
            not segment.text
            or said_by_character
            or (duration <= opts.backchannel_max_s and is_backchannel(segment.text))
        ):
            if segment.text and not said_by_character:
                reply.backchannels.append(segment.text)
                self.host.emit(Backchannel(t=segment.received, text=segment.text))
            reply.resume()
            self.host.resumed(reply)
            return True
        if barge.resumed:
            reply.pause(self.host.clock.now())  # it went on too soon: these were words
        turn = self.pending if self.pending is not None and self.pending.reply is reply else None
        if (
            turn is not None
            and segment.speech_start - turn.speech_end <= opts.merge_window_s
            and reply.heard_for(barge.at) <= opts.merge_heard_s
        ):
            # The user was still finishing the question: answer all of it, once.
            self._drop(turn)
            turn.segments.append(segment)
            self._prepare(turn)
            return True
        if reply.first_audible is not None:  # talked over: it was speaking until now
            self.character_spoke(self.host.clock.now())
        self.host.interrupt(reply, "barge-in")
        if self.pending is not None and self.pending.reply is reply:
            self.pending = None
        return False

    def _echo(self, reply: Reply, segment: Segment) -> bool:
        """Are the segment's words the character's own (its voice coming back)?"""
        heard = words(segment.text)
        if not heard:
            return False
        said = set(words(reply.spoken_recently(segment.speech_start - 2.0)))
        if sum(w in said for w in heard) < self.options.echo_words * len(heard):
            return False
        self.host.heard_echo()
        return True

    def _forget_heard_turn(self, now: float) -> None:
        """A turn whose answer has been heard (or is over) takes no more segments."""
        turn = self.pending
        if turn is None or turn.reply is None:
            return
        reply = turn.reply
        if reply.state == "cancelled" or (
            reply.first_audible is not None and reply.first_audible <= now
        ):
            self.pending = None
            self.host.turn_changed(None)

    def _prepare(self, turn: UserTurn, *, wait: bool = True) -> None:
        end = self.options.end
        cue = classify(turn.text)
        probability = turn.segments[-1].probability
        silence = end.wait(cue, probability)
        if cue == "statement" and any(classify(s.text) in _ASKING for s in turn.segments[:-1]):
            silence = min(silence, end.complete_s + 0.5)  # context after the question
        now_please = not wait or self._answer_now
        self._answer_now = False
        turn.deadline = turn.speech_end + (0.0 if now_please else silence)
        if turn.reply is None or turn.answers != turn.text:
            self._drop(turn)  # not heard yet: the whole turn gets one answer
            turn.reply, turn.answers = self.host.prepare(turn), turn.text
        self.host.turn_changed(turn)
        if self._commit_task is not None:
            self._commit_task.cancel()
        if now_please:
            self.host.commit(turn.reply)
            return
        self._commit_task = self.host.spawn(self._commit_when_done(turn), f"commit{turn.number}")

    def _drop(self, turn: UserTurn) -> None:
        if turn.reply is not None:
            self.host.drop(turn.reply)
        turn.reply, turn.answers = None, ""

    async def _commit_when_done(self, turn: UserTurn) -> None:
        clock = self.host.clock
        while True:
            await clock.sleep_until(turn.deadline)
            # A segment in progress may continue the turn: its transcript decides.
            while not self._quiet.is_set():
                await self._quiet.wait()
            if clock.now() >= turn.deadline - 1e-6:
                break
        reply = turn.reply
        if reply is not None and reply.state == "held":
            self.host.commit(reply)
