"""``python -m talkie.quality``: time FaceMeasurer.measure on a 1280x720 frame and print ms.

The frame is scikit-image's astronaut portrait framed 16:9 (needs scikit-image, a dev extra).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from talkie.errors import MissingDependencyError
from talkie.quality.face import Box, FaceMeasurer


def sample_frame(face_height: int = 720) -> np.ndarray:
    """astronaut() scaled to ``face_height`` px square, centred on a blurred 1280x720 canvas."""
    import cv2

    try:
        from skimage import data
    except ImportError as exc:
        raise MissingDependencyError(
            "the benchmark frame needs scikit-image (pip install -e .[dev])"
        ) from exc
    a = cv2.resize(data.astronaut(), (face_height, face_height), interpolation=cv2.INTER_CUBIC)
    frame = cv2.resize(cv2.GaussianBlur(a, (0, 0), 25), (1280, 720))
    y0, x0 = (720 - face_height) // 2, (1280 - face_height) // 2
    frame[y0 : y0 + face_height, x0 : x0 + face_height] = a
    return np.ascontiguousarray(frame)


def _time(fm: FaceMeasurer, frame: np.ndarray, roi: Box | None, n: int) -> list[float]:
    fm.measure(frame, roi)  # warm-up
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fm.measure(frame, roi)
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=100, help="timed calls per case")
    args = ap.parse_args()
    for size in (720, 400):
        frame = sample_frame(size)
        with FaceMeasurer() as fm:
            m = fm.measure(frame)
            if m is None:
                print(f"face {size}px: not found")
                continue
            cases: list[tuple[str, Box | None]] = [
                ("full frame (detect + crop)", None),
                ("face roi (tracked crop)", fm.track_roi(m)),
            ]
            for name, roi in cases:
                ms = np.array(_time(fm, frame, roi, args.n))
                print(
                    f"1280x720, portrait {size}px (inter-ocular {m.interocular_px:.0f}px), {name}: "
                    f"median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms"
                )


if __name__ == "__main__":
    main()
