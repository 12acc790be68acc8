"""Test-time frames for talkie.quality: edits of scikit-image's astronaut portrait.

Every edit is placed from landmarks detected on the unedited image, then the tests re-detect on
the edited image: that is the closed loop the measurer exists for.
"""

from __future__ import annotations

import cv2
import numpy as np

# Inner-lip contour (mediapipe indices), corner 78 -> corner 308 along the upper lip and back.
UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER = [308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78]
# Eye contours, starting at the outer corner, upper lid first.
RIGHT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
LEFT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]

CAVITY = (45, 15, 20)
TEETH = (225, 220, 210)
TONGUE = (150, 60, 70)


def _poly(pts: np.ndarray) -> list[np.ndarray]:
    return [np.round(pts * 4).astype(np.int32)]  # 2 fractional bits (shift=2)


def frame_720p(img: np.ndarray, face_height: int = 720) -> np.ndarray:
    """The portrait scaled to ``face_height`` px, centred on a blurred 1280x720 canvas."""
    a = cv2.resize(img, (face_height, face_height), interpolation=cv2.INTER_CUBIC)
    out = cv2.resize(cv2.GaussianBlur(a, (0, 0), 25), (1280, 720))
    y0, x0 = (720 - face_height) // 2, (1280 - face_height) // 2
    out[y0 : y0 + face_height, x0 : x0 + face_height] = a
    return np.ascontiguousarray(out)


def _lip_profile(p: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal weights: the lower lip drops most at the centre (0 at the corners), the jaw
    drops as a whole and fades out beyond the cheeks."""
    cx = (p[61, 0] + p[291, 0]) / 2
    half = abs(p[291, 0] - p[61, 0]) / 2
    ax = np.abs(x - cx) / half
    lip = np.sqrt(np.clip(1 - ax**2, 0, 1))
    jaw = np.clip(1.8 - ax, 0, 1)
    return lip, 0.5 - 0.5 * np.cos(np.pi * jaw)


def open_mouth(img: np.ndarray, landmarks: np.ndarray, gap_px: float) -> np.ndarray:
    """Drop the lower lip and jaw by ``gap_px`` and paint the opened mouth: dark cavity, upper
    teeth band, tongue (the CPU renderer's recipe).

    Both lips must stay visible: a dark ellipse painted over the lips hides them and FaceMesh
    reads a closed mouth. A flat dark cavity without teeth/tongue is re-detected erratically
    beyond ~0.2 inter-ocular; with them the reading follows the drawn gap up to ~0.4.
    """
    if gap_px <= 0:
        return img.copy()
    h, w = img.shape[:2]
    p = landmarks[:, :2]
    io = float(np.hypot(*(p[263] - p[33])))
    y14 = p[14, 1]
    ymid = (p[13, 1] + y14) / 2
    chin = p[152, 1] + gap_px
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lip, jaw = _lip_profile(p, xx)
    t = np.clip((yy - y14 - gap_px) / (chin - y14 - gap_px), 0, 1)
    weight = (1 - t) * lip + t * jaw
    ramp_in = np.clip((yy - ymid) / (y14 - ymid + gap_px), 0, 1)  # stretch the lip gap open
    ramp_out = np.clip(1 - (yy - chin) / (chin - ymid), 0, 1)  # fade out below the chin
    shift = (gap_px * weight * np.minimum(ramp_in, ramp_out)).astype(np.float32)
    out = cv2.remap(img, xx, yy - shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    upper = p[UPPER_INNER]
    lower = p[LOWER_INNER][1:-1].copy()
    lower[:, 1] += gap_px * _lip_profile(p, lower[:, 0])[0]
    cavity = np.zeros((h, w), np.uint8)
    cv2.fillPoly(cavity, _poly(np.vstack([upper, lower])), 255, cv2.LINE_AA, shift=2)
    teeth_h = min(0.45 * gap_px, 0.1 * io)
    layers = [
        (np.vstack([upper, lower]), CAVITY),
        (np.vstack([upper, (upper + [0, teeth_h])[::-1]]), TEETH),
        (np.vstack([lower, (lower - [0, 0.3 * gap_px])[::-1]]), TONGUE),
    ]
    for poly, colour in layers:
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, _poly(poly), 255, cv2.LINE_AA, shift=2)
        a = cv2.min(m, cavity)[..., None].astype(np.float32) / 255.0
        out = (out * (1 - a) + np.array(colour, np.float32) * a).round().astype(np.uint8)
    return out


def close_mouth(img: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Fill the inner-lip polygon (the visible teeth) with lip colour and draw the lip seam."""
    p = landmarks[:, :2]
    c = np.round((p[14] + p[17]) / 2).astype(int)  # lower-lip body
    col = img[c[1] - 1 : c[1] + 2, c[0] - 1 : c[0] + 2].reshape(-1, 3).mean(0)
    out = img.copy()
    cv2.fillPoly(
        out,
        _poly(np.vstack([p[UPPER_INNER], p[LOWER_INNER][1:-1]])),
        tuple(int(v) for v in col),
        cv2.LINE_AA,
        shift=2,
    )
    seam = (p[UPPER_INNER] + p[LOWER_INNER][::-1]) / 2
    cv2.polylines(out, _poly(seam), False, tuple(int(v * 0.55) for v in col), 1, cv2.LINE_AA, 2)
    return out


def close_eye(img: np.ndarray, landmarks: np.ndarray, which: str) -> np.ndarray:
    """Paint the character's ``which`` ('left' = image right) eye over with skin colour and a
    lash line along the lower lid: a shut eye."""
    p = landmarks[:, :2]
    idx = LEFT_EYE if which == "left" else RIGHT_EYE
    ring = p[idx]
    centre = ring.mean(0)
    ring = centre + (ring - centre) * 1.25  # cover the lid margins too
    s = np.round(centre + [0, 0.45 * np.ptp(ring[:, 0])]).astype(int)  # cheek below the eye
    skin = img[s[1] - 2 : s[1] + 3, s[0] - 2 : s[0] + 3].reshape(-1, 3).mean(0)
    out = img.copy()
    cv2.fillPoly(out, _poly(ring), tuple(int(v) for v in skin), cv2.LINE_AA, shift=2)
    lower_lid = p[idx[8:] + idx[:1]]
    cv2.polylines(
        out, _poly(lower_lid), False, tuple(int(v * 0.45) for v in skin), 2, cv2.LINE_AA, 2
    )
    return out


def rotate(img: np.ndarray, clockwise_deg: float, centre: tuple[float, float]) -> np.ndarray:
    """Rotate the image content clockwise (as seen) about ``centre``."""
    m = cv2.getRotationMatrix2D(centre, -clockwise_deg, 1.0)  # OpenCV: + = counter-clockwise
    h, w = img.shape[:2]
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
