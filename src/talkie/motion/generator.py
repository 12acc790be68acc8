"""The motion stage: scheduled speech + idle/listening behaviour -> FaceFrames, 4 frames per step.

``MotionGenerator`` is autoregressive in the sense the design asks for: every step continues the
state the previous one left (idle processes, gaze, head drift, blink schedule, barge-in release),
so the frame stream is the same however it is chunked. Speech is pushed as whole clips placed on
the media clock; each clip's mouth and prosody tracks are computed once, vectorised, at push time,
and a step only slices them. That keeps a step well under a millisecond on one core.

Timing contract: frame ``i`` is presented at ``pts = i / fps`` and shows the mouth for the audio
sample that plays at that media time (a clip pushed with ``start=s`` plays its sample ``k`` at
``s + k / sample_rate``).
"""

from __future__ import annotations

import collections
import copy
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from talkie.messages import FaceFrame, FaceParams, SpeechClip
from talkie.motion.idle import PARAM_INDEX, IdleMotion, IdleOptions, Mode
from talkie.motion.lipsync import LipSyncOptions, mouth_track
from talkie.motion.prosody import ProsodyOptions, prosody_track
from talkie.motion.visemes import MOUTH_PARAMS

__all__ = ["MotionGenerator", "MotionOptions"]

log = logging.getLogger(__name__)

# Columns of the "speech contribution" vector: the 5 mouth params, then prosody's brow/pitch/yaw.
_SPEECH_COLS = np.array(
    [PARAM_INDEX[name] for name in MOUTH_PARAMS]
    + [PARAM_INDEX["brow_raise"], PARAM_INDEX["head_pitch"], PARAM_INDEX["head_yaw"]]
)
_N_MOUTH = len(MOUTH_PARAMS)
_HEAD_COLS = np.array([PARAM_INDEX[n] for n in ("head_yaw", "head_pitch", "head_roll")])

# Valid range of every FaceParams field (head angles are soft-limited separately).
_LOW = np.full(len(PARAM_INDEX), -1.0)
_HIGH = np.full(len(PARAM_INDEX), 1.0)
for _name in (
    "jaw_open", "lip_round", "lip_press", "upper_lip_raise", "blink_left", "blink_right", "tongue",
    "lip_close",
):  # fmt: skip
    _LOW[PARAM_INDEX[_name]] = 0.0
for _name in ("head_yaw", "head_pitch", "head_roll"):
    _LOW[PARAM_INDEX[_name]], _HIGH[PARAM_INDEX[_name]] = -90.0, 90.0
for _name in ("head_dx", "head_dy"):
    _LOW[PARAM_INDEX[_name]], _HIGH[PARAM_INDEX[_name]] = -0.2, 0.2


@dataclass(frozen=True)
class MotionOptions:
    """Options of the whole motion stage; the sub-options tune each part."""

    step_frames: int = 4  # frames per step (4 at 24 fps = 167 ms, as in the design)
    head_limits_deg: tuple[float, float, float] = (10.0, 8.0, 6.0)  # |yaw|, |pitch|, |roll| caps
    release_frames: int = 4  # after clear() the mouth is closed within this many frames
    lead: float = 0.25  # a clip's track starts this long before its audio (anticipation)
    lip_lead: float = 0.0  # shift of the whole speech track vs. its audio (negative = earlier)
    tail: float = 0.6  # ... and ends this long after (relax, close, settle the head)
    lipsync: LipSyncOptions = field(default_factory=LipSyncOptions)
    idle: IdleOptions = field(default_factory=IdleOptions)
    prosody: ProsodyOptions = field(default_factory=ProsodyOptions)


@dataclass(frozen=True, eq=False)
class _Scheduled:
    """One pushed clip, already turned into per-frame tracks starting at ``first``."""

    first: int
    speech: np.ndarray  # (n, mouth params + 3): mouth params, brow, head pitch, head yaw
    presence: np.ndarray  # (n,)
    generation: int

    @property
    def end(self) -> int:
        return self.first + len(self.presence)


@dataclass(frozen=True, eq=False)
class _Snapshot:
    """The generator's state at the start of one step (for ``rewind``)."""

    index: int
    idle: IdleMotion
    last_speech: np.ndarray
    release: np.ndarray | None
    release_step: int
    clips: tuple[_Scheduled, ...]


