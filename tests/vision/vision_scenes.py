"""Generated camera scenes: empty rooms, and a rendered person placed in one."""

from __future__ import annotations

import numpy as np


def empty_room(size: tuple[int, int] = (640, 480), seed: int = 0) -> np.ndarray:
    """A wall with some furniture-like blocks: no one in it."""
    rng = np.random.default_rng(seed)
    w, h = size
    image = np.full((h, w, 3), 180, np.uint8)
    image[:] = (np.linspace(150, 210, w)[None, :, None]).astype(np.uint8)
    for _ in range(5):
        x, y = int(rng.integers(0, w - 80)), int(rng.integers(0, h - 80))
        bw, bh = int(rng.integers(30, 160)), int(rng.integers(30, 120))
        image[y : y + bh, x : x + bw] = rng.integers(40, 220, 3)
    return image


def placed(face: np.ndarray, *, left: bool, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """``face`` (a rendered portrait) scaled down into one side of an empty room."""
    import cv2

    w, h = size
    room = empty_room(size)
    small = cv2.resize(face, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    x = 20 if left else w // 2 - 20
    room[h // 4 : h // 4 + h // 2, x : x + w // 2] = small
    return room
