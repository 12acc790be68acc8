"""`talkie render` and `talkie rig` as a person runs them: real files in, files out, and one clear
line (exit status 2, no traceback, nothing left behind) for every kind of bad input."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from talkie.media.video import probe_video

TALKIE = [sys.executable, "-m", "talkie.cli"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TALKIE, *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )


def _wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_render_text_to_mp4(astronaut_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "hello.mp4"
    result = run("render", "--image", astronaut_path, "--text", "Hello! Nice to meet you.",
                 "--out", out, "--quiet", "--seed", "7")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "Traceback" not in result.stderr
    info = probe_video(out)
    assert (info["width"], info["height"], info["fps"]) == (1280, 720, 24)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert abs(info["audio_duration"] - info["duration"]) <= 1 / 24
    assert 2.0 < info["duration"] < 6.0


def test_render_audio_file_with_another_voice(astronaut_path: Path, tmp_path: Path) -> None:
    from talkie.media.audio import save_wav
    from talkie.offline import synthesize
    from talkie.voice import load_tts

    clip = synthesize(load_tts("espeak:en-us+f3"), "This voice comes from a file on disk.")
    from talkie.messages import AudioChunk

    wav = save_wav(tmp_path / "speech.wav", AudioChunk(clip.audio, clip.sample_rate))
    out = tmp_path / "from_audio.mp4"
    result = run("render", "--image", astronaut_path, "--audio", wav, "--out", out, "--quiet",
                 "--size", "640x360")  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = probe_video(out)
    assert (info["width"], info["height"]) == (640, 360)
    assert info["duration"] >= clip.duration


def test_rig_preview_and_saved_rig(astronaut_path: Path, tmp_path: Path) -> None:
    preview, rig = tmp_path / "rig.png", tmp_path / "a.rig"
    result = run("rig", astronaut_path, "--preview", preview, "--save", rig)
    assert result.returncode == 0, result.stderr
    assert Image.open(preview).size[0] >= 900
    out = tmp_path / "from_rig.mp4"
    result = run("render", "--rig", rig, "--text", "Hi.", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert out.exists()


def _bad_inputs(tmp: Path, astronaut_path: Path) -> dict[str, tuple[list[str | Path], str]]:
    text_file = tmp / "notes.png"
    text_file.write_text("this is not an image")
    truncated = tmp / "cut.png"
    truncated.write_bytes(astronaut_path.read_bytes()[:5000])
    cat = tmp / "cat.png"
    from skimage import data

    Image.fromarray(data.chelsea()).save(cat)
    silent = _wav(tmp / "silent.wav", np.zeros(16000))
    corrupt = tmp / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    out = tmp / "out.mp4"
    img = ["--image", astronaut_path]
    say = ["--text", "hi", "--out", out]
    return {
        "not an image": (["render", "--image", text_file, *say], "not an image"),
        "truncated": (["render", "--image", truncated, *say], "truncated"),
        "no face": (["render", "--image", cat, *say], "no face"),
        "missing image": (["render", "--image", tmp / "nope.jpg", *say], "nope.jpg"),
        "empty text": (["render", *img, "--text", "   ", "--out", out], "empty"),
        "silent audio": (["render", *img, "--audio", silent, "--out", out], "silent"),
        "corrupt audio": (["render", *img, "--audio", corrupt, "--out", out], "corrupt.wav"),
        "bad output": (["render", *img, "--text", "hi", "--out", tmp / "x.avi"], ".mp4"),
        "no folder": (["render", *img, "--text", "hi", "--out", tmp / "no" / "x.mp4"], "not exist"),
        "unknown voice": (["render", *img, *say, "--voice", "robot"], "unknown"),
        "unknown renderer": (["render", *img, *say, "--renderer", "warp"], "unknown renderer"),
    }


@pytest.mark.parametrize(
    "case",
    ["not an image", "truncated", "no face", "missing image", "empty text", "silent audio",
     "corrupt audio", "bad output", "no folder", "unknown voice", "unknown renderer"],
)  # fmt: skip
def test_bad_input_gives_one_clear_line(case: str, astronaut_path: Path, tmp_path: Path) -> None:
    args, expected = _bad_inputs(tmp_path, astronaut_path)[case]
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("talkie: error:")]
    assert len(errors) == 1, result.stderr
    assert expected.lower() in errors[0].lower(), errors[0]
    assert not (tmp_path / "out.mp4").exists()
    assert not list(tmp_path.glob("*.tmp*")), "no partial output left behind"


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("L", (20000, 20000)).save(bomb, optimize=True)  # 400 Mpx, a few hundred kB
    result = run("rig", bomb, "--preview", tmp_path / "p.png")
    assert result.returncode == 2
    assert "pixels" in result.stderr.lower() and "Traceback" not in result.stderr
