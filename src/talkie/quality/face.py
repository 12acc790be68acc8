"""Re-detect a face on rendered frames and measure mouth, eyes and head roll.

This is the closed loop: benchmarks and tests judge what the renderer actually drew by running
mediapipe FaceMesh on the output frames, never by trusting the parameters that were asked for.

Geometry is measured in pixels and normalised by the inter-ocular distance (outer eye corners
33-263), which does not change when the jaw opens (face height 10-152 does).

Why the frame is always cropped to a square before FaceMesh: mediapipe's legacy solution maps
landmarks through a normalised rect that is only correct for square inputs. On a 1280x720 frame
the landmarks come back shifted vertically by ~8 px and the inner-lip gap is under-measured by
~2.5x. So a full frame goes: full-range face detection -> square crop -> FaceMesh.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from talkie.errors import MissingDependencyError

log = logging.getLogger(__name__)

# --- landmark indices (mediapipe FaceMesh, 468 + 10 iris points) -----------------------------
#: Inner-lip pairs (upper, lower): centre 13/14 and one neighbour on each side.
INNER_LIP_PAIRS: tuple[tuple[int, int], ...] = ((13, 14), (82, 87), (312, 317))
#: Mouth corners (outer).
MOUTH_CORNERS: tuple[int, int] = (61, 291)
#: Outer eye corners: image-left eye (the character's right) and image-right eye.
OUTER_EYE_CORNERS: tuple[int, int] = (33, 263)
#: Character's right eye (image left): lids (upper, lower) and corners (outer, inner).
RIGHT_EYE_LIDS: tuple[int, int] = (159, 145)
RIGHT_EYE_CORNERS: tuple[int, int] = (33, 133)
#: Character's left eye (image right): lids (upper, lower) and corners (inner, outer).
LEFT_EYE_LIDS: tuple[int, int] = (386, 374)
LEFT_EYE_CORNERS: tuple[int, int] = (362, 263)
#: Forehead top and chin, for the (jaw-dependent) face height.
FOREHEAD, CHIN = 10, 152

#: Keys of the tracks returned by ``FaceMeasurer.measure_many``.
TRACK_KEYS: tuple[str, ...] = (
    "aperture",
    "mouth_width",
    "eye_open_left",
    "eye_open_right",
    "roll_deg",
    "interocular_px",
)

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


@dataclass(frozen=True)
class FaceMeasure:
    """What was re-detected on one frame. Ratios are relative to the inter-ocular distance.

    ``landmarks`` is a (478, 3) float array in full-frame pixels (x right, y down; z is
    mediapipe's relative depth in the same pixel scale as x, smaller = nearer the camera).
    """

    aperture: float  # inner-lip gap / inter-ocular; closed lips re-detect as ~0.05, wide ~0.3+
    mouth_width: float  # corner-to-corner / inter-ocular
    eye_open_left: float  # character's left eye: lid gap / eye width (~0.37 open, <0.1 shut)
    eye_open_right: float  # character's right eye
    roll_deg: float  # eye-line angle; + = head tilted clockwise in the image (FaceParams.head_roll)
    interocular_px: float
    landmarks: np.ndarray

    @property
    def box(self) -> Box:
        """Tight bounding box of all landmarks, (x, y, w, h) in pixels."""
        return landmark_box(self.landmarks)

    def as_dict(self) -> dict[str, float]:
        """The scalar measurements keyed like ``TRACK_KEYS``."""
        return {k: float(getattr(self, k)) for k in TRACK_KEYS}


def landmark_box(landmarks: np.ndarray, pad: float = 0.0) -> Box:
    """Bounding box (x, y, w, h) of landmark points, grown by ``pad`` x size on every side."""
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    px, py = (x1 - x0) * pad, (y1 - y0) * pad
    x0, y0, x1, y1 = x0 - px, y0 - py, x1 + px, y1 + py
    ix, iy = math.floor(x0), math.floor(y0)
    return (int(ix), int(iy), int(math.ceil(x1 - ix)), int(math.ceil(y1 - iy)))


def measure_landmarks(landmarks: np.ndarray) -> FaceMeasure:
    """Compute the scalar measurements from a (478, 2|3) landmark array in pixels."""
    lm = np.asarray(landmarks, dtype=np.float64)
    p = lm[:, :2]

    def dist(i: int, j: int) -> float:
        return float(np.hypot(*(p[i] - p[j])))

    io = dist(*OUTER_EYE_CORNERS)
    if io <= 1e-6:
        raise ValueError("degenerate landmarks: eye corners coincide")
    gap = float(np.mean([dist(u, lo) for u, lo in INNER_LIP_PAIRS]))
    right_w = dist(*RIGHT_EYE_CORNERS)
    left_w = dist(*LEFT_EYE_CORNERS)
    dx, dy = p[OUTER_EYE_CORNERS[1]] - p[OUTER_EYE_CORNERS[0]]
    return FaceMeasure(
        aperture=gap / io,
        mouth_width=dist(*MOUTH_CORNERS) / io,
        eye_open_left=dist(*LEFT_EYE_LIDS) / left_w if left_w > 1e-6 else math.nan,
        eye_open_right=dist(*RIGHT_EYE_LIDS) / right_w if right_w > 1e-6 else math.nan,
        # y points down, so a positive angle is a clockwise tilt as seen in the image.
        roll_deg=math.degrees(math.atan2(dy, dx)),
        interocular_px=io,
        landmarks=lm,
    )


def square_around(box: tuple[float, float, float, float], scale: float = 1.0) -> Box:
    """Square (x, y, side, side) centred on ``box``; side = scale x max(w, h). May overhang."""
    x, y, w, h = box
    side = max(8, int(round(max(w, h) * scale)))
    cx, cy = x + w / 2.0, y + h / 2.0
    return (int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side, side)


def _crop_padded(frame: np.ndarray, box: Box) -> np.ndarray:
    """Crop ``box`` from ``frame``; parts outside the frame are black. Always C-contiguous."""
    x, y, w, h = box
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(fw, x + w), min(fh, y + h)
    if x0 >= x1 or y0 >= y1:
        raise ValueError(f"roi {box} does not overlap the {fw}x{fh} frame")
    inner = frame[y0:y1, x0:x1]
    if (x0, y0, x1, y1) == (x, y, x + w, y + h):
        return np.ascontiguousarray(inner)
    out = np.zeros((h, w, 3), dtype=frame.dtype)
    out[y0 - y : y1 - y, x0 - x : x1 - x] = inner
    return out


class FaceMeasurer:
    """Re-detects one face per frame with mediapipe and measures it.

    One instance owns one FaceMesh graph (static_image_mode, refine_landmarks, one face) and, made
    on first need, one full-range face detector. Not thread-safe: use one per thread. Use as a
    context manager, or call ``close()``.

    Options: ``crop_scale`` is the side of the square crop fed to FaceMesh relative to the face
    detector's box (FaceMesh is accurate for 1.5-3x); ``track_scale`` is the same relative to the
    landmark box of the previous frame when ``measure_many`` tracks.
    """

    def __init__(
        self,
        *,
        min_detection_confidence: float = 0.5,
        crop_scale: float = 2.0,
        track_scale: float = 1.7,
    ) -> None:
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingDependencyError(
                "talkie.quality needs mediapipe==0.10.21 (pip install --no-deps mediapipe==0.10.21)"
            ) from exc
        self._mp: Any = mp
        self._conf = float(min_detection_confidence)
        self.crop_scale = float(crop_scale)
        self.track_scale = float(track_scale)
        self._mesh: Any = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            refine_landmarks=True,
            max_num_faces=1,
            min_detection_confidence=self._conf,
        )
        self._detector: Any = None

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the mediapipe graphs. Idempotent."""
        for g in (self._mesh, self._detector):
            if g is not None:
                g.close()
        self._mesh = None
        self._detector = None

    def __enter__(self) -> FaceMeasurer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- detection ----------------------------------------------------------------------------
    def detect(self, frame: np.ndarray) -> Box | None:
        """Full-range face detection: the best face box (x, y, w, h) in pixels, or None.

        When the whole frame finds nothing and it is not square, square tiles of side
        min(h, w) are tried too: the detector letterboxes to a square, so a small face in a
        16:9 frame gets ~1.8x more detector pixels in a tile.
        """
        frame = _check_frame(frame)
        if self._detector is None:
            self._detector = self._mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self._conf
            )
        frame = np.ascontiguousarray(frame)  # mediapipe needs a packed buffer
        fh, fw = frame.shape[:2]
        best = self._detect_in(frame, 0, 0)
        if best is None and fw != fh:
            side = min(fw, fh)
            n = int(math.ceil(max(fw, fh) / side)) + 1  # overlapping tiles, ends included
            starts = np.linspace(0, max(fw, fh) - side, n).round().astype(int)
            for s in starts:
                tile = frame[:, s : s + side] if fw > fh else frame[s : s + side, :]
                ox, oy = (int(s), 0) if fw > fh else (0, int(s))
                cand = self._detect_in(np.ascontiguousarray(tile), ox, oy)
                if cand is not None and (best is None or cand[0] > best[0]):
                    best = cand
        return None if best is None else best[1]

    def _detect_in(self, img: np.ndarray, ox: int, oy: int) -> tuple[float, Box] | None:
        res = self._detector.process(img)
        if not res.detections:
            return None
        h, w = img.shape[:2]
        det = max(res.detections, key=lambda d: d.score[0])
        b = det.location_data.relative_bounding_box
        box = (
            int(round(b.xmin * w)) + ox,
            int(round(b.ymin * h)) + oy,
            int(round(b.width * w)),
            int(round(b.height * h)),
        )
        return float(det.score[0]), box

    def landmarks(self, frame: np.ndarray, roi: Box | None = None) -> np.ndarray | None:
        """(478, 3) landmarks in full-frame pixels, or None when no face is found.

        ``roi`` (x, y, w, h) skips face detection: it is grown to a square around its centre
        (black outside the frame) and FaceMesh runs on that crop only.
        """
        frame = _check_frame(frame)
        if self._mesh is None:
            raise RuntimeError("FaceMeasurer is closed")
        if roi is None:
            det = self.detect(frame)
            if det is None:
                return None
            square = square_around(det, self.crop_scale)
        else:
            rx, ry, rw, rh = roi
            square = square_around((float(rx), float(ry), float(rw), float(rh)), 1.0)
        crop = _crop_padded(frame, square)
        res = self._mesh.process(crop)
        if not res.multi_face_landmarks:
            return None
        side = square[2]
        pts = np.array(
            [(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark], dtype=np.float64
        )
        pts *= side  # square crop: one scale for x, y and z
        pts[:, 0] += square[0]
        pts[:, 1] += square[1]
        return pts

    # -- measuring ----------------------------------------------------------------------------
    def measure(self, frame: np.ndarray, roi: Box | None = None) -> FaceMeasure | None:
        """Measure the face in an RGB uint8 frame (H, W, 3); None when no face is found.

        Without ``roi`` the face is found by full-range detection first (~2.5 ms extra); pass
        ``roi`` (x, y, w, h), e.g. ``previous.box`` grown a little, to skip that.
        """
        lm = self.landmarks(frame, roi)
        return None if lm is None else measure_landmarks(lm)

    def track_roi(self, m: FaceMeasure) -> Box:
        """The square crop to use on the next frame, from this frame's landmarks."""
        return square_around(m.box, self.track_scale)

    def measure_many(
        self, frames: Iterable[np.ndarray], *, roi: Box | None = None, track: bool = True
    ) -> dict[str, np.ndarray]:
        """Measure a sequence of frames into float tracks keyed by ``TRACK_KEYS``.

        Frames without a face give NaN. With ``roi`` every frame uses that crop. With ``track``
        (default) the crop follows the face: it is re-centred only when the face drifts by more
        than 10% of the crop or changes size by more than 10%, so a still face is measured through
        an identical crop (steadier numbers); a miss falls back to full detection.
        The result also has ``found`` (bool) and ``landmarks`` (N, 478, 3; NaN where missing).
        """
        rows: list[FaceMeasure | None] = []
        cur: Box | None = roi
        for frame in frames:
            m = self.measure(frame, cur)
            if m is None and roi is None and cur is not None:
                m = self.measure(frame, None)  # lost the face: search the whole frame again
            rows.append(m)
            if roi is None and track:
                cur = None if m is None else _maybe_move(cur, self.track_roi(m))
        return tracks_from(rows)


def tracks_from(rows: list[FaceMeasure | None]) -> dict[str, np.ndarray]:
    """Stack per-frame measurements into tracks (NaN where a frame had no face)."""
    n = len(rows)
    out: dict[str, np.ndarray] = {k: np.full(n, np.nan) for k in TRACK_KEYS}
    out["found"] = np.zeros(n, dtype=bool)
    lms = np.full((n, 478, 3), np.nan)
    for i, m in enumerate(rows):
        if m is None:
            continue
        for k in TRACK_KEYS:
            out[k][i] = getattr(m, k)
        out["found"][i] = True
        k_pts = min(478, m.landmarks.shape[0])
        lms[i, :k_pts, : m.landmarks.shape[1]] = m.landmarks[:k_pts]
    out["landmarks"] = lms
    return out


def _maybe_move(cur: Box | None, new: Box) -> Box:
    """Keep the current crop unless ``new`` is clearly elsewhere or a different size."""
    if cur is None:
        return new
    cx, cy, cs = cur[0] + cur[2] / 2, cur[1] + cur[3] / 2, cur[2]
    nx, ny, ns = new[0] + new[2] / 2, new[1] + new[3] / 2, new[2]
    if abs(nx - cx) > 0.1 * cs or abs(ny - cy) > 0.1 * cs or abs(ns - cs) > 0.1 * cs:
        return new
    return cur


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame (H, W, 3), got {getattr(frame, 'shape', None)}")
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 frame, got {frame.dtype}")
    return frame
