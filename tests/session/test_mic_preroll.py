"""The microphone before the connection (talkie.transport.preroll): the preroll is heard first,
then the live audio held while it arrived, then live audio as it comes; a client that breaks its
promise holds the microphone for seconds at most; bad data is refused with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.messages import AudioChunk
from talkie.transport.preroll import MAX_HELD_S, MicSplice


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _live(value: float, pts: float, n: int = 960) -> AudioChunk:
    return AudioChunk(np.full(n, value, np.float32), 48_000, pts)


def _pcm(values: np.ndarray) -> bytes:
    return (values * 32767).astype("<i2").tobytes()


def _heard(chunks: list[AudioChunk]) -> np.ndarray:
    """Everything pushed, resampled by repetition to a common 48 kHz timeline of values."""
    return np.concatenate([np.repeat(c.samples, 48_000 // c.sample_rate) for c in chunks])


def test_the_preroll_is_heard_first_then_the_held_then_the_live_audio() -> None:
    pushed: list[AudioChunk] = []
    clock = Clock()
    splice = MicSplice(pushed.append, expected=True, clock=clock)
    splice.connected()
    splice.live(_live(0.5, pts=0.40))
    splice.live(_live(0.5, pts=0.42))
    assert pushed == [] and splice.waiting  # held: the preroll comes first
    preroll = np.linspace(-0.25, 0.25, 16_000 * 2).astype(np.float32)  # 2 s said while connecting
    splice.header({"type": "preroll", "sample_rate": 16_000, "samples": len(preroll)})
    assert splice.takes_binary
    data = _pcm(preroll)
    splice.data(data[:20_000])
    splice.live(_live(0.5, pts=0.44))
    assert pushed == []
    splice.data(data[20_000:])
    assert not splice.waiting and splice.outcome == "complete"
    assert splice.heard_s == pytest.approx(2.0)
    splice.live(_live(0.75, pts=0.46))

    heard = _heard(pushed)
    n = 3 * len(preroll)  # 2 s at 16 kHz, as 48 kHz repeats
    assert np.allclose(heard[:n:3], preroll, atol=1e-4)
    assert np.allclose(heard[n : n + 3 * 960], 0.5) and np.allclose(heard[-960:], 0.75)
    # Stamps: the preroll ends where the live audio begins, so it began before the clock did
    # (words said while connecting), and the live audio keeps its own stamps.
    preroll = [c for c in pushed if c.sample_rate == 16_000]
    assert preroll[0].pts == pytest.approx(0.40 - 2.0)
    assert preroll[-1].pts + preroll[-1].duration == pytest.approx(0.40)
    assert [c.pts for c in preroll] == sorted(c.pts for c in preroll)
    assert [c.pts for c in pushed if c.sample_rate == 48_000] == [0.40, 0.42, 0.44, 0.46]


def test_a_preroll_ends_where_the_live_audio_begins_or_would() -> None:
    pushed: list[AudioChunk] = []
    splice = MicSplice(pushed.append, expected=True)
    splice.live(_live(0.0, pts=3.0))
    splice.header({"type": "preroll", "sample_rate": 16_000, "samples": 8_000})
    splice.data(_pcm(np.zeros(8_000)))
    first = pushed[0]
    assert first.sample_rate == 16_000 and first.pts == pytest.approx(2.5)
    # No live audio yet: it ends now, on the conversation's clock.
    pushed = []
    splice = MicSplice(pushed.append, expected=True, media_now=lambda: 0.75)
    splice.header({"type": "preroll", "sample_rate": 16_000, "samples": 8_000})
    splice.data(_pcm(np.zeros(8_000)))
    assert pushed[0].pts == pytest.approx(0.25)


def test_without_a_promise_the_microphone_is_never_held() -> None:
    pushed: list[AudioChunk] = []
    splice = MicSplice(pushed.append, expected=False)
    splice.live(_live(0.1, pts=1.0))
    assert len(pushed) == 1 and not splice.waiting and splice.outcome == "none"
    with pytest.raises(ValueError, match="only come first"):
        splice.header({"type": "preroll", "sample_rate": 16_000, "samples": 10})
    with pytest.raises(ValueError, match="only accepted for a preroll"):
        splice.data(b"\x00\x00")


def test_an_empty_preroll_opens_the_splice_at_once() -> None:
    pushed: list[AudioChunk] = []
    splice = MicSplice(pushed.append, expected=True)
    splice.live(_live(0.1, pts=1.0))
    splice.header({"type": "preroll", "sample_rate": 16_000, "samples": 0})
    assert splice.outcome == "empty" and len(pushed) == 1


def test_a_broken_promise_holds_the_microphone_for_seconds_at_most() -> None:
    # No header within header_wait_s of the connection.
    pushed: list[AudioChunk] = []
    clock = Clock()
    splice = MicSplice(pushed.append, expected=True, header_wait_s=3.0, clock=clock)
    splice.live(_live(0.1, pts=0.5))
    clock.t = 10.0
    splice.check()
    assert splice.waiting  # the wait starts at the connection, not before it
    splice.connected()
    clock.t = 12.9
    splice.check()
    assert splice.waiting
    clock.t = 13.1
    splice.check()
    assert not splice.waiting and splice.outcome == "no header" and len(pushed) == 1

    # A header, then the data stops: what came is heard, then the held audio.
    pushed = []
    clock = Clock()
    splice = MicSplice(pushed.append, expected=True, data_wait_s=5.0, clock=clock)
    splice.connected()
    splice.header({"type": "preroll", "sample_rate": 16_000, "samples": 32_000})
    splice.data(_pcm(np.full(16_000, 0.5)))
    splice.live(_live(0.25, pts=1.0))
    clock.t = 4.0
    splice.check()
    assert splice.waiting
    clock.t = 5.5
    splice.check()
    assert splice.outcome == "incomplete" and splice.heard_s == pytest.approx(1.0)
    assert [c.sample_rate for c in pushed] == [16_000] * 5 + [48_000]
    splice.data(_pcm(np.full(16_000, 0.5)))  # the rest, too late: dropped, no error
    splice.live(_live(0.25, pts=1.02))
    assert [c.sample_rate for c in pushed] == [16_000] * 5 + [48_000] * 2


def test_held_audio_is_bounded_and_never_dropped() -> None:
    pushed: list[AudioChunk] = []
    splice = MicSplice(pushed.append, expected=True)
    chunks = int(MAX_HELD_S / 0.02) + 50  # 1 s more than the bound, in 20 ms chunks
    for i in range(chunks):
        splice.live(_live(0.1, pts=0.02 * i))
    assert 0 < len(pushed) <= 60  # the oldest heard early, in order
    assert [c.pts for c in pushed] == sorted(c.pts for c in pushed)
    splice.header({"type": "preroll", "sample_rate": 16_000, "samples": 0})
    assert len(pushed) == chunks  # every chunk heard once


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"sample_rate": 44_100, "samples": 10}, "sample_rate must be one of"),
        ({"sample_rate": 16_000, "samples": -1}, "whole number"),
        ({"sample_rate": 16_000, "samples": 1.5}, "whole number"),
        ({"sample_rate": 16_000, "samples": True}, "whole number"),
        ({"sample_rate": 16_000, "samples": 16_000 * 31}, "at most 30 s"),
    ],
)
def test_bad_headers_are_refused_and_the_live_audio_flows(
    header: dict[str, object], message: str
) -> None:
    pushed: list[AudioChunk] = []
    splice = MicSplice(pushed.append, expected=True)
    splice.live(_live(0.1, pts=1.0))
    with pytest.raises(ValueError, match=message):
        splice.header({"type": "preroll", **header})
    assert not splice.waiting and len(pushed) == 1


def test_bad_data_is_refused_and_what_came_is_heard() -> None:
    pushed: list[AudioChunk] = []
    splice = MicSplice(pushed.append, expected=True)
    splice.header({"type": "preroll", "sample_rate": 16_000, "samples": 100})
    with pytest.raises(ValueError, match="whole 16-bit samples"):
        splice.data(b"\x00\x01\x02")
    assert not splice.waiting and splice.outcome == "bad data"

    splice = MicSplice(pushed.append, expected=True)
    splice.header({"type": "preroll", "sample_rate": 16_000, "samples": 100})
    splice.data(_pcm(np.zeros(60)))
    with pytest.raises(ValueError, match="more than the 100 samples"):
        splice.data(_pcm(np.zeros(60)))
    assert splice.heard_s == pytest.approx(60 / 16_000)
