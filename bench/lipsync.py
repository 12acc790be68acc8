"""Lip-sync benchmark: A/V offset and lip-sync quality measured on RENDERED, ENCODED frames.

Run from the repository root::

    .venv/bin/python bench/lipsync.py [--out bench/results/lipsync.json]

For two faces (scikit-image's astronaut, who smiles with her teeth showing, and the same portrait
with closed lips) a sentence of real Piper speech is rendered through `talkie render`'s pipeline
to H.264; landmarks are re-detected on the decoded frames and the mouth aperture is compared with
(DESIGN.md "Measuring"):
- the speech envelope: the lag with the best correlation is the A/V offset (sub-frame, by a
  parabola through the correlation peak; positive = mouth late);
- the phoneme openness track (where each phoneme plays, led by the product's lip lead): the
  correlation is the lip-sync quality.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path

import numpy as np

from talkie.media.video import read_frames
from talkie.messages import FaceParams, PhonemeTiming, SpeechClip
from talkie.motion import RENDERED_LIP_LEAD
from talkie.motion.visemes import phoneme_openness_track
from talkie.offline import LEAD_IN, render_video, synthesize
from talkie.quality import FaceMeasurer, correlation, lag_curve
from talkie.render import MeshWarpRenderer
from talkie.rig import CharacterRig, build_rig
from talkie.voice import load_tts

FPS = 24.0
TEXT = (
    "Papa bought a map of Panama. Bob may buy maple bread, but Amy ate a ripe mango. "
    "Ha, what a bad, bad apple! Welcome to the show, my friends, and thank you for coming."
)


def envelope(speech: SpeechClip, n_frames: int) -> np.ndarray:
    audio = np.concatenate([np.zeros(int(LEAD_IN * speech.sample_rate)), speech.audio])
    half = int(0.02 * speech.sample_rate)
    out = np.zeros(n_frames)
    for i in range(n_frames):
        c = int(i / FPS * speech.sample_rate)
        seg = audio[max(0, c - half) : c + half]
        out[i] = float(np.sqrt(np.mean(seg**2))) if len(seg) else 0.0
    return out


def sub_frame_peak(lags: np.ndarray, corr: np.ndarray) -> float:
    k = int(np.nanargmax(corr))
    if 0 < k < len(corr) - 1:
        y0, y1, y2 = corr[k - 1], corr[k], corr[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom != 0:
            return float(lags[k] + 0.5 * (y0 - y2) / denom)
    return float(lags[k])


def measure(
    name: str, rig: CharacterRig, speech: SpeechClip, work: Path, renderer: str = ""
) -> dict[str, object]:
    out = work / f"{name}.mp4"
    render_video(rig, speech, out, fps=FPS, seed=1, renderer=renderer)
    frames = list(read_frames(out))
    with FaceMeasurer() as m:
        aperture = m.measure_many(frames)["aperture"]
    offset = LEAD_IN + RENDERED_LIP_LEAD
    led = tuple(PhonemeTiming(p.phoneme, p.start + offset, p.end + offset) for p in speech.phonemes)
    openness = phoneme_openness_track(led, FPS, len(frames))
    lags, corr = lag_curve(aperture, envelope(speech, len(frames)), 6)
    offset_frames = sub_frame_peak(np.asarray(lags), np.asarray(corr))
    # The lag (frames, positive = mouth late) where the aperture best matches the phonemes.
    p_lags, p_corr = lag_curve(aperture, openness, 3)
    best = int(np.nanargmax(np.asarray(p_corr)))
    return {
        "frames": len(frames),
        "face_found": float(np.isfinite(aperture).mean()),
        "av_offset_frames": round(offset_frames, 3),
        "av_offset_ms": round(offset_frames / FPS * 1000, 1),
        "envelope_correlation_at_peak": round(float(np.nanmax(corr)), 3),
        "lipsync_correlation": round(correlation(aperture, openness), 3),
        "lipsync_best_lag_frames": int(np.asarray(p_lags)[best]),
        "lipsync_correlation_at_best_lag": round(float(np.asarray(p_corr)[best]), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/lipsync.json"))
    parser.add_argument("--renderer", default="", help="a load_renderer spec (default: meshwarp)")
    args = parser.parse_args()
    from skimage import data

    speech = synthesize(load_tts("piper"), TEXT)
    astronaut = build_rig(data.astronaut())
    closed = build_rig(MeshWarpRenderer(astronaut).render(FaceParams(lip_press=1.0)))
    results: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "speech_seconds": round(speech.duration, 2),
        "lip_lead_ms": RENDERED_LIP_LEAD * 1000,
        "renderer": args.renderer or "meshwarp",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, rig in (("astronaut_teeth", astronaut), ("closed_mouth", closed)):
            results[name] = measure(name, rig, speech, Path(tmp), args.renderer)
    print(f"speech {results['speech_seconds']} s, lip lead {results['lip_lead_ms']:.0f} ms")
    print(
        f"{'face':18s} {'A/V offset ms':>14s} {'r(envelope)':>12s} {'r(phonemes)':>12s} "
        f"{'best lag':>9s}"
    )
    for name in ("astronaut_teeth", "closed_mouth"):
        r = results[name]
        assert isinstance(r, dict)
        print(
            f"{name:18s} {r['av_offset_ms']:>14} {r['envelope_correlation_at_peak']:>12} "
            f"{r['lipsync_correlation']:>12} {r['lipsync_best_lag_frames']:>9}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
