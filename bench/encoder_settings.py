"""x264 settings for the live video: CPU per 720p frame, bits and quality (PSNR), on frames the
real renderer draws for a talking, blinking character (skimage's astronaut, a piper sentence).

    flock /tmp/talkie-cpu.lock .venv/bin/python bench/encoder_settings.py [--seconds 10]

Each setting encodes the same frames with ``X264Encoder`` (threads=1, one core, this process),
then the packets are decoded and compared with what was encoded. CPU includes the RGB -> I420
conversion. Saves bench/results/encoder_settings.json, and each setting's worst frame as a PNG
in /tmp/talkie-encoder to look at.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FPS = 24.0
TEXT = (
    "Hello! I'm Nova. I can answer questions about the Moon, the planets and how astronauts "
    "train, and you can interrupt me whenever you like."
)
# name -> (preset, more x264 params, CRF or None for a 2 Mbps average, constant QP or None)
SETTINGS: dict[str, tuple[str, str, float | None, int | None]] = {
    "ultrafast + deblock, 2 Mbps": ("ultrafast", "deblock=0,0", None, None),
    "ultrafast + deblock, CRF 23": ("ultrafast", "deblock=0,0", 23.0, None),
    "ultrafast + deblock, QP 22": ("ultrafast", "deblock=0,0", None, 22),
    "ultrafast + deblock, QP 24 (default)": ("ultrafast", "deblock=0,0", None, 24),
    "ultrafast + deblock, QP 27": ("ultrafast", "deblock=0,0", None, 27),
    "superfast, 2 Mbps": ("superfast", "", None, None),
}


def frames_for(seconds: float) -> np.ndarray:
    renderer, params = talking(seconds)
    return np.stack([renderer.render(p) for p in params])


def talking(seconds: float) -> tuple[Any, list[Any]]:
    """The real renderer of the astronaut (every frame drawn) and ``seconds`` of its face
    parameters: a second of idle life, the sentence, then idle again."""
    from skimage import data

    from talkie.motion import MotionGenerator, product_motion_options
    from talkie.offline import synthesize
    from talkie.render import MeshWarpRenderer, RenderOptions
    from talkie.rig import build_rig
    from talkie.voice import load_tts

    rig = build_rig(data.astronaut())
    clip = synthesize(load_tts("piper"), TEXT)
    motion = MotionGenerator(fps=FPS, seed=0, options=product_motion_options())
    motion.push(clip, start=1.0)
    n = int(seconds * FPS)
    faces: list[Any] = []
    while len(faces) < n:
        faces.extend(motion.next_step())
    renderer = MeshWarpRenderer(rig, options=RenderOptions(size=(1280, 720), still_px=0))
    return renderer, [f.params for f in faces[:n]]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def run(
    frames: np.ndarray, preset: str, params: str, crf: float | None, qp: int | None
) -> dict[str, Any]:
    import av

    from talkie.transport.encoder import EncoderOptions, X264Encoder

    options = EncoderOptions(preset=preset, x264_params=params, crf=crf, qp=qp)
    encoder = X264Encoder(options=options)
    packets: list[Any] = list(encoder.encode(frames[0], 0))  # opens the codec, untimed
    cpu: list[float] = []
    for i, frame in enumerate(frames[1:], start=1):
        c0 = time.thread_time()
        packets.extend(encoder.encode(frame, int(i * 90_000 / FPS)))
        cpu.append(1000 * (time.thread_time() - c0))
    encoder.close()
    decoder = av.CodecContext.create("h264", "r")
    decoded = []
    for packet in packets:
        for picture in decoder.decode(av.Packet(bytes(packet))):
            decoded.append(picture.to_ndarray(format="rgb24"))
    # the reference is each frame through the same I420 conversion (what x264 was given)
    scores = []
    for original, shown in zip(frames, decoded, strict=False):
        ref = cv2.cvtColor(cv2.cvtColor(original, cv2.COLOR_RGB2YUV_I420), cv2.COLOR_YUV2RGB_I420)
        scores.append(psnr(ref, shown))
    size = sum(p.size for p in packets[1:])  # after the first keyframe
    worst = int(np.argmin(scores))
    name = f"{preset}-{params or 'preset'}-crf{crf}-qp{qp}-worst.png".replace(",", "_")
    shot = Path("/tmp/talkie-encoder") / name
    shot.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(shot), cv2.cvtColor(decoded[worst], cv2.COLOR_RGB2BGR))  # to look at
    return {
        "preset": preset,
        "x264_params": params,
        "crf": crf,
        "qp": qp,
        "frames": len(cpu),
        "cpu_ms_median": round(statistics.median(cpu), 2),
        "cpu_ms_mean": round(statistics.fmean(cpu), 2),
        "kbit_per_s": round(8 * size / 1000 / (len(cpu) / FPS), 1),
        "psnr_db_mean": round(statistics.fmean(scores), 2),
        "psnr_db_min": round(min(scores), 2),
        "decoded_frames": len(decoded),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2, help="each setting, interleaved")
    ap.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "encoder_settings.json"
    )
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    frames = frames_for(args.seconds)
    print(f"{len(frames)} frames rendered", flush=True)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, (preset, params, crf, qp) in SETTINGS.items():
            rounds[name].append(run(frames, preset, params, crf, qp))
    results = {}
    for name, runs in rounds.items():
        best = min(runs, key=lambda r: r["cpu_ms_median"])  # the least disturbed round
        results[name] = {**best, "cpu_ms_median_rounds": [r["cpu_ms_median"] for r in runs]}
        print(
            f"{name:30s} CPU {best['cpu_ms_median']:6.2f} ms/frame (rounds "
            f"{results[name]['cpu_ms_median_rounds']})  {best['kbit_per_s']:7.1f} kbit/s  "
            f"PSNR {best['psnr_db_mean']:.2f} dB (min {best['psnr_db_min']:.2f})",
            flush=True,
        )
    out = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "size": "1280x720",
        "fps": FPS,
        "bitrate_bps": 2_000_000,  # the average, or the CRF rows' VBV cap (QP rows: none)
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
