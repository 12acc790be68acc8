"""What a conversation is made of, built outside it and injected as one bundle.

The session core (``talkie.session.conversation``) runs the loop only: it never decides which
brain, voice, ears or renderer a character gets. ``build_parts`` makes the product's choice
(the brain named by the options and wrapped in the character's guardrails, the character's voice
and the shared speech recogniser in their worker processes, Silero + Smart Turn ears, the CPU
mesh-warp renderer); tests build their own bundle (scripted brains, synchronous ears, a virtual
clock) and drive the same core.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from talkie.brain import LLMOptions, load_brain
from talkie.brain.base import Brain
from talkie.brain.guardrails import GuardedBrain, HttpModerator
from talkie.brain.tools import WebhookCaller, WebhookOptions
from talkie.errors import TalkieError
from talkie.hearing import Hearing, HearingOptions
from talkie.hearing.turn_end import TurnEndPolicy
from talkie.hearing.turn_model import SmartTurnModel, smart_turn_model_path
from talkie.render import RenderOptions, load_renderer
from talkie.render.base import Renderer
from talkie.render.budget import VideoBudget, VideoQuality
from talkie.session.character import Character
from talkie.session.group import GroupOptions
from talkie.session.timeline import MediaClock
from talkie.session.tools import SessionTools
from talkie.session.vision import VisionOptions
from talkie.session.voices import shared_recognizer, shared_voice
from talkie.voice import TextToSpeech
from talkie.worker import warm_once

__all__ = [
    "SessionOptions",
    "SessionParts",
    "TurnTakingOptions",
    "build_parts",
    "plan_video",
    "warm_up_models",
    "warm_voice",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Offload = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class TurnTakingOptions:
    """When the user's turn is over, and what talking over the character does.

    - ``end``: the silence to wait after the user's speech, by what the words look like
      (``talkie.hearing.turn_end``); the answer is prepared during the wait.
    - A user who goes on within ``merge_window_s`` of their last words, while the answer has
      been heard for less than ``merge_heard_s``, is finishing their question: the answer is
      dropped and the whole question answered once.
    - Talking over the character pauses it at once; a segment of at most ``backchannel_max_s``
      whose words are a backchannel ("mm-hm", "yeah", "okay") resumes it (from the start of
      the word it was saying); so does a "barge-in" whose words repeat what the character was
      saying (its own voice coming back, share of words >= ``echo_words``), or no words at all.
    - ``resume_rewind_s``: how much before the cut word the character resumes.
    - ``barge_words_wait_s``: after a short sound over the character, how long to wait for its
      words before going on anyway (they still decide when they come).
    - ``group``: in a meeting, answer only turns meant for the character
      (``talkie.session.group``); None answers everything (a one-to-one conversation).
    """

    end: TurnEndPolicy = field(default_factory=TurnEndPolicy)
    merge_window_s: float = 2.5
    merge_heard_s: float = 1.5
    backchannel_max_s: float = 1.5
    echo_words: float = 0.6
    resume_rewind_s: float = 0.05
    barge_words_wait_s: float = 1.0
    group: GroupOptions | None = None


@dataclass(frozen=True)
class SessionOptions:
    fps: float = 24.0
    size: tuple[int, int] = (1280, 720)
    render_ahead: int = 3  # frames rendered ahead of the playout clock (latency vs. safety)
    start_margin: float = 0.06  # seconds between an answer being ready and it playing
    # A reply's next clause is synthesised when less than this much of its speech is left to
    # play (None: every clause as soon as its text is known). Synthesising a whole answer at
    # once took a core for 1-3 s at every answer start, and every session's frames came late.
    speech_ahead_s: float | None = 3.0
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
    turns: TurnTakingOptions = field(default_factory=TurnTakingOptions)
    hearing: HearingOptions = field(default_factory=HearingOptions)
    vision: VisionOptions = field(default_factory=VisionOptions)
    # When set, a session started on a busy machine gets smaller or fewer frames (``size`` and
    # ``fps`` are then what it asked for; see talkie.render.budget). The server sets it.
    video_budget: VideoBudget | None = None


def plan_video(opts: SessionOptions) -> tuple[SessionOptions, VideoQuality]:
    """The options a new session runs with, and its video: what ``opts`` ask for, or less when
    ``opts.video_budget`` finds the machine busy (then ``size`` and ``fps`` are lowered)."""
    video = VideoQuality(opts.size, opts.fps)
    if opts.video_budget is None:
        return opts, video
    video = opts.video_budget.plan(video)
    return dataclasses.replace(opts, size=video.size, fps=video.fps), video


# Waiting for the shared voice process gets its own threads: it must never take the threads
# that render and encode frames (with three sessions answering at once it did, and frames
# queued behind the waits).
_VOICE_WAITS = concurrent.futures.ThreadPoolExecutor(
    max_workers=8, thread_name_prefix="talkie-voice"
)


async def _to_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


async def _voice_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_VOICE_WAITS, fn, *args)


@dataclass
class SessionParts:
    """One conversation's parts.

    ``renderer`` is called once, in a worker thread, when the session starts (building one
    takes ~50 ms). ``tools`` is the brain's tool executor (the conversation attaches itself to
    it). ``clock`` makes the media clock. ``offload`` runs blocking work (rendering a frame) off
    the event loop, ``offload_voice`` waits for speech synthesis; tests on virtual time run both
    inline.
    """

    brain: Brain
    voice: TextToSpeech
    hearing: Hearing
    renderer: Callable[[], Renderer]
    tools: SessionTools
    clock: Callable[[], MediaClock] = MediaClock
    offload: Offload = _to_thread
    offload_voice: Offload = _voice_thread
    warm: bool = True  # load the models before the session starts (not for scripted fakes)


@functools.cache
def _turn_model() -> SmartTurnModel | None:
    """The process's end-of-turn model, shared by its sessions (each has its own listener
    state; the model is read-only, and checking its file costs ~0.1 s)."""
    try:
        smart_turn_model_path()
    except TalkieError as exc:  # hearing works without it (text cues and silence only)
        log.warning("%s; ending turns without it", exc)
        return None
    return SmartTurnModel()


def warm_voice(tts: Any) -> None:
    """Say "Hi." the first time ``tts`` is used in this process (its first clause is slow)."""
    with contextlib.suppress(Exception):  # a voice that fails says so on its first answer
        warm_once(tts, lambda voice: list(voice.synthesize("Hi.")))


def warm_up_models(voice: str) -> None:
    """Load and warm what a session of the product uses, so the next one here starts in a
    fraction of a second (a worker's warm-up; blocking): the speech recognizer, the VAD and
    end-of-turn models, and ``voice``."""
    tts = shared_voice(voice)

    def speak() -> None:
        tts.load()
        warm_voice(tts)

    # The recognizer and the voice each start a process of their own: side by side, the
    # warm-up takes the longer of the two instead of their sum (2.4 s + 1.6 s here).
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="talkie-warm") as pool:
        speaking = pool.submit(speak)
        Hearing(recognizer=shared_recognizer(), turn_model=_turn_model()).load()
        speaking.result()


def build_parts(character: Character, options: SessionOptions | None = None) -> SessionParts:
    """The product's parts for ``character`` (see the module docstring)."""
    opts = options or SessionOptions()
    tools = SessionTools(
        tools=character.tools, webhooks=WebhookCaller(options=opts.webhook),
        ui_timeout=opts.ui_tool_timeout,
    )  # fmt: skip
    brain = load_brain(
        opts.brain, persona=character.persona, retriever=character.knowledge,
        tools=character.tools, executor=tools, live=True,
    )  # fmt: skip
    if character.guardrails is not None and character.guardrails.active:
        brain = GuardedBrain(
            brain, character.guardrails, moderator=HttpModerator.from_env(), label=character.id
        )
    hearing = Hearing(
        options=opts.hearing, recognizer=shared_recognizer(), turn_model=_turn_model()
    )
    rig, spec, size = character.rig, character.renderer, opts.size
    return SessionParts(
        brain=brain,
        voice=shared_voice(character.voice),
        hearing=hearing,
        # the character's renderer (or the server's, then the CPU mesh warp)
        renderer=lambda: load_renderer(spec, rig, options=RenderOptions(size=size)),
        tools=tools,
    )
