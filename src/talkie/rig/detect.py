"""MediaPipe wrappers: face detection, 478-point face landmarks, person segmentation.

The models ship inside the mediapipe wheel (no download). Graphs are created once per process and
guarded by a lock: MediaPipe's solution objects are not safe to call from several threads at once.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from talkie.errors import MissingDependencyError

log = logging.getLogger(__name__)

# MediaPipe logs through absl/glog to stderr; keep a CLI's output readable.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_lock = threading.Lock()
_graphs: dict[str, Any] = {}


def _solutions() -> Any:
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(
            "mediapipe is not installed; run `make setup` (it installs mediapipe==0.10.21 "
            "with --no-deps)"
        ) from exc
    return mp.solutions


def _graph(name: str) -> Any:
    if name not in _graphs:
        solutions = _solutions()
        if name == "detector":
            # Full-range model: finds faces down to a few percent of the image width.
            _graphs[name] = solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=0.5
            )
        elif name == "mesh":
            _graphs[name] = solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                refine_landmarks=True,
                max_num_faces=1,
                min_detection_confidence=0.3,
            )
        elif name == "segmenter":
            _graphs[name] = solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        else:  # pragma: no cover - programming error
            raise KeyError(name)
    return _graphs[name]


@dataclass(frozen=True)
class FaceBox:
    """A detected face: box in image pixels (x, y, w, h) and detector confidence."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def prominence(self, image_w: int, image_h: int) -> float:
        """Bigger, more confident and more central faces win (the person the photo is about)."""
        cx, cy = self.centre
        off_centre = np.hypot((cx - image_w / 2) / image_w, (cy - image_h / 2) / image_h)
        return float(self.w * self.h * self.score * (1.0 - 0.6 * off_centre))


def detect_faces(image: np.ndarray, *, max_side: int = 1280) -> list[FaceBox]:
    """All faces in an RGB image, most prominent first."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    with _lock:
        result = _graph("detector").process(small)
    boxes: list[FaceBox] = []
    for det in result.detections or []:
        rel = det.location_data.relative_bounding_box
        boxes.append(
            FaceBox(rel.xmin * w, rel.ymin * h, rel.width * w, rel.height * h, float(det.score[0]))
        )
    boxes.sort(key=lambda b: b.prominence(w, h), reverse=True)
    return boxes


def face_landmarks(image: np.ndarray) -> np.ndarray | None:
    """478 landmarks (x, y, z) in pixels of ``image``; z shares x's scale, negative is nearer."""
    # The landmark model assumes a square input: on other shapes its points come back shifted
    # (several pixels on 16:9), so pad to a square and map back.
    h, w = image.shape[:2]
    side = max(h, w)
    square = np.zeros((side, side, 3), np.uint8)
    square[:h, :w] = image
    with _lock:
        result = _graph("mesh").process(square)
    if not result.multi_face_landmarks:
        return None
    lms = result.multi_face_landmarks[0].landmark
    return np.array([[p.x * side, p.y * side, p.z * side] for p in lms], dtype=np.float32)


def person_mask(image: np.ndarray) -> np.ndarray:
    """Soft person mask in [0, 1] (float32, same size as the image)."""
    with _lock:
        result = _graph("segmenter").process(np.ascontiguousarray(image))
    return np.clip(result.segmentation_mask.astype(np.float32), 0.0, 1.0)
