"""The character's eyes: presence delay, gaze-follow error, screen reading, and what vision
costs a live session.

Run from the repository root::

    .venv/bin/python bench/vision.py [--screens 20] [--seconds 20] [--out bench/results/vision.json]

- **presence delay**: a camera offers frames at 15 fps (as a browser's would arrive) to a
  session's eyes (``SessionVision``, 3 looks per second, the real MediaPipe models); the scene
  switches from an empty room to a person (the astronaut, rendered by Talkie's renderer); the
  delay is from the first frame showing the person to the ``appeared`` observation. Also the
  delay of ``left`` after the person goes (it includes the 1.5 s the eyes wait to be sure).
- **gaze-follow error**: the person placed at known places in the picture; the error is the
  distance between where the eyes put the face centre and where it is (share of the picture's
  width), and the resulting error of the character's gaze target (gaze units, -1..1).
- **OCR exact-line rate**: generated screens (``talkie.quality.screens``: light/dark, sans/mono,
  16-26 px text at 720p, errors, code, paths, prose), read as they are and after an H.264
  round trip (libx264, CRF 30: a WebRTC screen share at a modest bitrate); a line counts only
  when read exactly. Also the OCR time per screen (one thread).
- **session cost**: a real live conversation (the astronaut: motion + render at 24 fps, pulled
  as a transport would, without encoding) for ``--seconds`` with vision off, then with the camera
  (a person, 640x480 frames at 15 fps, converted from YUV as the transport does) and a shared
  screen (1280x720: held still, then changing every 5 s) on: process CPU (all threads) per
  second of wall time, and the frames the session produced late or skipped.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from talkie.messages import FaceParams, SeenFrame  # noqa: E402
from talkie.quality.screens import make_screen  # noqa: E402
from talkie.session.events import SessionEvent, VisionObserved  # noqa: E402
from talkie.session.vision import SessionVision, VisionOptions  # noqa: E402
from talkie.vision.presence import PresenceDetector  # noqa: E402
from talkie.vision.screen import ScreenReader  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAMERA_FPS = 15.0


def person() -> np.ndarray:
    from skimage import data

    from talkie.render import RenderOptions, load_renderer
    from talkie.rig import build_rig

    renderer = load_renderer(None, build_rig(data.astronaut()),
                             options=RenderOptions(size=(640, 480)))  # fmt: skip
    return np.asarray(renderer.render(FaceParams()))


def room() -> np.ndarray:
    image = np.empty((480, 640, 3), np.uint8)
    image[:] = np.linspace(140, 210, 640)[None, :, None].astype(np.uint8)
    image[300:420, 60:260] = (120, 90, 60)
    return image


def placed(face: np.ndarray, x0: int, scale: float = 0.5) -> np.ndarray:
    scene = room()
    h, w = int(480 * scale), int(640 * scale)
    small = cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA)
    y0 = (480 - h) // 2
    scene[y0 : y0 + h, x0 : x0 + w] = small
    return scene


class Recorder:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.events: list[VisionObserved] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def emit(self, event: SessionEvent) -> None:
        if isinstance(event, VisionObserved):
            self.events.append(event)

    def look_at(self, target: tuple[float, float] | None) -> None:
        pass

    def presence_changed(self, present: bool, *, first: bool) -> None:
        pass

    def wants_to_speak(self, reason: str) -> None:
        pass

    def screen_words(self, lines: tuple[str, ...]) -> None:
        pass


async def offer(eyes: SessionVision, host: Recorder, image: np.ndarray, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if eyes.wants("camera"):
            eyes.push(SeenFrame("camera", image, host.now()))
        await asyncio.sleep(1 / CAMERA_FPS)


async def presence_delay(face: np.ndarray, trials: int) -> dict[str, Any]:
    host = Recorder()
    eyes = SessionVision(host, options=VisionOptions(fps=3.0))
    eyes.set_inputs(camera=True)
    empty, seen = room(), placed(face, 160)
    await offer(eyes, host, empty, 1.0)  # models loaded and warm
    appear, leave = [], []
    for _ in range(trials):
        await offer(eyes, host, empty, 2.5)
        shown = host.now()
        count = len([e for e in host.events if e.what == "appeared"])
        await offer(eyes, host, seen, 2.0)
        hits = [e for e in host.events if e.what == "appeared"]
        if len(hits) > count:
            appear.append(hits[-1].t - shown)
        gone = host.now()
        count = len([e for e in host.events if e.what == "left"])
        await offer(eyes, host, empty, 2.5)
        lefts = [e for e in host.events if e.what == "left"]
        if len(lefts) > count:
            leave.append(lefts[-1].t - gone)
    await eyes.close()
    return {
        "trials": trials, "looks_per_s": 3.0, "camera_fps": CAMERA_FPS,
        "appeared_found": len(appear), "left_found": len(leave),
        "appear_delay_s_median": round(statistics.median(appear), 3) if appear else None,
        "appear_delay_s_max": round(max(appear), 3) if appear else None,
        "left_delay_s_median": round(statistics.median(leave), 3) if leave else None,
        "presence_ms_median": round(statistics.median(eyes.look_ms), 1),
        "presence_ms_p95": round(sorted(eyes.look_ms)[int(0.95 * len(eyes.look_ms))], 1),
    }  # fmt: skip


def gaze_error(face: np.ndarray) -> dict[str, Any]:
    detector = PresenceDetector()
    alone = detector.detect(face)
    errors, gaze_errors = [], []
    gain = VisionOptions().gaze_gain
    for x0 in (0, 80, 160, 240, 320):
        for scale in (0.5, 0.4):
            scene = placed(face, x0, scale)
            seen = detector.detect(scene)
            truth = (x0 + alone.x * 640 * scale) / 640
            if not seen.present:
                errors.append(1.0)
                continue
            errors.append(abs(seen.x - truth))
            gaze_errors.append(abs(gain * 2 * (0.5 - seen.x) - gain * 2 * (0.5 - truth)))
    detector.close()
    return {
        "placements": len(errors),
        "face_x_error_mean": round(float(np.mean(errors)), 4),
        "face_x_error_max": round(float(np.max(errors)), 4),
        "gaze_target_error_mean": round(float(np.mean(gaze_errors)), 4),
    }


def h264_round_trip(image: np.ndarray, crf: int = 30) -> np.ndarray:
    h, w = image.shape[:2]
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = w, h, "yuv420p"
    codec.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
    packets = list(codec.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
    packets += list(codec.encode(None))
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for p in packets for f in decoder.decode(p)]
    frames += list(decoder.decode(None))
    return np.asarray(frames[0].to_ndarray(format="rgb24"))


def ocr_rate(n: int) -> dict[str, Any]:
    rng = np.random.default_rng(13)
    out: dict[str, Any] = {"screens": n}
    screens = [make_screen(rng) for _ in range(n)]
    for name, convert in (("raw", None), ("h264_crf30", h264_round_trip)):
        reader = ScreenReader()
        exact = total = 0
        times = []
        for screen in screens:
            image = convert(screen.image) if convert else screen.image
            read = reader.read(image)
            times.append(read.ocr_ms)
            total += len(screen.lines)
            exact += sum(line in read.lines for line in screen.lines)
        out[name] = {
            "lines": total, "exact": exact, "exact_rate": round(exact / total, 4),
            "ocr_ms_median": round(statistics.median(times), 1), "ocr_ms_max": max(times),
        }  # fmt: skip
    return out


async def session_cost(seconds: float, face: np.ndarray) -> dict[str, Any]:
    from talkie.session import CharacterLibrary, Conversation, SessionOptions

    conversation = Conversation(
        character=CharacterLibrary().get("astronaut"), options=SessionOptions(greet=False)
    )
    await conversation.start()

    async def pull_video() -> None:
        while True:
            await conversation.next_video_frame()

    async def pull_audio() -> None:
        while True:
            await conversation.next_audio_frame()

    pullers = [asyncio.create_task(pull_video()), asyncio.create_task(pull_audio())]
    await asyncio.sleep(3.0)  # settle
    rng = np.random.default_rng(5)
    screens = [make_screen(rng).image for _ in range(int(seconds / 5) + 2)]
    # The camera's frames as a browser sends them: YUV, converted like the transport does.
    camera = av.VideoFrame.from_ndarray(placed(face, 160), format="rgb24").reformat(
        format="yuv420p"
    )

    async def phase(camera_on: bool, screen_on: bool, change_s: float) -> dict[str, Any]:
        conversation.vision.set_inputs(camera=camera_on, screen=screen_on)
        seen0 = dict(conversation.vision.frames_seen)
        late0, sent0 = conversation.late_frames, conversation.frames_sent
        cpu0, wall0 = time.process_time(), time.monotonic()
        end = wall0 + seconds
        while time.monotonic() < end:
            now = time.monotonic() - wall0
            if camera_on and conversation.wants_frame("camera"):
                image = await asyncio.to_thread(camera.to_ndarray, format="rgb24")
                conversation.push_frame(SeenFrame("camera", image, conversation.clock.now()))
            if screen_on and conversation.wants_frame("screen"):
                image = screens[int(now / change_s) % len(screens)]
                conversation.push_frame(SeenFrame("screen", image, conversation.clock.now()))
            await asyncio.sleep(1 / CAMERA_FPS)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        frames = conversation.frames_sent - sent0
        late = conversation.late_frames - late0
        return {
            "cpu_cores": round(cpu / wall, 3), "frames_sent": frames, "late_or_skipped": late,
            "late_share": round(late / max(1, frames + late), 4),
            "looks": {k: v - seen0[k] for k, v in conversation.vision.frames_seen.items()},
        }  # fmt: skip

    phases = {
        "vision_off": await phase(False, False, 1e9),
        "camera": await phase(True, False, 1e9),
        "camera_and_still_screen": await phase(True, True, 1e9),
        "camera_and_screen_changing_every_5s": await phase(True, True, 5.0),
    }
    for task in pullers:
        task.cancel()
    await conversation.close()
    base = phases["vision_off"]["cpu_cores"]
    return {
        "seconds_per_phase": seconds, **phases,
        "added_cpu_percent_of_a_core": {
            name: round(100 * (p["cpu_cores"] - base), 1)
            for name, p in phases.items() if name != "vision_off"
        },
    }  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    face = person()
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_avg_at_start": os.getloadavg(),
    }
    results["presence"] = await presence_delay(face, args.trials)
    print("presence", results["presence"], flush=True)
    results["gaze_follow"] = gaze_error(face)
    print("gaze", results["gaze_follow"], flush=True)
    results["ocr"] = ocr_rate(args.screens)
    print("ocr", results["ocr"], flush=True)
    results["session"] = await session_cost(args.seconds, face)
    print("session", results["session"], flush=True)
    results["load_avg_at_end"] = os.getloadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screens", type=int, default=20)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "vision.json")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    p, o, s = results["presence"], results["ocr"], results["session"]
    print()
    print(f"presence: appeared after {p['appear_delay_s_median']} s median "
          f"(max {p['appear_delay_s_max']}), left after {p['left_delay_s_median']} s; "
          f"{p['presence_ms_median']} ms per look")  # fmt: skip
    g = results["gaze_follow"]
    print(f"gaze follow: face x error {g['face_x_error_mean']} of the width, "
          f"gaze target error {g['gaze_target_error_mean']}")  # fmt: skip
    for name in ("raw", "h264_crf30"):
        r = o[name]
        print(f"OCR {name}: {r['exact']}/{r['lines']} lines exact ({r['exact_rate']:.1%}), "
              f"{r['ocr_ms_median']} ms median")  # fmt: skip
    for name, added in s["added_cpu_percent_of_a_core"].items():
        print(f"session, {name}: +{added} % of a core; late or skipped frames "
              f"{s[name]['late_share']:.2%} (vision off: {s['vision_off']['late_share']:.2%})")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