class MotionGenerator:
    """Face parameters for every frame: lip-sync for scheduled speech over idle/listening life.

    Not thread-safe: one owner calls ``push``/``clear``/``set_mode``/``next_step`` (the session's
    motion worker). Deterministic for a given ``seed`` and call sequence.
    """

    def __init__(
        self, *, fps: float = 24.0, seed: int = 0, options: MotionOptions | None = None
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = float(fps)
        self.options = options or MotionOptions()
        if self.options.step_frames < 1:
            raise ValueError("step_frames must be >= 1")
        idle_ss, prosody_ss = np.random.SeedSequence(seed).spawn(2)
        self._idle = IdleMotion(fps=self.fps, seed=idle_ss, options=self.options.idle)
        self._prosody_rng = np.random.default_rng(prosody_ss)
        self._index = 0
        self._clips: list[_Scheduled] = []
        self._last_speech = np.zeros(len(_SPEECH_COLS))
        self._release: np.ndarray | None = None  # speech contribution fading out after clear()
        self._release_step = 0
        self._generation = 0
        self._mode: Mode = "idle"
        self._attention: tuple[float, float] | None = None
        self._snapshots: collections.deque[_Snapshot] = collections.deque(maxlen=8)

    # ------------------------------------------------------------------ control

    @property
    def frame_index(self) -> int:
        """Index of the next frame ``next_step`` will produce."""
        return self._index

    @property
    def mode(self) -> Mode:
        return self._idle.mode

    def set_mode(self, mode: Mode) -> None:
        """Choose idle behaviour: ``"idle"`` or ``"listening"`` (attentive). Eased, never a jump."""
        self._mode = mode
        self._idle.set_mode(mode, self._index / self.fps)

    def look_at(self, target: tuple[float, float] | None) -> None:
        """Keep the eyes (and, a little, the head) on ``target`` = (gaze_x, gaze_y), e.g. the
        user's face seen by their camera; None: the gaze roams as usual."""
        self._attention = target
        self._idle.attend(target)

    def push(self, clip: SpeechClip, *, start: float, generation: int = 0) -> None:
        """Schedule ``clip`` to play from media time ``start`` (seconds) and precompute its tracks.

        Frames already produced are not revisited: if ``start`` is in the past, the clip's mouth
        joins at the next frame, still aligned to the audio clock.
        """
        opts = self.options
        fps = self.fps
        start = start + opts.lip_lead
        # Not clamped to the current frame: frames before it only matter after a rewind().
        first = max(math.ceil((start - opts.lead) * fps), 0)
        last = math.floor((start + clip.duration + opts.tail) * fps)
        self._generation = generation
        if last < first:
            log.debug("clip of %.2f s at %.2f s is already over; ignored", clip.duration, start)
            return
        times = np.arange(first, last + 1, dtype=np.float64) / fps - start
        mouth = mouth_track(clip, times, options=opts.lipsync)
        pros = prosody_track(
            clip,
            times,
            energy=mouth.energy,
            presence=mouth.presence,
            rng=self._prosody_rng,
            options=opts.prosody,
        )
        speech = np.column_stack([mouth.params, pros.brow_raise, pros.head_pitch, pros.head_yaw])
        self._clips.append(_Scheduled(first, speech, mouth.presence, generation))
        for t_end in pros.phrase_ends:
            self._idle.hint_blink(start + float(t_end) + 0.1)

    def clear(self, *, generation: int | None = None) -> None:
        """Drop all scheduled speech (barge-in). The mouth relaxes and closes within
        ``release_frames`` frames, and speech gestures fade just as fast; idle life continues.

        ``generation``, if given, stamps the frames that follow (the session's new generation), so
        downstream stages don't drop them as stale.
        """
        if self._clips or np.any(self._last_speech != 0):
            # Release from what is on screen now, so the close starts from the last shown frame.
            self._release = self._last_speech.copy()
            self._release_step = 0
        self._clips = []
        if generation is not None:
            self._generation = generation

    # ------------------------------------------------------------------ frames

    def next_step(self) -> list[FaceFrame]:
        """The next ``step_frames`` frames, continuing exactly where the last step stopped."""
        return self._produce(self.options.step_frames)

    def generate(self, n_frames: int) -> list[FaceFrame]:
        """The next ``n_frames`` frames: whole steps, then a partial one if needed."""
        frames: list[FaceFrame] = []
        step = self.options.step_frames
        while len(frames) + step <= n_frames:
            frames.extend(self._produce(step))
        if len(frames) < n_frames:
            frames.extend(self._produce(n_frames - len(frames)))
        return frames

    def rewind(self, index: int) -> None:
        """Make ``index`` the next frame to produce again, keeping every scheduled clip.

        The live session renders a few frames ahead of what the viewer sees; when speech is
        pushed to start sooner than that horizon, or barge-in cuts it, the frames not yet shown
        are produced again from the state they started from. Only the last few steps can be
        rewound (``ValueError`` beyond that).
        """
        if index >= self._index:
            if index > self._index:
                self._produce(index - self._index)
            return
        usable = [s for s in self._snapshots if s.index <= index]
        if not usable:
            raise ValueError(f"cannot rewind to frame {index}: only the last steps are kept")
        snap = usable[-1]
        while self._snapshots and self._snapshots[-1].index > snap.index:
            self._snapshots.pop()
        clips = list(snap.clips) + [c for c in self._clips if all(c is not k for k in snap.clips)]
        self._idle = copy.deepcopy(snap.idle)
        # A mode chosen since that step still holds (the snapshot knows only the old one).
        self._idle.set_mode(self._mode, snap.index / self.fps)
        self._idle.attend(self._attention)
        self._last_speech = snap.last_speech.copy()
        self._release = None if snap.release is None else snap.release.copy()
        self._release_step = snap.release_step
        self._index = snap.index
        self._clips = clips
        if index > snap.index:
            self._produce(index - snap.index)

    def _produce(self, n: int) -> list[FaceFrame]:
        first = self._index
        self._snapshots.append(
            _Snapshot(
                index=first,
                idle=copy.deepcopy(self._idle),
                last_speech=self._last_speech.copy(),
                release=None if self._release is None else self._release.copy(),
                release_step=self._release_step,
                clips=tuple(self._clips),
            )
        )
        idx = np.arange(first, first + n)
        speech, presence, generations = self._speech_at(idx)
        speech += self._release_part(n)

        params = self._idle.step(first, presence)
        params[:, _SPEECH_COLS] += speech
        limits = np.asarray(self.options.head_limits_deg, dtype=np.float64)
        # tanh soft limit: identity for small angles, never beyond the cap, no visible clipping.
        params[:, _HEAD_COLS] = limits * np.tanh(params[:, _HEAD_COLS] / limits)
        np.clip(params, _LOW, _HIGH, out=params)

        self._last_speech = speech[-1].copy()
        self._index = first + n
        self._clips = [c for c in self._clips if c.end > self._index]
        fps = self.fps
        return [
            FaceFrame(
                index=int(i),
                pts=int(i) / fps,
                params=FaceParams(*params[k].tolist()),
                generation=generations[k],
            )
            for k, i in enumerate(idx)
        ]

    def _speech_at(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Blend scheduled clips at frames ``idx``: (n, mouth + 3) contributions, presence, gens."""
        n = len(idx)
        gens = [self._generation] * n
        if not self._clips:
            return np.zeros((n, len(_SPEECH_COLS))), np.zeros(n), gens
        mouth_num = np.zeros((n, _N_MOUTH))
        weight = np.zeros(n)
        gestures = np.zeros((n, len(_SPEECH_COLS) - _N_MOUTH))
        presence = np.zeros(n)
        owner = np.full(n, -1)
        for c, clip in enumerate(self._clips):
            local = idx - clip.first
            inside = (local >= 0) & (local < len(clip.presence))
            if not np.any(inside):
                continue
            rows = local[inside]
            p = clip.presence[rows]
            # Overlapping clips (one's tail, the next one's lead) cross-fade by speech presence;
            # the small floor makes a lone clip reproduce its own track exactly.
            w = p + 1e-3
            mouth_num[inside] += w[:, None] * clip.speech[rows, :_N_MOUTH]
            weight[inside] += w
            gestures[inside] += clip.speech[rows, _N_MOUTH:]
            # The clip showing the most speech owns the frame (and stamps its generation);
            # a frame showing (almost) no speech keeps the current generation.
            wins = np.zeros(n, dtype=bool)
            wins[inside] = (p > presence[inside]) & (p >= 0.05)
            owner[wins] = c
            presence[inside] = np.maximum(presence[inside], p)
        for k in np.flatnonzero(owner >= 0):
            gens[k] = self._clips[owner[k]].generation
        mouth = np.where(weight[:, None] > 0, mouth_num / np.maximum(weight, 1e-12)[:, None], 0.0)
        return np.column_stack([mouth, gestures]), presence, gens

    def _release_part(self, n: int) -> np.ndarray:
        """Fading copy of the speech shown at clear(): raised-cosine to zero in release_frames."""
        out = np.zeros((n, len(_SPEECH_COLS)))
        if self._release is None:
            return out
        total = max(self.options.release_frames, 1)
        k = self._release_step + np.arange(1, n + 1)
        factor = np.where(k < total, 0.5 * (1.0 + np.cos(np.pi * np.minimum(k, total) / total)), 0)
        out[:] = factor[:, None] * self._release[None, :]
        self._release_step += n
        if self._release_step >= total:
            self._release = None
        return out
