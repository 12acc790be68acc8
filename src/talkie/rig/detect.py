"""MediaPipe wrappers: face detection, 478-point face landmarks, person segmentation.

The models ship inside the mediapipe wheel (no download). Graphs are created once per process and
guarded by a lock: MediaPipe's solution objects are not safe to call from several threads at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
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
_warmed: set[str] = set()


@contextlib.contextmanager
def _quiet_native_logs(name: str) -> Iterator[None]:
    """Silence stderr at the file-descriptor level while a graph is created and first runs.

    MediaPipe's C++ code logs a dozen harmless warnings then (XNNPACK, feedback tensors,
    NORM_RECT) that no environment variable turns off; they would bury the CLI's own messages.
    Later calls are left alone, so nothing of ours is ever hidden for long.
    """
    if name in _warmed:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        _warmed.add(name)


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
        if name in ("detector", "detector_near"):
            # Full-range (1) finds small, distant faces; short-range (0) large, close ones.
            _graphs[name] = solutions.face_detection.FaceDetection(
                model_selection=1 if name == "detector" else 0, min_detection_confidence=0.4
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


def detect_faces(image: np.ndarray) -> list[FaceBox]:
    """Candidate faces in an RGB image, most prominent first.

    MediaPipe's detectors want a square input with the face a sizeable part of it, so they run
    on the whole image padded to a square and on overlapping square tiles (for small faces in
    large photos and group shots); OpenCV's multi-scale Haar cascade adds candidates the neural
    detectors miss. Candidates are only candidates: the rig builder verifies each with the
    landmark model before using it.
    """
    # Work on at most ~2000 px: faces down to 2 % of the side stay >= 40 px, and a 20-megapixel
    # photo does not cost seconds of tiling.
    full_h, full_w = image.shape[:2]
    scale = min(1.0, 2000 / max(full_h, full_w))
    if scale < 1.0:
        image = cv2.resize(
            image, (round(full_w * scale), round(full_h * scale)), interpolation=cv2.INTER_AREA
        )
    h, w = image.shape[:2]
    boxes = _mediapipe_boxes(image, 0, 0, max(h, w))
    # Two tile sizes: faces down to ~2 % of the image side end up >= 25 px in some tile.
    for fraction, models in ((0.6, _BOTH), (0.3, _FAR)):
        side = int(min(min(h, w), fraction * max(h, w)))
        if side < 400 or side >= max(h, w):
            continue
        for y in _tile_starts(h, side):
            for x in _tile_starts(w, side):
                boxes += _mediapipe_boxes(image[y : y + side, x : x + side], x, y, side, models)
    boxes += _haar_boxes(image)
    boxes = _suppress_overlaps(boxes)
    if scale < 1.0:
        boxes = [
            FaceBox(b.x / scale, b.y / scale, b.w / scale, b.h / scale, b.score) for b in boxes
        ]
    boxes.sort(key=lambda b: b.prominence(full_w, full_h), reverse=True)
    return boxes


def _tile_starts(length: int, side: int) -> list[int]:
    if side >= length:
        return [0]
    count = int(np.ceil((length - side) / (side / 2))) + 1
    return [int(round(v)) for v in np.linspace(0, length - side, count)]


_BOTH = ("detector", "detector_near")
_FAR = ("detector",)


def _mediapipe_boxes(
    region: np.ndarray, x0: int, y0: int, side: int, models: tuple[str, ...] = _BOTH
) -> list[FaceBox]:
    """Both MediaPipe detectors on ``region`` padded to a ``side`` square, in image pixels."""
    h, w = region.shape[:2]
    square = np.zeros((side, side, 3), np.uint8)
    square[:h, :w] = region
    small = cv2.resize(square, (640, 640), interpolation=cv2.INTER_AREA)
    boxes: list[FaceBox] = []
    for name in models:
        with _lock, _quiet_native_logs(name):
            result = _graph(name).process(small)
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            boxes.append(
                FaceBox(
                    x0 + rel.xmin * side,
                    y0 + rel.ymin * side,
                    rel.width * side,
                    rel.height * side,
                    float(det.score[0]),
                )
            )
    return boxes


def _haar_boxes(image: np.ndarray) -> list[FaceBox]:
    h, w = image.shape[:2]
    scale = min(1.0, 1600 / max(h, w))
    gray = cv2.cvtColor(
        cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA),
        cv2.COLOR_RGB2GRAY,
    )
    with _lock:
        if "haar" not in _graphs:
            _graphs["haar"] = cv2.CascadeClassifier(_haar_path())
        found = _graphs["haar"].detectMultiScale(
            cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
        )
    # The cascade has no calibrated score; rank it below confident neural detections.
    return [FaceBox(x / scale, y / scale, bw / scale, bh / scale, 0.5) for x, y, bw, bh in found]


def _haar_path() -> str:
    from cv2 import data as cv2_data  # the cascades ship inside the OpenCV wheel

    return os.path.join(cv2_data.haarcascades, "haarcascade_frontalface_default.xml")


def _suppress_overlaps(boxes: list[FaceBox]) -> list[FaceBox]:
    """Merge boxes of the same face (overlap > 30 %), keeping the most confident."""
    kept: list[FaceBox] = []
    for box in sorted(boxes, key=lambda b: b.score, reverse=True):
        if all(_iou(box, other) < 0.3 for other in kept):
            kept.append(box)
    return kept


def _iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / (a.w * a.h + b.w * b.h - inter + 1e-9)


def face_landmarks(image: np.ndarray) -> np.ndarray | None:
    """478 landmarks (x, y, z) in pixels of ``image``; z shares x's scale, negative is nearer."""
    # The landmark model assumes a square input: on other shapes its points come back shifted
    # (several pixels on 16:9), so pad to a square and map back.
    h, w = image.shape[:2]
    side = max(h, w)
    square = np.zeros((side, side, 3), np.uint8)
    square[:h, :w] = image
    with _lock, _quiet_native_logs("mesh"):
        result = _graph("mesh").process(square)
    if not result.multi_face_landmarks:
        return None
    lms = result.multi_face_landmarks[0].landmark
    return np.array([[p.x * side, p.y * side, p.z * side] for p in lms], dtype=np.float32)


def person_mask(image: np.ndarray) -> np.ndarray:
    """Soft person mask in [0, 1] (float32, same size as the image)."""
    with _lock, _quiet_native_logs("segmenter"):
        result = _graph("segmenter").process(np.ascontiguousarray(image))
    return np.clip(result.segmentation_mask.astype(np.float32), 0.0, 1.0)
