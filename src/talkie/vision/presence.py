"""Who is in front of the camera: faces, where they are, whether they look at the screen, hands.

MediaPipe 0.10.21's bundled graphs (no download): full-range face detection on the whole frame,
then the 478-point face mesh with irises on a crop around the biggest face (the mesh misses
faces that are small in the frame), and the lite hand model. Each detector owns its graphs (one
per session): MediaPipe's graphs are not thread-safe, and sharing the rig builder's would make a
session wait behind an upload being rigged.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import numpy as np

from talkie.errors import MissingDependencyError
from talkie.messages import Presence

log = logging.getLogger(__name__)

os.environ.setdefault("GLOG_minloglevel", "2")

# Face mesh indices: eye corners (outer, inner) and iris centres, per eye; cheeks and nose tip.
_EYES = ((33, 133, 468), (362, 263, 473))
_CHEEKS = (234, 454)
_NOSE = 1
# How far (as a share of the eye's width) the iris may sit off the eye's middle, and the nose
# off the cheeks' middle, while the person still looks at the screen. Measured on frontal
# portraits (iris 0.02-0.06, nose 0.01-0.05) and on faces turned ~25 degrees (nose > 0.2).
_IRIS_TOLERANCE = 0.14
_YAW_TOLERANCE = 0.15
_MIN_FACE_PX = 60  # below this the eyes are a few pixels: "looking" is not told


def _solutions() -> Any:
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(
            "mediapipe is not installed; run `make setup` (it installs mediapipe==0.10.21)"
        ) from exc
    return mp.solutions


class PresenceDetector:
    """``detect(image, pts) -> Presence`` for RGB frames. Call from one thread at a time."""

    def __init__(self, *, hands: bool = True) -> None:
        solutions = _solutions()
        self._lock = threading.Lock()
        self._faces = solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=0.5
        )
        self._mesh = solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=1,
            min_detection_confidence=0.3,
        )  # fmt: skip
        self._hands = (
            solutions.hands.Hands(
                static_image_mode=True, max_num_hands=2, model_complexity=0,
                min_detection_confidence=0.5,
            )  # fmt: skip
            if hands
            else None
        )

    def close(self) -> None:
        for graph in (self._faces, self._mesh, self._hands):
            if graph is not None:
                graph.close()

    def detect(self, image: np.ndarray, pts: float = 0.0) -> Presence:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("presence detection needs an RGB uint8 image")
        h, w = image.shape[:2]
        with self._lock:
            found = self._faces.process(image).detections or []
            boxes = [_box(d, w, h) for d in found]
            boxes = [b for b in boxes if b[2] > 4 and b[3] > 4]
            if not boxes:
                return Presence(pts=pts)
            x, y, bw, bh = max(boxes, key=lambda b: b[2] * b[3])
            looking = self._looking(image, (x, y, bw, bh)) if bw >= _MIN_FACE_PX else None
            raised = self._hand_raised(image, chin=(y + bh) / h) if self._hands else False
        return Presence(
            pts=pts, faces=len(boxes), x=round((x + bw / 2) / w, 4), y=round((y + bh / 2) / h, 4),
            size=round(bw / w, 4), looking=looking, hand_raised=raised,
        )  # fmt: skip

    def _looking(self, image: np.ndarray, box: tuple[float, float, float, float]) -> bool | None:
        """Eyes and head towards the camera (which sits by the screen: near enough)."""
        h, w = image.shape[:2]
        x, y, bw, bh = box
        pad = 0.5 * max(bw, bh)
        x0, y0 = int(max(0, x - pad)), int(max(0, y - pad))
        x1, y1 = int(min(w, x + bw + pad)), int(min(h, y + bh + pad))
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        marks = result.multi_face_landmarks[0].landmark
        pt = np.array([(m.x * crop.shape[1], m.y * crop.shape[0]) for m in marks])
        off = []
        for outer, inner, iris in _EYES:
            width = np.linalg.norm(pt[inner] - pt[outer])
            if width < 1e-3:
                return None
            middle = (pt[inner] + pt[outer]) / 2
            off.append(float(np.dot(pt[iris] - middle, pt[inner] - pt[outer]) / width**2))
        left, right = pt[_CHEEKS[0]], pt[_CHEEKS[1]]
        span = float(np.linalg.norm(right - left))
        yaw = float(np.dot(pt[_NOSE] - (left + right) / 2, right - left) / max(span, 1e-3) ** 2)
        return bool(max(abs(o) for o in off) < _IRIS_TOLERANCE and abs(yaw) < _YAW_TOLERANCE)

    def _hand_raised(self, image: np.ndarray, *, chin: float) -> bool:
        """A hand whose wrist is above the chin: people raise a hand to ask for the word."""
        assert self._hands is not None
        result = self._hands.process(image)
        return any(hand.landmark[0].y < chin for hand in result.multi_hand_landmarks or [])


def _box(detection: Any, w: int, h: int) -> tuple[float, float, float, float]:
    rel = detection.location_data.relative_bounding_box
    x, y = max(0.0, rel.xmin * w), max(0.0, rel.ymin * h)
    bw = min(w - x, rel.width * w)
    bh = min(h - y, rel.height * h)
    return (x, y, bw, bh)
