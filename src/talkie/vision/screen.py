"""Reading the user's shared screen: OCR when the picture changes, the text cached.

PP-OCR (detection + recognition ONNX models shipped inside ``rapidocr``, Apache-2.0) takes
1.5-2 s of one core per 720p frame, so it runs only when the screen has changed and then held
still (a scrolling page is read once it stops), on one thread, and its result is kept until
the next change. A change is judged on a 256x144 grey thumbnail (pixels that moved by more
than coding noise would): cheap enough for every sampled frame.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import cv2
import numpy as np

from talkie.errors import MissingDependencyError
from talkie.messages import ScreenText

log = logging.getLogger(__name__)

_THUMB = (256, 144)  # each thumbnail pixel averages a 5x5 block of a 720p screen
# A new picture: at least this many thumbnail pixels changed by more than _STEP grey levels.
# One changed word of 16 px text is ~30 such pixels; video coding noise moves a few by 2-6.
_STEP = 20.0
_CHANGED_PIXELS = 12
_MIN_SCORE = 0.5  # recognitions less sure than this are noise (icons, textures)
_MAX_SIDE = 1920  # bigger screens are read at this size (text stays legible, time bounded)


def _engine() -> Any:
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(
            "rapidocr is not installed; run `make setup` (it installs rapidocr==3.10.0)"
        ) from exc
    return RapidOCR(
        params={
            "Global.use_cls": False,  # screens are upright; the angle model only costs time
            "Global.log_level": "warning",
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )


def thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, _THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


def changed(a: np.ndarray | None, b: np.ndarray) -> bool:
    return a is None or int(np.count_nonzero(np.abs(a - b) > _STEP)) >= _CHANGED_PIXELS


class ScreenReader:
    """``read(image, pts)`` -> the screen's text; OCR runs only when the picture changed since
    the last reading (else the cached reading is returned). Call from one thread at a time."""

    def __init__(self) -> None:
        self._engine = _engine()
        self._lock = threading.Lock()
        self._read_thumb: np.ndarray | None = None
        self._cached: ScreenText | None = None
        self.readings = 0  # OCR runs (a measure of what change detection saves)

    @property
    def cached(self) -> ScreenText | None:
        return self._cached

    def needs_reading(self, image: np.ndarray) -> bool:
        """The picture differs from the one last read."""
        return changed(self._read_thumb, thumbnail(image))

    def read(self, image: np.ndarray, pts: float = 0.0) -> ScreenText:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("screen reading needs an RGB uint8 image")
        with self._lock:
            thumb = thumbnail(image)
            if self._cached is not None and not changed(self._read_thumb, thumb):
                return self._cached
            started = time.perf_counter()
            lines = read_lines(self._engine, image)
            self.readings += 1
            self._read_thumb = thumb
            self._cached = ScreenText(
                pts=pts, lines=lines, ocr_ms=round((time.perf_counter() - started) * 1000, 1)
            )
            return self._cached


def read_lines(engine: Any, image: np.ndarray) -> tuple[str, ...]:
    """The text boxes joined into lines (boxes side by side on one row are one line), top to
    bottom, left to right."""
    h, w = image.shape[:2]
    scale = min(1.0, _MAX_SIDE / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (round(w * scale), round(h * scale)), cv2.INTER_AREA)
    result = engine(np.ascontiguousarray(image[:, :, ::-1]))  # the engine wants BGR
    if result.boxes is None or result.txts is None:
        return ()
    items = []
    for box, text, score in zip(result.boxes, result.txts, result.scores, strict=False):
        text = str(text).strip()
        if not any(c.isalnum() for c in text) or float(score) < _MIN_SCORE:
            # window buttons, bullets and icons come out as lone symbols
            continue
        ys = [float(p[1]) for p in box]
        items.append((min(ys), max(ys), min(float(p[0]) for p in box), text))
    items.sort()
    rows: list[list[tuple[float, float, float, str]]] = []
    for item in items:
        top, bottom = item[0], item[1]
        row = rows[-1] if rows else None
        if row is not None:
            r_top = sum(i[0] for i in row) / len(row)
            r_bottom = sum(i[1] for i in row) / len(row)
            overlap = min(bottom, r_bottom) - max(top, r_top)
            if overlap > 0.5 * min(bottom - top, r_bottom - r_top):
                row.append(item)
                continue
        rows.append([item])
    return tuple(" ".join(i[3] for i in sorted(row, key=lambda i: i[2])) for row in rows)
