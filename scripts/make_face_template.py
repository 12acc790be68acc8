"""Write src/talkie/rig/data/face_template.json: the 478-point face manual rigs are fitted from.

MediaPipe's canonical face model is not in the mediapipe wheel, so the template is measured: the
landmarks of a frontal, neutral, closed-mouth portrait (Grace Hopper, US Navy photo, public
domain, shipped as matplotlib's sample data), made exactly left-right symmetric and frontal.

The mirror correspondence (which landmark is the other side's twin) is measured too: FaceMesh runs
on each portrait and on its mirror image, and an optimal assignment pairs every point with the
mirrored point nearest to it (two portraits make it unambiguous; the result is an involution that
keeps > 99 % of the tessellation's edges). A pure head turn or tilt shows up as a rotation between
the face and its mirror twin of twice the head's angle, so half of it is undone before averaging
the two sides. The pitch cannot be seen this way and stays as photographed (level).

Run: .venv/bin/python scripts/make_face_template.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment
from scipy.spatial.transform import Rotation

from talkie.rig import detect
from talkie.rig import topology as topo

OUT = Path(__file__).resolve().parent.parent / "src" / "talkie" / "rig" / "data"
OUT_FILE = OUT / "face_template.json"


def _portraits() -> dict[str, np.ndarray]:
    import matplotlib.cbook as cbook
    from skimage import data

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    hopper = np.array(Image.open(path).convert("RGB"))
    return {"hopper": hopper, "astronaut": data.astronaut()}


def _landmarks_and_mirror(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks of the image, and of its mirror image flipped back into the image's x."""
    found = detect.face_landmarks(image)
    mirrored = detect.face_landmarks(np.ascontiguousarray(image[:, ::-1]))
    if found is None or mirrored is None:
        raise SystemExit("FaceMesh found no face in a template portrait")
    mirrored[:, 0] = image.shape[1] - mirrored[:, 0]
    return found, mirrored


def mirror_map(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """twin[i]: the landmark that is i's mirror image (the other eye's corner, ...)."""
    cost = np.zeros((topo.N_FACE_LANDMARKS, topo.N_FACE_LANDMARKS))
    for found, mirrored in pairs:
        scale = np.linalg.norm(found[33, :2] - found[263, :2])
        d = np.linalg.norm(mirrored[:, None, :2] - found[None, :, :2], axis=2) / scale
        cost += d + d.T  # symmetric, so the assignment comes out an involution
    _, twin = linear_sum_assignment(cost)
    if not np.array_equal(twin[twin], np.arange(len(twin))):
        raise SystemExit("the mirror correspondence is not an involution")
    return np.asarray(twin)


def symmetric_frontal(points: np.ndarray, twin: np.ndarray) -> np.ndarray:
    """Rotate the face so it looks straight ahead (no yaw or roll) and average its two sides."""
    flip = np.array([-1.0, 1.0, 1.0])  # mirror x about the plane through the mean
    pts = points - points.mean(axis=0)
    for _ in range(5):
        twin_pts = pts[twin] * flip
        # Kabsch: the rotation taking the face onto its mirror twin is twice the head rotation.
        u, _, vt = np.linalg.svd(twin_pts.T @ pts)
        d = np.sign(np.linalg.det(u @ vt))
        rot = u @ np.diag([1.0, 1.0, d]) @ vt
        half = Rotation.from_rotvec(Rotation.from_matrix(rot).as_rotvec() / 2)
        pts = half.apply(pts)
        pts -= pts.mean(axis=0)
    return (pts + pts[twin] * flip) / 2


def normalise(points: np.ndarray) -> np.ndarray:
    """Origin between the eye centres, x to the character's left eye, unit eye distance."""
    right = (points[33] + points[133]) / 2
    left = (points[362] + points[263]) / 2
    out = (points - (right + left) / 2) / np.linalg.norm(left[:2] - right[:2])
    out[:, 2] -= out[list(topo.FACE_OVAL), 2].mean()  # depth 0 at the face outline's mean
    return out


def main() -> int:
    portraits = _portraits()
    measured = {name: _landmarks_and_mirror(image) for name, image in portraits.items()}
    twin = mirror_map(list(measured.values()))
    hopper, _ = measured["hopper"]
    template = normalise(symmetric_frontal(hopper.astype(np.float64), twin))
    lip_gap = np.linalg.norm(template[13, :2] - template[14, :2])
    if lip_gap > 0.02:
        raise SystemExit(f"the template's lips are parted ({lip_gap:.3f} eye distances)")
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": 1,
        "about": (
            "MediaPipe FaceMesh's 478 landmarks of a frontal, neutral, closed-mouth face made "
            "left-right symmetric; origin between the eye centres, x towards the character's "
            "left eye, y down, z towards the back of the head, unit = distance between the eye "
            "centres. Written by scripts/make_face_template.py."
        ),
        "landmarks": [[round(float(v), 5) for v in p] for p in template],
    }
    OUT_FILE.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {OUT_FILE} ({OUT_FILE.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
