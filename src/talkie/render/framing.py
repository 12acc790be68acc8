"""Frame the character in the output: a window of the working image around the face, scaled to
the output size, padded (never stretched) with a blurred extension where the photo ends."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkie.rig.model import CharacterRig

HEAD_ROOM = 3.0  # window height in face heights: head, hair and shoulders
FACE_CENTRE_FROM_TOP = 0.42  # where the face centre sits in the window, from the top
MAX_UPSCALE = 2.0  # a tiny face is shown smaller rather than blurrier


@dataclass(frozen=True, eq=False)
class Stage:
    """The rig's images resampled into the output frame, plus the transform that did it."""

    canvas: np.ndarray  # RGB uint8, output size: the character as photographed
    plate: np.ndarray  # RGB uint8: background with the person filled in
    alpha: np.ndarray  # uint8 person matte
    scale: float  # output pixels per working-image pixel
    offset: np.ndarray  # output = working * scale + offset

    def to_output(self, points: np.ndarray) -> np.ndarray:
        """Working-image (x, y, z) points -> output pixels (z scaled alike)."""
        out = points.astype(np.float32) * self.scale
        out[:, :2] += self.offset
        return out


def frame_rig(rig: CharacterRig, size: tuple[int, int]) -> Stage:
    out_w, out_h = size
    img_h, img_w = rig.image.shape[:2]
    pts = rig.face.points[:, :2]
    face_h = float(np.ptp(pts[:, 1]))
    centre = pts.mean(axis=0)

    # Head and shoulders when the photo has them; a close-up stays a close-up (no vertical pad).
    window_h = min(max(HEAD_ROOM * face_h, out_h / MAX_UPSCALE), img_h)
    window_w = window_h * out_w / out_h
    x0 = _place(centre[0] - window_w / 2, window_w, img_w)
    y0 = _place(centre[1] - FACE_CENTRE_FROM_TOP * window_h, window_h, img_h)
    scale = out_h / window_h
    offset = np.array([-x0 * scale, -y0 * scale], np.float32)
    matrix = np.array([[scale, 0, offset[0]], [0, scale, offset[1]]], np.float32)

    canvas = _warp_padded(rig.image, matrix, size)
    plate = _warp_padded(rig.plate, matrix, size)
    alpha = cv2.warpAffine(
        rig.alpha, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return Stage(canvas, plate, alpha, scale, offset)


def _place(start: float, length: float, limit: int) -> float:
    """Slide a window inside the image when it fits; centre the padding when it does not."""
    if length <= limit:
        return float(min(max(start, 0.0), limit - length))
    return float(start)


def _warp_padded(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    sharp = cv2.warpAffine(
        image, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101
    )
    inside = cv2.warpAffine(
        np.full(image.shape[:2], 255, np.uint8),
        matrix,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
    )
    if inside.min() == 255:
        return sharp
    # Outside the photo: a mirrored, heavily blurred extension that reads as out-of-focus
    # surroundings, joined to the photo with a soft seam.
    sigma = max(size) / 60
    blurred = cv2.GaussianBlur(sharp, (0, 0), sigma)
    weight = cv2.GaussianBlur(inside.astype(np.float32) / 255.0, (0, 0), sigma / 4)
    weight = np.minimum(weight, inside.astype(np.float32) / 255.0)[..., None]
    out = sharp.astype(np.float32) * weight + blurred.astype(np.float32) * (1 - weight)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
