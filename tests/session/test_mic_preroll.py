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


# --- the seam: what the page recorded after the live stream began is heard once -------------


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Real speech (the bundled Piper voice) at 16 kHz."""
    from scipy import signal

    from talkie.voice import load_tts

    clips = list(load_tts("piper").synthesize("Hello there! What is your name?"))  # by sentence
    audio = np.concatenate([np.asarray(c.audio, np.float64) for c in clips])
    return signal.resample_poly(audio, 16_000, int(clips[0].sample_rate)).astype(np.float32)


def _through_opus(audio16k: np.ndarray, pts: float) -> list[AudioChunk]:
    """``audio16k`` as the server gets the live microphone: 48 kHz, Opus-coded, 20 ms chunks."""
    import av
    from scipy import signal

    pcm = signal.resample_poly(audio16k.astype(np.float64), 3, 1)
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, "mono", "s16"
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate, decoder.layout = 48_000, "mono"
    chunks: list[AudioChunk] = []
    whole = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    for i in range(0, len(whole) - 959, 960):
        frame = av.AudioFrame.from_ndarray(whole[None, i : i + 960], format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48_000, i
        for packet in encoder.encode(frame):
            for out in decoder.decode(packet):
                samples = out.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                chunks.append(AudioChunk(samples, 48_000, pts + len(chunks) * 0.02))
    return chunks


def _spliced(
    preroll: np.ndarray, live: list[AudioChunk], held: int | None = None
) -> tuple[MicSplice, list[AudioChunk]]:
    """The splice after the live chunks (the first ``held`` of them: the rest come after the
    preroll) and the preroll arrived."""
    pushed: list[AudioChunk] = []
    splice = MicSplice(pushed.append, expected=True)
    splice.connected()
    held = len(live) if held is None else held
    for chunk in live[:held]:
        splice.live(chunk)
    splice.header({"type": "preroll", "sample_rate": 16_000, "samples": len(preroll)})
    splice.data(_pcm(preroll))
    for chunk in live[held:]:
        splice.live(chunk)
    return splice, pushed


@pytest.mark.parametrize("overlap_s", [0.08, 0.25, 0.6])
def test_what_the_live_audio_repeats_of_the_preroll_is_cut(
    speech: np.ndarray, overlap_s: float
) -> None:
    # The page stopped recording overlap_s after the live stream began, in mid-word.
    seam = int(0.45 * 16_000)  # inside "Hello there"
    preroll = speech[: seam + int(overlap_s * 16_000)]
    live = _through_opus(speech[seam:], pts=2.0)
    splice, pushed = _spliced(preroll, live)
    # Opus delays its output by a few ms: the cut is exact to within that.
    assert splice.repeated_s == pytest.approx(overlap_s, abs=0.01)
    first = pushed[0]
    assert splice.heard_s == pytest.approx(seam / 16_000, abs=0.01)
    assert first.pts == pytest.approx(2.0 - splice.heard_s, abs=1e-6)  # still ends at the live


def test_a_repeat_longer_than_the_live_audio_held_is_cut_whole(speech: np.ndarray) -> None:
    # The preroll came 0.2 s after the live stream began, and the page recorded 0.3 s past it
    # (as in Chromium): all the live audio held lies inside the preroll's end.
    seam = int(0.45 * 16_000)
    live = _through_opus(speech[seam:], pts=2.0)
    splice, pushed = _spliced(speech[: seam + 4800], live, held=10)
    assert splice.repeated_s == pytest.approx(0.3, abs=0.01)
    heard = np.concatenate([c.samples for c in pushed if c.sample_rate == 16_000])
    assert len(heard) == pytest.approx(seam, abs=160)


def test_a_seam_without_a_repeat_or_in_silence_cuts_nothing(speech: np.ndarray) -> None:
    seam = int(0.45 * 16_000)
    # contiguous: the live audio starts where the recording stopped
    splice, _ = _spliced(speech[:seam], _through_opus(speech[seam:], pts=2.0))
    assert splice.repeated_s == 0.0
    # a gap of 0.2 s between them (a recording that stopped too soon): nothing matches
    splice, _ = _spliced(speech[:seam], _through_opus(speech[seam + 3200 :], pts=2.0))
    assert splice.repeated_s == 0.0
    # both sides silent at the seam: nothing to match, nothing cut (silence twice is harmless)
    quiet = np.concatenate([speech, np.zeros(16_000, np.float32)])
    splice, _ = _spliced(quiet, _through_opus(np.zeros(16_000, np.float32), pts=2.0))
    assert splice.repeated_s == 0.0
