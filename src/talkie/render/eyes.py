"""Closed eyelids: skin over the eye and a lash line where the lids meet.

Warping alone stretches the narrow strip above the eye (lashes, crease shadow) over the eyeball,
which reads as a dark, half-open eye. While the eye closes, this paints the lid with skin colour
taken from the photo's own lid and brow area, keeping a little of the warped texture, and draws
the lash line along the upper lid. Frames with open eyes cost nothing.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkie.render.framing import Stage
from talkie.rig.model import RigMesh

_SHIFT = 2
START = 0.35  # blink amount where the lid paint starts to fade in


class EyelidPainter:
    def __init__(self, *, mesh: RigMesh, stage: Stage, rest: np.ndarray) -> None:
        self.sides = []
        for side in ("right", "left"):
            upper = mesh.region(f"{side}_eye_upper")
            lower = mesh.region(f"{side}_eye_lower")
            fold = mesh.region(f"{side}_lid_fold")
            brow = mesh.region(f"{side}_brow")
            skin = self._lid_colour(stage.canvas, rest, fold, brow)
            eye_w = float(np.linalg.norm(rest[upper[-1]] - rest[upper[0]]))
            self.sides.append((upper, lower, fold, skin, eye_w))
        self.blur = max(0.6, 0.4 * stage.scale)

    @staticmethod
    def _lid_colour(
        canvas: np.ndarray, rest: np.ndarray, fold: np.ndarray, brow: np.ndarray
    ) -> np.ndarray:
        """Median colour between the lid fold and the brow (lid skin, away from the lashes)."""
        top = rest[brow[:5]]
        region = np.concatenate([rest[fold], top[::-1]])
        mask = np.zeros(canvas.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(region).astype(np.int32)], 255)
        pixels = canvas[mask > 0].astype(np.float32)
        if len(pixels) < 8:
            return np.array([200.0, 160.0, 140.0], np.float32)
        return np.median(pixels, axis=0)

    def paint(self, frame: np.ndarray, verts: np.ndarray, blinks: tuple[float, float]) -> None:
        for (upper, lower, fold, skin, eye_w), blink in zip(self.sides, blinks, strict=True):
            amount = float(np.clip((blink - START) / (1.0 - START), 0.0, 1.0))
            if amount <= 0.0:
                continue
            self._paint_one(frame, verts, upper, lower, fold, skin, eye_w, amount)

    def _paint_one(
        self,
        frame: np.ndarray,
        verts: np.ndarray,
        upper: np.ndarray,
        lower: np.ndarray,
        fold: np.ndarray,
        skin: np.ndarray,
        eye_w: float,
        amount: float,
    ) -> None:
        # The lid covers from just below the fold down to the (moving) upper lid edge, and the
        # eye opening that is left between the lids.
        lid_edge = verts[upper]
        top = verts[fold] * 0.5 + lid_edge * 0.5
        lid = np.concatenate([top, lid_edge[::-1]])
        opening = np.concatenate([lid_edge, verts[lower][::-1]])
        pts = np.concatenate([lid, opening])
        h, w = frame.shape[:2]
        x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) - 3, 0)
        x1, y1 = np.minimum(np.ceil(pts.max(axis=0)).astype(int) + 4, [w, h])
        if x1 - x0 < 3 or y1 - y0 < 3:
            return
        origin = np.array([x0, y0], np.float32)

        def fixed(p: np.ndarray) -> np.ndarray:
            return np.round((p - origin) * (1 << _SHIFT)).astype(np.int32)

        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [fixed(lid), fixed(opening)], 255, cv2.LINE_AA, _SHIFT)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.35 * eye_w / 10 + 0.6)
        lashes = np.zeros_like(mask)
        thickness = max(1, int(round(eye_w / 18)))
        cv2.polylines(lashes, [fixed(lid_edge)], False, 255, thickness, cv2.LINE_AA, _SHIFT)
        lashes = cv2.GaussianBlur(lashes, (0, 0), self.blur)

        region = frame[y0:y1, x0:x1].astype(np.float32)
        # Keep a fifth of the warped texture so the lid is not a flat sticker.
        lid_colour = 0.8 * skin + 0.2 * region
        a = (mask.astype(np.float32) / 255.0 * amount)[..., None]
        out = region * (1 - a) + lid_colour * a
        la = (lashes.astype(np.float32) / 255.0 * amount * 0.75)[..., None]
        out = out * (1 - la) + (skin * 0.3) * la
        frame[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
