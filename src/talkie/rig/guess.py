"""A first guess of the face points where the landmark model fails: drawings, emoji, mascots and
animals. Classical vision only (no model): a person corrects the guess in the point editor.

The face is the largest region that differs from the image's border (a drawn head on paper, an
emoji's disc), or the whole picture for a close-up. Inside it, dark, compact features stand out
in a black-hat transform (darker than what surrounds them: eyes, pupils, nostrils, a mouth); the
eyes are the pair of such features that best fits a face (side by side, alike in size, about
symmetric about the face's middle, in its upper part), the mouth the strongest feature centred
below them. Everything not found is placed by a face's usual proportions from what was found. The
guess always satisfies ``talkie.rig.manual.validate_points``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkie.errors import InvalidInputError
from talkie.rig.manual import validate_points

Points = dict[str, tuple[float, float]]
MAX_SIDE = 640  # the guess works on a copy at most this big


@dataclass(frozen=True)
class _Blob:
    x: float  # centroid
    y: float
    w: float  # bounding box
    h: float
    area: float
    strength: float  # mean black-hat response (how much darker than its surroundings)
    left: float
    top: float


@dataclass(frozen=True)
class Guess:
    """The guessed points (image pixels) and what they came from: "features" (eyes and mouth
    found), "eyes" (eyes found, the rest by proportion) or "proportions" (nothing found)."""

    points: Points
    found: str


def guess_points(image: np.ndarray) -> Guess:
    """Guess every point of ``talkie.rig.manual.MANUAL_POINTS`` on an RGB uint8 image."""
    height, width = image.shape[:2]
    scale = min(1.0, MAX_SIDE / max(height, width))
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA) if scale < 1 else image  # fmt: skip
    region = _face_region(small)
    blobs = _dark_blobs(small, region)
    eyes = _eye_pair(blobs, region)
    found = "proportions"
    if eyes is not None:
        mouth = _mouth(blobs, eyes, region)
        found = "features" if mouth is not None else "eyes"
        points = _from_features(eyes, mouth, region, small.shape)
    else:
        points = _from_region(region, small.shape)
    points = {k: (x / scale, y / scale) for k, (x, y) in points.items()}
    points = _clamp(points, width, height)
    try:
        validate_points(points, (width, height))
    except InvalidInputError:
        points = _clamp(
            {k: (x / scale, y / scale) for k, (x, y) in _from_region(region, small.shape).items()},
            width, height,
        )  # fmt: skip
        found = "proportions"
    return Guess(points, found)


def _face_region(image: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, w, h) of the face: the even-coloured area around the image's middle (a drawn
    face's skin, an emoji's disc, with its eyes and mouth as holes), else the largest blob unlike
    the border's colours, else the whole image (a close-up)."""
    even = _even_region(image)
    if even is not None:
        return even
    h, w = image.shape[:2]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    ref = np.median(border, axis=0)
    spread = np.median(np.linalg.norm(border - ref, axis=1))
    distance = np.linalg.norm(lab - ref, axis=2)
    mask = (distance > max(18.0, 3.0 * spread)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return (0.0, 0.0, float(w), float(h))
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh, area = stats[best]
    if area < 0.05 * w * h or (bw > 0.97 * w and bh > 0.97 * h):
        return (0.0, 0.0, float(w), float(h))
    return (float(x), float(y), float(bw), float(bh))


def _even_region(image: np.ndarray) -> tuple[float, float, float, float] | None:
    h, w = image.shape[:2]
    # Neighbour to neighbour (a drawn gradient, an emoji's shading, stays in), on the unblurred
    # image: the step across a drawn outline, even anti-aliased, is far larger.
    best: tuple[float, float, float, float] | None = None
    for fx, fy in ((0.5, 0.5), (0.5, 0.42), (0.5, 0.58)):
        mask = np.zeros((h + 2, w + 2), np.uint8)
        flags = 8 | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
        cv2.floodFill(
            image.copy(), mask, (int(w * fx), int(h * fy)), (0, 0, 0), (5, 5, 5), (5, 5, 5), flags
        )
        filled = mask[1:-1, 1:-1]
        area = float((filled > 0).sum())
        if not 0.04 * w * h <= area <= 0.85 * w * h:
            continue
        x, y, bw, bh = cv2.boundingRect(filled)
        # An even area this size with eyes and a mouth cut out of it covers most of its box.
        if area < 0.45 * bw * bh or bw < 0.15 * w or bh < 0.15 * h:
            continue
        if best is None or bw * bh > best[2] * best[3]:
            best = (float(x), float(y), float(bw), float(bh))
    return best


def _dark_blobs(image: np.ndarray, region: tuple[float, float, float, float]) -> list[_Blob]:
    rx, ry, rw, rh = region
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    size = max(5, int(round(min(rw, rh) / 6)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    hat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel).astype(np.float32)
    inside = np.zeros(gray.shape, bool)
    inside[int(ry) : int(ry + rh), int(rx) : int(rx + rw)] = True
    values = hat[inside]
    if values.size == 0 or values.max() < 12:
        return []
    level = max(20.0, float(np.percentile(values, 96)) * 0.6)
    mask = ((hat > level) & inside).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    blobs = []
    face_area = rw * rh
    for i in range(1, count):
        x, y, bw, bh, area = stats[i]
        if area < max(6, 0.0004 * face_area) or area > 0.08 * face_area:
            continue
        strength = float(hat[labels == i].mean())
        cx, cy = centroids[i]
        blobs.append(_Blob(float(cx), float(cy), float(bw), float(bh), float(area), strength,
                           float(x), float(y)))  # fmt: skip
    return blobs


def _eye_pair(
    blobs: list[_Blob], region: tuple[float, float, float, float]
) -> tuple[_Blob, _Blob] | None:
    rx, ry, rw, rh = region
    cx = rx + rw / 2
    best: tuple[float, tuple[_Blob, _Blob]] | None = None
    upper = [b for b in blobs if b.y < ry + 0.68 * rh]
    for i, a in enumerate(upper):
        for b in upper[i + 1 :]:
            left, right = (a, b) if a.x < b.x else (b, a)
            d = right.x - left.x
            if not 0.18 * rw <= d <= 0.75 * rw or abs(a.y - b.y) > 0.25 * d:
                continue
            size = min(a.area, b.area) / max(a.area, b.area)
            shape = min(a.w * b.h, b.w * a.h) / max(a.w * b.h, b.w * a.h)
            if size < 0.35:
                continue
            centred = 1.0 - min(1.0, abs((left.x + right.x) / 2 - cx) / (0.25 * rw))
            height = 1.0 - min(1.0, abs((a.y + b.y) / 2 - (ry + 0.42 * rh)) / (0.35 * rh))
            level = 1.0 - abs(a.y - b.y) / (0.25 * d)
            score = (a.strength + b.strength) / 255.0 + size + shape + 1.5 * centred
            score += height + level + 0.5 * (a.area + b.area) / (0.02 * rw * rh + 1)
            if best is None or score > best[0]:
                best = (score, (left, right))
    return best[1] if best else None


def _mouth(
    blobs: list[_Blob], eyes: tuple[_Blob, _Blob], region: tuple[float, float, float, float]
) -> _Blob | None:
    left, right = eyes
    d = right.x - left.x
    mid_x, eye_y = (left.x + right.x) / 2, (left.y + right.y) / 2
    candidates = [
        b for b in blobs
        if b not in eyes and 0.45 * d < b.y - eye_y < 1.7 * d and abs(b.x - mid_x) < 0.35 * d
        and b.w > 0.25 * d
    ]  # fmt: skip
    if not candidates:
        return None
    return max(candidates, key=lambda b: b.strength * b.w)


def _eye_points(blob: _Blob, d: float, side: str, outward: float) -> Points:
    """Corners, top and bottom of an eye from its dark blob (a pupil alone is widened to an
    eye's usual size)."""
    width = max(blob.w, 0.3 * d)
    height = max(blob.h, 0.12 * d)
    x, y = blob.x, blob.y
    return {
        f"{side}_eye_outer": (x + outward * width / 2, y),
        f"{side}_eye_inner": (x - outward * width / 2, y),
        f"{side}_eye_top": (x, y - height / 2),
        f"{side}_eye_bottom": (x, y + height / 2),
    }


def _from_features(
    eyes: tuple[_Blob, _Blob], mouth: _Blob | None, region: tuple[float, float, float, float],
    shape: tuple[int, ...],
) -> Points:  # fmt: skip
    left_img, right_img = eyes  # image left is the character's right
    d = right_img.x - left_img.x
    mid_x, eye_y = (left_img.x + right_img.x) / 2, (left_img.y + right_img.y) / 2
    points = _eye_points(left_img, d, "right", -1.0) | _eye_points(right_img, d, "left", 1.0)
    if mouth is not None:
        my = mouth.y
        half = max(mouth.w / 2, 0.25 * d)
        points |= {
            "mouth_right": (mouth.x - half, my), "mouth_left": (mouth.x + half, my),
            "upper_lip": (mouth.x, mouth.top), "lower_lip": (mouth.x, mouth.top + mouth.h),
        }  # fmt: skip
        lowest = mouth.top + mouth.h
    else:
        my = eye_y + 1.05 * d
        points |= {
            "mouth_right": (mid_x - 0.4 * d, my), "mouth_left": (mid_x + 0.4 * d, my),
            "upper_lip": (mid_x, my - 0.08 * d), "lower_lip": (mid_x, my + 0.12 * d),
        }  # fmt: skip
        lowest = my + 0.12 * d
    rx, ry, rw, rh = region
    down = my - eye_y
    chin = min(max(lowest + 0.45 * down, my + 0.5 * down), ry + rh - 2, shape[0] - 2)
    # Above the lips, whatever was taken for the mouth (on an animal, the nose may be).
    nose_y = min(eye_y + 0.62 * down, points["upper_lip"][1] - 0.08 * d)
    points |= {
        "nose_tip": (mid_x, max(nose_y, eye_y + 0.2 * d)),
        "chin": (mid_x, max(chin, lowest + 2)),
        "forehead": (mid_x, max(1.0, eye_y - 0.95 * d)),
        "face_right": (max(1.0, min(rx + 2, mid_x - 0.95 * d)), eye_y + 0.25 * d),
        "face_left": (min(shape[1] - 2.0, max(rx + rw - 2, mid_x + 0.95 * d)), eye_y + 0.25 * d),
    }
    return points


def _from_region(region: tuple[float, float, float, float], shape: tuple[int, ...]) -> Points:
    """A face of usual proportions filling ``region``."""
    rx, ry, rw, rh = region
    cx = rx + rw / 2
    d = 0.36 * rw
    eye_y = ry + 0.42 * rh
    eye = 0.14 * rw
    points: Points = {}
    for side, s in (("right", -1.0), ("left", 1.0)):
        ex = cx + s * d / 2
        points |= {
            f"{side}_eye_outer": (ex + s * eye / 2, eye_y),
            f"{side}_eye_inner": (ex - s * eye / 2, eye_y),
            f"{side}_eye_top": (ex, eye_y - 0.05 * rw),
            f"{side}_eye_bottom": (ex, eye_y + 0.05 * rw),
        }
    mouth_y = ry + 0.74 * rh
    points |= {
        "nose_tip": (cx, ry + 0.6 * rh),
        "mouth_right": (cx - 0.17 * rw, mouth_y), "mouth_left": (cx + 0.17 * rw, mouth_y),
        "upper_lip": (cx, mouth_y - 0.03 * rh), "lower_lip": (cx, mouth_y + 0.04 * rh),
        "chin": (cx, ry + 0.95 * rh), "forehead": (cx, ry + 0.06 * rh),
        "face_right": (rx + 0.04 * rw, eye_y + 0.05 * rh),
        "face_left": (rx + 0.96 * rw, eye_y + 0.05 * rh),
    }  # fmt: skip
    return points


def _clamp(points: Points, width: int, height: int) -> Points:
    return {
        k: (float(np.clip(x, 0.0, width)), float(np.clip(y, 0.0, height)))
        for k, (x, y) in points.items()
    }
