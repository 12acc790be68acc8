"""talkie.media.audio: decoding untrusted audio files to mono float32, writing WAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from talkie.errors import InvalidInputError
from talkie.media.audio import is_silent, load_audio, save_wav
from talkie.messages import AudioChunk

SR = 16000


def sine(seconds: float, sr: int = SR, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode_with_pyav(path: Path, samples: np.ndarray, sr: int, codec: str, channels: int) -> None:
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w") as out:
        stream: Any = out.add_stream(codec, rate=sr)
        stream.layout = layout
        data = np.repeat(samples[None, :], channels, axis=0).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
        frame.sample_rate = sr
        frame.pts = 0
        frame.time_base = Fraction(1, sr)
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@pytest.fixture()
def sine_wav(tmp_path: Path) -> Path:
    return save_wav(tmp_path / "sine.wav", AudioChunk(sine(2.0), SR))


def test_sine_wav_round_trip(sine_wav: Path) -> None:
    chunk = load_audio(sine_wav)
    assert chunk.sample_rate == SR
    assert chunk.samples.dtype == np.float32
    assert chunk.samples.ndim == 1
    assert chunk.duration == pytest.approx(2.0)
    np.testing.assert_allclose(chunk.samples, sine(2.0), atol=1e-4)


def test_resampling(sine_wav: Path) -> None:
    chunk = load_audio(sine_wav, sample_rate=22050)
    assert chunk.sample_rate == 22050
    assert chunk.duration == pytest.approx(2.0, abs=0.01)
    # Still a 440 Hz tone: the spectrum peaks there.
    spectrum = np.abs(np.fft.rfft(chunk.samples))
    freqs = np.fft.rfftfreq(chunk.samples.size, 1 / 22050)
    assert abs(freqs[spectrum.argmax()] - 440) < 2


@pytest.mark.parametrize(
    ("suffix", "codec", "channels"),
    [(".flac", "flac", 2), (".mp3", "libmp3lame", 2), (".ogg", "libopus", 1), (".m4a", "aac", 1)],
)
def test_compressed_formats_decode_to_mono(
    tmp_path: Path, suffix: str, codec: str, channels: int
) -> None:
    sr = 48000 if codec == "libopus" else 44100
    path = tmp_path / f"tone{suffix}"
    encode_with_pyav(path, sine(1.0, sr), sr, codec, channels)
    chunk = load_audio(path, sample_rate=SR)
    assert chunk.sample_rate == SR
    assert chunk.samples.ndim == 1
    assert chunk.duration == pytest.approx(1.0, abs=0.08)
    # Same level as the source (channels are averaged, not summed) and still a 440 Hz tone.
    middle = chunk.samples[SR // 4 : 3 * SR // 4]
    rms_db = 10 * np.log10(np.mean(middle.astype(np.float64) ** 2))
    assert rms_db == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=1.0)
    spectrum = np.abs(np.fft.rfft(middle))
    assert abs(np.fft.rfftfreq(middle.size, 1 / SR)[spectrum.argmax()] - 440) < 5


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"empty \(0 bytes\)"):
        load_audio(path)


def test_wav_with_zero_samples(tmp_path: Path) -> None:
    path = save_wav(tmp_path / "zero.wav", AudioChunk(np.zeros(0, np.float32), SR))
    with pytest.raises(InvalidInputError, match="no audio samples"):
        load_audio(path)


def test_silent_file_rejected(tmp_path: Path) -> None:
    path = save_wav(tmp_path / "quiet.wav", AudioChunk(np.zeros(SR, np.float32), SR))
    with pytest.raises(InvalidInputError) as e:
        load_audio(path)
    msg = str(e.value)
    assert msg.startswith("quiet.wav is silent: nothing to lip-sync")
    assert "\n" not in msg
    assert load_audio(path, reject_silent=False).duration == pytest.approx(1.0)


def test_corrupt_wav(tmp_path: Path, sine_wav: Path) -> None:
    good = sine_wav.read_bytes()
    path = tmp_path / "broken.wav"
    path.write_bytes(good[:12] + b"\x00garbage" * 50)  # RIFF/WAVE header, then nonsense
    with pytest.raises(InvalidInputError, match="corrupt or truncated") as e:
        load_audio(path)
    assert "\n" not in str(e.value)


def test_text_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "speech.mp3"
    path.write_text("hello, this is a text file\n" * 20)
    with pytest.raises(InvalidInputError, match=r"not an audio file .*\(found plain text\)"):
        load_audio(path)


def test_image_is_not_audio(tmp_path: Path, astronaut_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="has no audio|not an audio file"):
        load_audio(astronaut_path)


def test_too_long(sine_wav: Path) -> None:
    with pytest.raises(InvalidInputError, match="too long") as e:
        load_audio(sine_wav, max_seconds=1.0)
    assert "limit is 1 s" in str(e.value)


def test_is_silent() -> None:
    assert is_silent(np.zeros(SR, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(SR) * 10 ** (-70 / 20)).astype(np.float32)  # -70 dBFS
    assert is_silent(hiss)
    assert not is_silent(sine(1.0))
    # A short word in a long quiet recording is not silence.
    quiet = np.zeros(SR * 10, np.float32)
    quiet[SR * 5 : SR * 5 + 1600] = sine(0.1)
    assert not is_silent(quiet)
    assert is_silent(sine(1.0, amp=0.001))  # about -63 dBFS
    assert not is_silent(sine(1.0, amp=0.001), threshold_dbfs=-70)


def test_save_wav_clips_and_is_atomic(tmp_path: Path) -> None:
    path = save_wav(tmp_path / "loud.wav", AudioChunk(np.array([2.0, -2.0, 0.5], np.float32), SR))
    back = load_audio(path, reject_silent=False)
    np.testing.assert_allclose(back.samples, [1.0, -1.0, 0.5], atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["loud.wav"]
