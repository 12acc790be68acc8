"""The faces the looks benchmark and the tests animate, generated or shipped at test time.

Six styles (DESIGN.md and issue 11): a photo showing teeth (scikit-image's astronaut, public
domain), the same portrait with closed lips, a painting-style filter of it, a cartoon face drawn
here, an emoji-style grinning face drawn here, and an animal (scikit-image's Chelsea the cat,
public domain). Drawn faces come with where their face points are (what a person would place in
the point editor), so a first guess of the points can be scored against them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Points = dict[str, tuple[float, float]]


@dataclass(frozen=True, eq=False)
class SampleFace:
    """An RGB uint8 image, and the face points a person would place on it (None for photos
    whose face the detector finds, for which the detected landmarks are the truth)."""

    name: str
    image: np.ndarray
    points: Points | None


def astronaut() -> SampleFace:
    from skimage import data

    return SampleFace("photo_teeth", data.astronaut(), None)


def closed_mouth(photo: np.ndarray) -> SampleFace:
    """The portrait with its lips pressed together, made by the renderer itself (no other
    public-domain frontal portrait ships with the installed packages)."""
    from talkie.messages import FaceParams
    from talkie.render import MeshWarpRenderer
    from talkie.rig import build_rig

    rig = build_rig(photo)
    return SampleFace("photo_closed", MeshWarpRenderer(rig).render(FaceParams(lip_press=1.0)), None)


def painting(photo: np.ndarray) -> SampleFace:
    """An edge-preserving 'painted' version: flat colour areas, soft detail, no grain."""
    styled = cv2.stylization(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), sigma_s=40, sigma_r=0.35)
    return SampleFace("painting", cv2.cvtColor(styled, cv2.COLOR_BGR2RGB), None)


SKIN, HAIR, SHIRT, PAPER = (244, 200, 170), (90, 55, 35), (60, 110, 170), (235, 240, 245)
INK, IRIS, LIPS = (40, 30, 30), (70, 120, 60), (200, 95, 95)


def cartoon() -> SampleFace:
    """A flat-shaded cartoon person: head, hair, ears, almond eyes, brows, a nose line and
    closed lips, on a plain background with shoulders."""
    img = np.full((560, 560, 3), PAPER, np.uint8)
    cx, cy = 280, 250
    aa = cv2.LINE_AA
    cv2.ellipse(img, (cx, 560), (200, 110), 0, 180, 360, SHIRT, -1, aa)  # shoulders
    cv2.rectangle(img, (cx - 45, cy + 120), (cx + 45, 470), SKIN, -1, aa)  # neck
    cv2.ellipse(img, (cx, cy - 30), (150, 150), 0, 180, 360, HAIR, -1, aa)  # hair
    for s in (-1, 1):
        cv2.ellipse(img, (cx + s * 118, cy + 10), (20, 32), 0, 0, 360, SKIN, -1, aa)  # ears
    cv2.ellipse(img, (cx, cy + 10), (118, 150), 0, 0, 360, SKIN, -1, aa)  # face
    cv2.ellipse(img, (cx, cy - 95), (120, 55), 0, 180, 360, HAIR, -1, aa)  # fringe
    pts: Points = {}
    for side, s in (("right", -1), ("left", 1)):  # the character's right is the image's left
        ex, ey = cx + s * 48, cy - 10
        cv2.ellipse(img, (ex, ey), (28, 14), 0, 0, 360, (255, 255, 255), -1, aa)
        cv2.circle(img, (ex, ey), 11, IRIS, -1, aa)
        cv2.circle(img, (ex, ey), 5, INK, -1, aa)
        cv2.circle(img, (ex - 3, ey - 4), 2, (255, 255, 255), -1, aa)
        cv2.ellipse(img, (ex, ey), (28, 14), 0, 180, 360, INK, 3, aa)
        cv2.ellipse(img, (ex, ey - 22), (30, 8), 0, 200, 340, HAIR, 5, aa)  # brow
        pts[f"{side}_eye_outer"] = (ex + s * 28, ey)
        pts[f"{side}_eye_inner"] = (ex - s * 28, ey)
        pts[f"{side}_eye_top"] = (ex, ey - 14)
        pts[f"{side}_eye_bottom"] = (ex, ey + 14)
    cv2.ellipse(img, (cx, cy + 40), (10, 6), 0, 0, 180, (200, 140, 120), 3, aa)  # nose
    upper = np.array([[cx - 40, cy + 88], [cx - 15, cy + 78], [cx, cy + 82], [cx + 15, cy + 78],
                      [cx + 40, cy + 88], [cx, cy + 92]], np.int32)  # fmt: skip
    lower = np.array([[cx - 40, cy + 88], [cx, cy + 92], [cx + 40, cy + 88], [cx + 20, cy + 101],
                      [cx, cy + 104], [cx - 20, cy + 101]], np.int32)  # fmt: skip
    cv2.fillPoly(img, [upper], (185, 80, 85), aa)
    cv2.fillPoly(img, [lower], LIPS, aa)
    cv2.polylines(img, [np.array([[cx - 40, cy + 88], [cx, cy + 92], [cx + 40, cy + 88]])],
                  False, (120, 45, 50), 2, aa)  # fmt: skip
    pts |= {
        "nose_tip": (cx, cy + 44), "mouth_right": (cx - 40, cy + 88),
        "mouth_left": (cx + 40, cy + 88), "upper_lip": (cx, cy + 79), "lower_lip": (cx, cy + 104),
        "chin": (cx, cy + 158), "forehead": (cx, cy - 128),
        "face_right": (cx - 117, cy + 5), "face_left": (cx + 117, cy + 5),
    }  # fmt: skip
    return SampleFace("cartoon", img, pts)


YELLOW, YELLOW_DARK, MOUTH_DARK = (255, 204, 40), (235, 160, 20), (80, 30, 20)


def emoji() -> SampleFace:
    """A grinning emoji: a yellow disc with a shaded rim, brows, tall dark eyes with a highlight
    and a wide open grin showing a band of upper teeth. MediaPipe 'finds' a face in it, wrongly
    (the lip outline on the teeth, the eyes above the drawn ones): the plausibility check's
    case."""
    size = 512
    img = np.full((size, size, 3), (255, 255, 255), np.uint8)
    cx, cy, r = 256, 256, 200
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d = np.hypot(xx - cx, yy - cy + 40) / (r * 1.2)
    shade = np.clip(d, 0, 1)[..., None]
    disc = np.array(YELLOW, np.float32) * (1 - shade) + np.array(YELLOW_DARK, np.float32) * shade
    inside = np.zeros((size, size), np.uint8)
    cv2.circle(inside, (cx, cy), r, 255, -1, cv2.LINE_AA)
    a = inside.astype(np.float32)[..., None] / 255.0
    img = np.clip(img * (1 - a) + disc * a, 0, 255).astype(np.uint8)
    aa = cv2.LINE_AA
    pts: Points = {}
    for side, s in (("right", -1), ("left", 1)):
        ex, ey = cx + s * 68, cy - 60
        cv2.ellipse(img, (ex, ey), (20, 34), 0, 0, 360, (60, 40, 20), -1, aa)
        cv2.circle(img, (ex - 6, ey - 14), 7, (255, 255, 255), -1, aa)
        cv2.ellipse(img, (ex, ey - 60), (30, 10), 0, 200, 340, (110, 70, 20), 6, aa)
        pts[f"{side}_eye_outer"] = (ex + s * 20, ey)
        pts[f"{side}_eye_inner"] = (ex - s * 20, ey)
        pts[f"{side}_eye_top"] = (ex, ey - 34)
        pts[f"{side}_eye_bottom"] = (ex, ey + 34)
    # The grin: a flat top edge from corner to corner and a round bottom.
    top_y, half_w, depth = cy + 30, 120, 95
    mouth = cv2.ellipse2Poly((cx, top_y), (half_w, depth), 0, 0, 180, 4)
    cv2.fillPoly(img, [mouth], MOUTH_DARK, aa)
    teeth = np.zeros((size, size), np.uint8)
    cv2.fillPoly(teeth, [mouth], 255, aa)
    teeth[top_y + 32 :] = 0
    img[teeth > 0] = (255, 255, 255)
    tongue = np.zeros_like(teeth)
    cv2.ellipse(tongue, (cx, top_y + depth), (70, 40), 0, 180, 360, 255, -1, aa)
    cv2.fillPoly(tongue, [np.vstack([mouth, mouth[:1]])], 255, aa)
    inner = np.zeros_like(teeth)
    cv2.fillPoly(inner, [mouth], 255, aa)
    tongue_only = (tongue > 0) & (inner > 0)
    yy_t = (yy > top_y + depth - 38) & tongue_only
    img[yy_t] = (235, 90, 90)
    cv2.polylines(img, [mouth], True, (90, 50, 20), 3, aa)
    pts |= {
        "nose_tip": (cx, cy - 5),
        "mouth_right": (cx - half_w, top_y), "mouth_left": (cx + half_w, top_y),
        "upper_lip": (cx, top_y - 3), "lower_lip": (cx, top_y + depth + 3),
        "mouth_open_top": (cx, top_y + 2), "mouth_open_bottom": (cx, top_y + depth - 2),
        "chin": (cx, cy + r - 12), "forehead": (cx, cy - r + 15),
        "face_right": (cx - r + 8, cy), "face_left": (cx + r - 8, cy),
    }  # fmt: skip
    return SampleFace("emoji", img, pts)


CAT_PAPER, FUR, EYE_GREEN, LIP_RED, CAT_INK = (
    (250, 250, 240), (240, 150, 60), (180, 220, 60), (110, 30, 40), (30, 25, 25),
)  # fmt: skip


def draw_cat() -> tuple[np.ndarray, Points]:
    """A flat cartoon cat (head ellipse with ears, almond eyes with slit pupils, a nose, a wide
    smiling mouth, whiskers) and where its face points are. MediaPipe finds no face in it
    (a human-like cartoon face, by contrast, is detected)."""
    img = np.full((480, 640, 3), CAT_PAPER, np.uint8)
    cx, cy = 320, 260
    for s in (-1, 1):
        ear = np.array([[cx + s * 40, cy - 100], [cx + s * 140, cy - 185], [cx + s * 130, cy - 40]])
        cv2.fillConvexPoly(img, ear, FUR, cv2.LINE_AA)
    cv2.ellipse(img, (cx, cy), (150, 125), 0, 0, 360, FUR, -1, cv2.LINE_AA)
    pts: dict[str, tuple[int, int]] = {}
    for side, s in (("right", -1), ("left", 1)):  # the character's right is the image's left
        ex, ey = cx + s * 58, cy - 30
        cv2.ellipse(img, (ex, ey), (28, 24), 0, 0, 360, EYE_GREEN, -1, cv2.LINE_AA)
        cv2.ellipse(img, (ex, ey), (28, 24), 0, 0, 360, CAT_INK, 2, cv2.LINE_AA)
        cv2.ellipse(img, (ex, ey), (6, 20), 0, 0, 360, (10, 10, 10), -1, cv2.LINE_AA)
        pts[f"{side}_eye_outer"] = (ex + s * 28, ey)
        pts[f"{side}_eye_inner"] = (ex - s * 28, ey)
        pts[f"{side}_eye_top"] = (ex, ey - 24)
        pts[f"{side}_eye_bottom"] = (ex, ey + 24)
    nose = np.array([[cx - 13, cy + 12], [cx + 13, cy + 12], [cx, cy + 26]])
    cv2.fillConvexPoly(img, nose, (240, 120, 140), cv2.LINE_AA)
    cv2.line(img, (cx, cy + 26), (cx, cy + 44), CAT_INK, 3, cv2.LINE_AA)
    cv2.ellipse(img, (cx, cy + 30), (52, 20), 0, 5, 175, LIP_RED, 6, cv2.LINE_AA)
    for s in (-1, 1):
        for dy in (-8, 8):
            start, end = (cx + s * 70, cy + 20 + dy), (cx + s * 165, cy + 8 + 2 * dy)
            cv2.line(img, start, end, CAT_INK, 2, cv2.LINE_AA)
    pts |= {
        "nose_tip": (cx, cy + 20),
        "mouth_right": (cx - 52, cy + 32), "mouth_left": (cx + 52, cy + 32),
        "upper_lip": (cx, cy + 45), "lower_lip": (cx, cy + 54),
        "chin": (cx, cy + 125), "forehead": (cx, cy - 125),
        "face_right": (cx - 149, cy + 5), "face_left": (cx + 149, cy + 5),
    }  # fmt: skip
    return img, {k: (float(x), float(y)) for k, (x, y) in pts.items()}


def drawn_cat() -> SampleFace:
    image, points = draw_cat()
    return SampleFace("drawn_cat", image, points)


def chelsea() -> SampleFace:
    """scikit-image's Chelsea, a tabby cat seen nearly from the front; the points were placed by
    hand on the 451x300 image (her mouth is the short line under the nose)."""
    from skimage import data

    pts: Points = {
        "right_eye_outer": (137, 112), "right_eye_inner": (206, 127),
        "right_eye_top": (172, 86), "right_eye_bottom": (172, 143),
        "left_eye_inner": (298, 146), "left_eye_outer": (357, 126),
        "left_eye_top": (322, 111), "left_eye_bottom": (320, 164),
        "nose_tip": (262, 240), "mouth_right": (236, 270), "mouth_left": (290, 268),
        "upper_lip": (262, 262), "lower_lip": (262, 280), "chin": (262, 298),
        "forehead": (250, 15), "face_right": (40, 150), "face_left": (420, 175),
    }  # fmt: skip
    return SampleFace("animal", data.chelsea(), pts)


def sample_faces() -> list[SampleFace]:
    """The six looks faces and the drawn cat, in the order the contact sheets show them."""
    photo = astronaut()
    closed = closed_mouth(photo.image)
    makers: list[Callable[[], SampleFace]] = [
        lambda: photo,
        lambda: closed,
        lambda: painting(closed.image),
        cartoon,
        emoji,
        chelsea,
        drawn_cat,
    ]
    return [make() for make in makers]
