"""Is a detected face mesh plausible? A wrong detection must become "needs points", never a
broken character.

The landmark model always returns a human-shaped mesh, even on a drawing it misreads (an emoji
whose lip outline it lays across the teeth, eyes placed above the drawn ones). So besides the
mesh's own geometry (eyes inside the face outline, nose below the eyes and mouth below the nose,
the two sides alike), the image itself is asked whether the outline of the lips lies on edges:
lips differ from the skin around them, so colour changes across the outer lip contour, more than
across the same contour moved onto the cheeks and chin. Measured on photos (also dark, grey,
JPEG-damaged, tiny, tilted, mirrored ones), a painting and a drawn cartoon: contrast 6.9-46 (Lab
units), 2.0-5.2 times the cheeks' (or flat skin); on a misread emoji: 0.6, 0.9 times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from talkie.rig import topology as topo

MIN_LIP_CONTRAST = 3.0  # Lab units across the outer lip contour (median over the contour)
MIN_LIP_CONTRAST_RATIO = 1.5  # ... relative to the same contour moved onto the skin around
MIN_EYES_INSIDE = 0.9  # share of the eye contours inside the face outline
MIN_SIDE_RATIO = 0.4  # the nearer eye (or mouth corner) over the farther, from the face's middle
NOSE_BRIDGE = 168


@dataclass(frozen=True)
class Plausibility:
    """The scores of every check and, when one fails, why (``ok`` is False)."""

    scores: dict[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def check_face(image: np.ndarray, landmarks: np.ndarray) -> Plausibility:
    """Check a (478, 3) landmark mesh (pixels of the RGB uint8 ``image``)."""
    xy = landmarks[:, :2].astype(np.float64)
    scores: dict[str, float] = {}
    problems: list[str] = []
    u, v = _axes(xy)

    oval = xy[list(topo.FACE_OVAL)].astype(np.float32)
    eyes = xy[list(topo.RIGHT_EYE_UPPER + topo.RIGHT_EYE_LOWER + topo.LEFT_EYE_UPPER
                   + topo.LEFT_EYE_LOWER)]  # fmt: skip
    inside = np.mean(
        [cv2.pointPolygonTest(oval, (float(x), float(y)), False) >= 0 for x, y in eyes]
    )
    scores["eyes_inside_face"] = float(inside)
    if inside < MIN_EYES_INSIDE:
        problems.append("the eyes fall outside the face outline")

    eye_line = float(((xy[33] + xy[263]) / 2) @ v)
    nose = float(xy[topo.NOSE_TIP] @ v)
    mouth = float(((xy[13] + xy[14]) / 2) @ v)
    chin = float(xy[topo.CHIN] @ v)
    eye_distance = float(np.linalg.norm(xy[263] - xy[33]))
    scores["mouth_below_nose"] = (mouth - nose) / max(eye_distance, 1e-6)
    if not eye_line < nose < mouth < chin:
        problems.append("the eyes, nose, mouth and chin are not in order down the face")

    middle = (xy[NOSE_BRIDGE] + xy[topo.CHIN]) / 2
    sides = []
    for right, left in ((468, 473), (61, 291)):  # iris centres, mouth corners
        a = abs(float((xy[right] - middle) @ u))
        b = abs(float((xy[left] - middle) @ u))
        sides.append(min(a, b) / max(a, b, 1e-6))
    scores["symmetry"] = float(min(sides))
    if scores["symmetry"] < MIN_SIDE_RATIO:
        problems.append("the two sides of the face do not match")

    contrast, baseline = _lip_contrast(image, xy, u, v)
    scores["lip_edge_contrast"] = contrast
    scores["lip_edge_ratio"] = contrast / max(baseline, 0.5)  # flat drawings: no skin texture
    if contrast < MIN_LIP_CONTRAST or contrast < MIN_LIP_CONTRAST_RATIO * baseline:
        problems.append("the outline of the lips is not on the lips' edges")
    return Plausibility({k: round(val, 3) for k, val in scores.items()}, tuple(problems))


def _axes(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = xy[263] - xy[33]
    u = u / max(float(np.linalg.norm(u)), 1e-9)
    return u, np.array([-u[1], u[0]])


def _lip_contrast(
    image: np.ndarray, xy: np.ndarray, u: np.ndarray, v: np.ndarray
) -> tuple[float, float]:
    """Median colour difference across the outer lip contour, and the same across that contour
    moved beside the mouth and below it (the skin's own texture)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    face_height = float(np.linalg.norm(xy[topo.FOREHEAD_TOP] - xy[topo.CHIN]))
    step = max(1.0, 0.012 * face_height)
    width = float(np.linalg.norm(xy[291] - xy[61]))
    contrasts, baselines = [], []
    for contour in (topo.OUTER_LIP_UPPER[2:-2], topo.OUTER_LIP_LOWER[2:-2]):
        pts = xy[list(contour)]
        contrasts.append(_across(lab, pts, step))
        shifts = (0.9 * width * u, -0.9 * width * u, 0.12 * face_height * v)
        baselines.append(float(np.median([_across(lab, pts + s, step) for s in shifts])))
    return float(np.mean(contrasts)), float(np.mean(baselines))


def _across(lab: np.ndarray, pts: np.ndarray, step: float) -> float:
    """Median over a contour of the colour difference between its two sides, allowing the
    contour to be a step off the edge."""
    tangent = np.gradient(pts, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    best = np.zeros(len(pts))
    for offset in (-1.0, -0.5, 0.0, 0.5, 1.0):
        centre = pts + normal * offset * step
        a = _sample(lab, centre + normal * step)
        b = _sample(lab, centre - normal * step)
        best = np.maximum(best, np.linalg.norm(a - b, axis=1))
    return float(np.median(best))


def _sample(lab: np.ndarray, pts: np.ndarray) -> np.ndarray:
    map_x = pts[:, 0:1].astype(np.float32)
    map_y = pts[:, 1:2].astype(np.float32)
    return cv2.remap(lab, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)[:, 0]
