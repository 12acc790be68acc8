"""Is it the user, or the character's own voice coming back? An echo gate driven by the reference.

While the character talks, the microphone may pick up its voice from the user's speakers. The
browser's echo canceller removes most of it, headsets none is there to remove, and a laptop
without cancellation returns it almost as loud as the user. Guessing the echo level from
"voiced input while the character speaks" (what an echo-blind gate must do) also learns the
*user's* voice whenever they talk over the character, and then refuses to hear them; that was
how words said during an answer were lost.

This gate knows what the character played: the session pushes the level of every output audio
frame (``push_reference``), stamped on the same media clock as the microphone. Echo is the
reference, delayed (network, playout buffer, capture: 0-0.6 s) and scaled by the acoustic path.
So the gate looks for that path:

- every few frames it correlates the input's level envelope (dB per 32 ms frame, last
  ``window_s``) with the reference envelope at each candidate delay, over the frames where the
  reference was loud enough to echo. A correlation of at least ``min_correlation`` means the
  input follows the character's voice: an echo path exists, with that delay and gain (median
  input-minus-reference level). The estimate is kept and refined while echo is present, and
  forgotten after ``forget_s`` without confirmation (the user put on a headset);
- with a known path, an input frame may be the user only if it is ``margin_db`` louder than
  the echo predicted for it (the reference around the path's delay plus the gain). In the
  character's pauses between words nothing is predicted, so a user talking at the echo's level
  is still heard in those gaps;
- with no path (browser echo cancellation, a headset, a fake microphone), every voiced frame
  may be the user: nothing is refused on a guess.

A loud echo before the path is learned (the first half second of the first answer on a machine
without cancellation) can still pass; the session catches that case by the words: a "barge-in"
whose transcript repeats what the character was saying is its own voice (and resumes).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["EchoGate", "EchoOptions"]

_CELL_S = 0.01  # the reference is kept on a 10 ms grid
_RING = 1024  # cells kept (10.24 s)
_SILENT_DB = -120.0


@dataclass(frozen=True)
class EchoOptions:
    """Tuning of ``EchoGate`` (see the module docstring)."""

    frame_s: float = 0.032
    max_delay_s: float = 0.6
    active_dbfs: float = -50.0  # reference frames quieter than this cannot echo audibly
    margin_db: float = 6.0
    window_s: float = 1.6
    min_active_frames: int = 10
    min_correlation: float = 0.75
    max_spread_db: float = 6.0  # interquartile range of input - reference over an echo path
    min_input_spread_db: float = 3.0
    learn_every: int = 3  # frames between correlation searches
    forget_s: float = 30.0

    def __post_init__(self) -> None:
        if self.frame_s <= 0 or self.max_delay_s < 0 or self.window_s <= self.frame_s:
            raise ValueError("frame_s > 0, max_delay_s >= 0 and window_s > frame_s are required")
        if not 0.0 < self.min_correlation < 1.0:
            raise ValueError("min_correlation must be in (0, 1)")


class EchoGate:
    """Decides per input frame whether it can hold the user's voice (see the module docstring).

    Not thread-safe: the hearing front-end thread owns it (references are queued to it).
    """

    def __init__(self, *, options: EchoOptions | None = None) -> None:
        self.options = opts = options or EchoOptions()
        self._ref = np.full(_RING, _SILENT_DB)
        self._stamp = np.full(_RING, -1, dtype=np.int64)
        self._frame_cells = max(1, round(opts.frame_s / _CELL_S))
        # candidate delays on the reference's own 10 ms grid
        self._delays = np.arange(0, round(opts.max_delay_s / _CELL_S) + 1)
        window = max(2, round(opts.window_s / opts.frame_s))
        self._inputs: deque[float] = deque(maxlen=window)
        self._refs: deque[np.ndarray] = deque(maxlen=window)  # per frame: level at each delay
        self._frames = 0
        self.delay_s: float | None = None  # the learned echo path (None: no echo seen)
        self.gain_db = 0.0
        self.correlation = 0.0
        self._confirmed_at = -math.inf

    # -- inputs ---------------------------------------------------------------------------------

    def push_reference(self, pts: float, level_db: float, duration: float) -> None:
        """The character's output level ``level_db`` (dBFS) during [pts, pts + duration)."""
        first = round(pts / _CELL_S)
        for cell in range(first, first + max(1, round(duration / _CELL_S))):
            slot = cell % _RING
            self._ref[slot] = level_db
            self._stamp[slot] = cell

    def reference_active(self, pts: float) -> bool:
        """Could the character's voice be in the input at ``pts`` (any delay)?"""
        return bool(np.max(self._levels_at(pts)) >= self.options.active_dbfs)

    def user_possible(self, pts: float, level_db: float) -> bool:
        """Feed one input frame (start ``pts``, level ``level_db``); True if it can be the user.

        Call for every frame in order: the frames also teach the gate the echo path.
        """
        opts = self.options
        refs = self._levels_at(pts)
        self._inputs.append(level_db)
        self._refs.append(refs)
        self._frames += 1
        if self._frames % opts.learn_every == 0:
            self._learn(pts)
        if self.delay_s is not None and pts - self._confirmed_at > opts.forget_s:
            self.delay_s = None  # no echo confirmed for a long time: the path is gone
        if self.delay_s is None:
            return True
        k = int(round(self.delay_s / _CELL_S))
        near = refs[max(0, k - 3) : k + 4]  # +-30 ms: the path's delay jitters
        predicted = float(np.max(near)) + self.gain_db
        if float(np.max(near)) < opts.active_dbfs:
            return True  # the character is silent at the echo's delay: nothing to confuse
        return level_db >= predicted + opts.margin_db

    # -- internals ------------------------------------------------------------------------------

    def _levels_at(self, pts: float) -> np.ndarray:
        """Reference level (max over one frame) at each candidate delay before ``pts``."""
        first = round(pts / _CELL_S) - self._delays  # (delays,)
        cells = first[:, None] + np.arange(self._frame_cells)[None, :]
        slots = cells % _RING
        levels = np.where(self._stamp[slots] == cells, self._ref[slots], _SILENT_DB)
        out: np.ndarray = levels.max(axis=1)
        return out

    def confirm_echo(self, pts: float) -> None:
        """The session found the character's own words in what was taken for the user (a
        "barge-in" that repeated what it was saying): learn the path from the recent frames,
        with a looser test than the one that missed it."""
        self._learn(pts, min_correlation=0.5)

    def _learn(self, pts: float, *, min_correlation: float | None = None) -> None:
        opts = self.options
        needed = opts.min_correlation if min_correlation is None else min_correlation
        if len(self._inputs) < opts.min_active_frames:
            return
        x = np.fromiter(self._inputs, dtype=np.float64)
        refs = np.stack(list(self._refs))  # (frames, delays)
        # Frames where the input is at its noise floor say nothing about the echo's shape.
        floor = float(np.percentile(x, 10))
        active = (refs >= opts.active_dbfs) & (x[:, None] > floor + 6.0)
        counts = active.sum(axis=0)
        best, best_delay = -1.0, -1
        for d in np.flatnonzero(counts >= opts.min_active_frames):
            mask = active[:, d]
            xs, rs = x[mask], refs[mask, d]
            if xs.std() < opts.min_input_spread_db or rs.std() < 1.0:
                continue
            rho = float(np.corrcoef(xs, rs)[0, 1])
            if rho > best:
                best, best_delay = rho, int(d)
        if best_delay < 0:
            return
        self.correlation = best
        if best < needed:
            return
        mask = active[:, best_delay]
        residual = x[mask] - refs[mask, best_delay]
        q25, gain, q75 = (float(v) for v in np.percentile(residual, [25, 50, 75]))
        if q75 - q25 > opts.max_spread_db:
            return  # the input moves with the reference, but not as a fixed echo path does
        delay = best_delay * _CELL_S
        if self.delay_s is None:
            self.delay_s, self.gain_db = delay, gain
        else:  # refine slowly: one noisy window must not move a good estimate far
            self.delay_s = delay
            self.gain_db = 0.7 * self.gain_db + 0.3 * gain
        self._confirmed_at = pts
