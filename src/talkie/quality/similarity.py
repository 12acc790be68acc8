"""Likeness: SSIM between two images over the face region.

Design's "likeness" = a neutral output frame against the source image in the face region. The
source and the output rarely share a frame geometry, so ``align_face`` first maps the source onto
the output with a similarity transform fitted on rigid landmarks (eyes and nose, never the mouth
or jaw), then ``face_ssim`` compares the two over the face box of the output.
"""

from __future__ import annotations

import numpy as np

from talkie.quality.face import Box, FaceMeasure, landmark_box

#: Landmarks that do not move with speech or blinks: eye corners and the nose ridge/tip.
RIGID_LANDMARKS: tuple[int, ...] = (33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1)


def face_box(
    landmarks_or_box: np.ndarray | FaceMeasure | Box | tuple[float, float, float, float],
    shape: tuple[int, ...],
    pad: float = 0.1,
) -> Box:
    """Face box (x, y, w, h) clipped to an image of ``shape``.

    Landmarks (an (N, 2|3) array or a ``FaceMeasure``) give their bounding box grown by ``pad``
    x size on every side; an explicit (x, y, w, h) box is used as given.
    """
    if isinstance(landmarks_or_box, FaceMeasure):
        x, y, w, h = landmark_box(landmarks_or_box.landmarks, pad)
    elif isinstance(landmarks_or_box, np.ndarray) and landmarks_or_box.ndim == 2:
        x, y, w, h = landmark_box(landmarks_or_box, pad)
    else:
        bx, by, bw, bh = (float(v) for v in landmarks_or_box)
        x, y, w, h = int(round(bx)), int(round(by)), int(round(bw)), int(round(bh))
    ih, iw = shape[:2]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(iw, x + w), min(ih, y + h)
    if x1 - x0 < 7 or y1 - y0 < 7:
        raise ValueError(f"face box {(x, y, w, h)} is smaller than 7x7 inside a {iw}x{ih} image")
    return (x0, y0, x1 - x0, y1 - y0)


def face_ssim(
    a: np.ndarray,
    b: np.ndarray,
    landmarks_or_box: np.ndarray | FaceMeasure | Box | tuple[float, float, float, float],
    *,
    pad: float = 0.1,
    color: bool = False,
) -> float:
    """SSIM of ``a`` vs ``b`` (same shape, RGB or gray) inside the face box.

    ``landmarks_or_box``: landmarks detected on ``b`` (array or ``FaceMeasure``; their box is
    padded by ``pad`` = 10% per side) or an explicit (x, y, w, h) box. ``color=False`` compares
    luma (ITU-R 601, what SSIM was designed for); ``color=True`` averages SSIM over RGB channels.
    uint8 images use data range 255; float images must be in [0, 1].
    """
    from skimage.metrics import structural_similarity

    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape} (align first: align_face)")
    x, y, w, h = face_box(landmarks_or_box, b.shape, pad)
    ca = _as_float(a[y : y + h, x : x + w])
    cb = _as_float(b[y : y + h, x : x + w])
    if ca.ndim == 3 and not color:
        ca, cb = _luma(ca), _luma(cb)
    channel_axis = -1 if ca.ndim == 3 else None
    return float(structural_similarity(ca, cb, data_range=1.0, channel_axis=channel_axis))


def align_face(
    src: np.ndarray,
    src_landmarks: np.ndarray,
    dst_landmarks: np.ndarray,
    dst_shape: tuple[int, ...],
) -> np.ndarray:
    """Warp ``src`` so that its rigid face landmarks land on ``dst_landmarks``.

    A similarity transform (rotation, uniform scale, translation) is fitted on
    ``RIGID_LANDMARKS``; the result has ``dst_shape[:2]`` and can go straight into ``face_ssim``.
    """
    import cv2

    idx = list(RIGID_LANDMARKS)
    s = np.asarray(src_landmarks, dtype=np.float32)[idx, :2]
    d = np.asarray(dst_landmarks, dtype=np.float32)[idx, :2]
    m, _ = cv2.estimateAffinePartial2D(s, d, method=cv2.LMEDS)
    if m is None:
        raise ValueError("could not fit a similarity transform between the two faces")
    h, w = dst_shape[:2]
    return np.asarray(
        cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    )


def _as_float(img: np.ndarray) -> np.ndarray:
    if np.issubdtype(img.dtype, np.integer):
        return img.astype(np.float64) / float(np.iinfo(img.dtype).max)
    return img.astype(np.float64)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114)
