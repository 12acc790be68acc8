"""Looks benchmark: contact sheets of every mouth shape, blinks and head turns, for six styles.

Run from the repository root::

    .venv/bin/python bench/looks.py [--out bench/results/looks] [--faces DIR]

For each face of ``talkie.quality.sample_faces`` (a photo with teeth, the same photo with closed
lips, a painting-style filter, a drawn cartoon, an emoji-style grin, a cat) the character is made
the way the product makes it: detection, and where detection fails or is implausible, the points
a person would place (the sample's own points). Then 720p frames are rendered for open vowels
(aa, E, oh, ih), bilabials (PP, and the release into a vowel), F, L / N / TH (the tongue), blinks
and head turns while talking, and a sheet per face is saved: the face at its 720p size on top
(exactly the pixels a viewer sees), the mouth enlarged 2.5x below (nearest-neighbour: every
720p pixel stays visible). ``--faces DIR`` reads the faces (``NAME.png`` and ``NAME.json`` with
its points) that a previous run saved in ``DIR/faces``, so an older checkout renders the very
same inputs for a before/after comparison (the script uses only APIs that older versions have).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from talkie.errors import NoFaceFoundError
from talkie.messages import FaceParams
from talkie.render import MeshWarpRenderer
from talkie.rig import CharacterRig, build_rig, build_rig_from_points

try:  # newer Talkie: the viseme shapes carry the tongue too
    from talkie.motion.visemes import VISEME_SHAPES
except ImportError:  # pragma: no cover - very old checkouts
    VISEME_SHAPES = {}

SIZE = (1280, 720)
ZOOM = 2.5
CELL = 300  # face crop at 720p scale (pixels)
MOUTH_CELL = 120  # mouth crop at 720p scale, shown ZOOM times larger


def params(**values: float) -> FaceParams:
    """FaceParams from the names this checkout knows (an older one has no ``tongue``)."""
    known = set(FaceParams.names())
    return FaceParams(**{k: v for k, v in values.items() if k in known})


def viseme(name: str, **extra: float) -> FaceParams:
    shape = VISEME_SHAPES[name]
    values = {k: float(getattr(shape, k)) for k in FaceParams.names() if hasattr(shape, k)}
    return params(**{**values, **extra})


POSES: tuple[tuple[str, FaceParams], ...] = (
    ("rest", params()),
    ("aa (open)", viseme("aa")),
    ("E", viseme("E")),
    ("oh", viseme("oh")),
    ("ih", viseme("ih")),
    ("PP (m b p)", viseme("PP")),
    ("m -> a", params(jaw_open=0.35, lip_width=0.05, upper_lip_raise=0.05)),
    ("FF", viseme("FF")),
    ("L / N", viseme("nn")),
    ("L wide", viseme("nn", jaw_open=0.5)),
    ("TH", viseme("TH")),
    ("smile + E", viseme("E", smile=0.6)),
    ("blink half", params(blink_left=0.5, blink_right=0.5)),
    ("blink", params(blink_left=1.0, blink_right=1.0)),
    ("yaw -10 aa", viseme("aa", head_yaw=-10.0, head_pitch=2.0)),
    ("yaw +10 oh", viseme("oh", head_yaw=10.0, head_roll=4.0)),
    ("pitch 6 E", viseme("E", head_pitch=6.0, gaze_y=0.4)),
)


def rig_like_the_product(image: np.ndarray, points: dict[str, Any] | None) -> tuple[Any, str]:
    """The rig the product would animate: the detected face, or (no face, or an implausible
    one) the points a person places in the editor."""
    try:
        return build_rig(image), "detected"
    except NoFaceFoundError as exc:
        if points is None:
            raise
        reason = str(exc).split(";")[0]
        return build_rig_from_points(image, points), f"needs points ({reason})"


def plausibility(image: np.ndarray, rig: CharacterRig, how: str) -> dict[str, Any] | None:
    """The plausibility check's scores for the face the detector found (newer Talkie): on the
    rig for a detected face, on the landmarks the detector gives the whole image otherwise."""
    try:
        from talkie.rig import detect
        from talkie.rig.plausibility import check_face
    except ImportError:
        return None
    if how == "detected":
        report = check_face(rig.image, rig.face.points)
    else:
        landmarks = detect.face_landmarks(image)
        if landmarks is None:
            return {"detected": False}
        report = check_face(image, landmarks)
    return {"detected": True, "ok": report.ok, "problems": list(report.problems), **report.scores}


def crop(frame: np.ndarray, centre: np.ndarray, side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    x0 = int(np.clip(round(centre[0] - side / 2), 0, w - side))
    y0 = int(np.clip(round(centre[1] - side / 2), 0, h - side))
    return frame[y0 : y0 + side, x0 : x0 + side]


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 18), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def sheet(
    rig: CharacterRig, title: str, renderer: str = ""
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if renderer:  # a newer Talkie: any renderer by name
        from talkie.render import load_renderer

        r: Any = load_renderer(renderer, rig)
    else:
        r = MeshWarpRenderer(rig)
    frame = r.deformer.frame
    face_side = int(min(SIZE[1], max(CELL, round(1.45 * frame.face_height))))
    mouth_side = int(max(MOUTH_CELL, round(1.5 * frame.mouth_width)))
    face_centre = frame.mouth_centre - 0.3 * frame.face_height * frame.v
    top, bottom, frames = [], [], {}
    for name, p in POSES:
        image = r.render(p)
        frames[name] = image
        face = cv2.resize(crop(image, face_centre, face_side), (CELL, CELL), cv2.INTER_AREA)
        mouth = crop(image, frame.mouth_centre, mouth_side)
        mouth = cv2.resize(mouth, (CELL, CELL), interpolation=cv2.INTER_NEAREST)
        top.append(label(face, name))
        bottom.append(mouth)
    grid = np.vstack([np.hstack(top), np.hstack(bottom)])
    head = np.zeros((26, grid.shape[1], 3), np.uint8)
    cv2.putText(head, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                cv2.LINE_AA)  # fmt: skip
    return np.vstack([head, grid]), frames


def load_faces(directory: Path) -> list[tuple[str, np.ndarray, dict[str, Any] | None]]:
    faces = []
    for png in sorted(directory.glob("*.png"), key=lambda p: p.stem[:2]):
        image = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
        meta = json.loads(png.with_suffix(".json").read_text())
        faces.append((str(meta["name"]), image, meta["points"]))
    return faces


def generate_faces(directory: Path) -> list[tuple[str, np.ndarray, dict[str, Any] | None]]:
    from talkie.quality.sample_faces import sample_faces

    directory.mkdir(parents=True, exist_ok=True)
    faces = []
    for i, face in enumerate(sample_faces()):
        stem = directory / f"{i:02d}_{face.name}"
        cv2.imwrite(str(stem.with_suffix(".png")), cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR))
        stem.with_suffix(".json").write_text(json.dumps({"name": face.name, "points": face.points}))
        faces.append((face.name, face.image, face.points))
    return faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/looks"))
    parser.add_argument("--faces", type=Path, help="read the faces a previous run saved here")
    parser.add_argument("--label", default="", help="added to every sheet's title")
    parser.add_argument(
        "--compare", type=Path, help="also write BEFORE-over-after sheets against this folder"
    )
    parser.add_argument("--renderer", default="", help="a load_renderer spec (newer Talkie)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    faces = load_faces(args.faces) if args.faces else generate_faces(args.out / "faces")
    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    for name, image, points in faces:
        try:
            rig, how = rig_like_the_product(image, points)
        except Exception as exc:  # report the face, keep going with the others
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{name:14s} FAILED: {exc}")
            continue
        title = f"{name}: {how} {args.label}".strip()
        grid, _ = sheet(rig, title, args.renderer)
        path = args.out / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        report[name] = {
            "rig": how,
            "sheet": str(path),
            "plausibility": plausibility(image, rig, how),
        }
        print(f"{name:14s} {how[:70]:70s} -> {path}")
    (args.out / "looks.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.compare:
        for name, *_ in faces:
            compare(args.compare / f"{name}.png", args.out / f"{name}.png",
                    args.out / f"compare_{name}.png")  # fmt: skip


def compare(before: Path, after: Path, out: Path) -> None:
    """One sheet: the older sheet above the newer one, each titled."""
    if not before.exists() or not after.exists():
        return
    a, b = cv2.imread(str(before)), cv2.imread(str(after))
    width = max(a.shape[1], b.shape[1])
    rows = []
    for title, img in (("BEFORE", a), ("AFTER", b)):
        bar = np.zeros((30, width, 3), np.uint8)
        cv2.putText(bar, title, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        rows += [bar, np.pad(img, ((0, 0), (0, width - img.shape[1]), (0, 0)))]
    cv2.imwrite(str(out), np.vstack(rows))


if __name__ == "__main__":
    main()
