"""talkie.media.video: streaming MP4 (H.264 + AAC) writing, probing and reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkie.errors import InvalidInputError
from talkie.media.video import Mp4Writer, probe_video, read_frames
from talkie.messages import AudioChunk

W, H, FPS, SR = 320, 240, 24, 22050


def frame(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :, 0] = (i * 5) % 256
    img[60:180, (i * 5) % (W - 40) : (i * 5) % (W - 40) + 40] = 255
    return img


def tone(seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    with Mp4Writer(out, size=(W, H), fps=FPS, sample_rate=SR) as w:
        w.write_audio(tone(1.0))
        for i in range(48):
            w.write_frame(frame(i))
            if i == 10:
                w.write_audio(tone(1.0))  # audio may arrive in pieces, interleaved with video
    info = probe_video(out)
    assert info["width"] == W and info["height"] == H
    assert info["fps"] == pytest.approx(FPS)
    assert info["frames"] == 48
    assert info["video_codec"] == "h264"
    assert info["audio_codec"] == "aac"
    assert info["duration"] == pytest.approx(2.0, abs=1 / FPS)
    assert abs(info["audio_duration"] - info["duration"]) <= 1 / FPS
    # Nothing but the output is left in the folder.
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    stats = w.stats
    assert stats.frames == 48 and stats.median_ms > 0 and stats.p95_ms >= stats.median_ms


def test_read_frames_returns_rgb(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    with Mp4Writer(out, size=(W, H), fps=FPS, crf=10, audio=False) as w:
        for i in range(12):
            w.write_frame(frame(i))
    frames = list(read_frames(out))
    assert len(frames) == 12
    for i, img in enumerate(frames):
        assert img.shape == (H, W, 3) and img.dtype == np.uint8
        assert np.abs(img.astype(int) - frame(i).astype(int)).mean() < 4
    info = probe_video(out)
    assert info["audio_codec"] is None and info["audio_duration"] is None


def test_short_audio_is_padded_to_the_video(tmp_path: Path) -> None:
    out = tmp_path / "pad.mp4"
    with Mp4Writer(out, size=(W, H), fps=FPS, sample_rate=SR) as w:
        w.write_audio(AudioChunk(tone(0.5), SR))
        for i in range(48):
            w.write_frame(frame(i))
    info = probe_video(out)
    assert info["frames"] == 48
    assert abs(info["audio_duration"] - 2.0) <= 1 / FPS


def test_long_audio_holds_the_last_frame(tmp_path: Path) -> None:
    out = tmp_path / "hold.mp4"
    with Mp4Writer(out, size=(W, H), fps=FPS, sample_rate=SR) as w:
        w.write_audio(tone(2.0))
        for i in range(24):
            w.write_frame(frame(i))
    info = probe_video(out)
    assert info["frames"] == 48  # no speech is cut off
    assert abs(info["audio_duration"] - info["duration"]) <= 1 / FPS


def test_exception_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "broken.mp4"
    with (
        pytest.raises(RuntimeError, match="renderer crashed"),
        Mp4Writer(out, size=(W, H), fps=FPS) as w,
    ):
        for i in range(5):
            w.write_frame(frame(i))
        raise RuntimeError("renderer crashed")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"previous render")
    with (
        pytest.raises(ValueError, match="frame must be uint8"),
        Mp4Writer(out, size=(W, H), fps=FPS) as w,
    ):
        w.write_frame(np.zeros((H + 2, W, 3), np.uint8))
    assert out.read_bytes() == b"previous render"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]


def test_no_frames_is_an_error(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="no video frames"),
        Mp4Writer(tmp_path / "empty.mp4", size=(W, H)),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_rejects_odd_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        Mp4Writer(tmp_path / "odd.mp4", size=(321, 240))
    assert list(tmp_path.iterdir()) == []


def test_wrong_audio_rate(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="16000 Hz"),
        Mp4Writer(tmp_path / "x.mp4", size=(W, H), sample_rate=SR) as w,
    ):
        w.write_audio(AudioChunk(tone(0.1, 16000), 16000))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InvalidInputError, match="cannot write .*choose another output path"):
        Mp4Writer(blocker / "out.mp4", size=(W, H))
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_hd_defaults(tmp_path: Path) -> None:
    out = tmp_path / "hd.mp4"
    img = np.full((720, 1280, 3), 128, np.uint8)
    with Mp4Writer(out) as w:
        w.write_audio(tone(0.5))
        for _ in range(12):
            w.write_frame(img)
    info = probe_video(out)
    assert (info["width"], info["height"], info["fps"], info["frames"]) == (1280, 720, 24.0, 12)
