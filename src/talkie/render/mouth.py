"""Paint the inside of the mouth into the opened lips: dark cavity, tongue, lower and upper teeth.

Colours come from the photo itself (lips, skin, and the teeth if the photo shows them), so the
interior matches the picture's lighting; when the photo shows teeth, those very teeth are reused,
riding with the upper lip as the jaw drops. Nothing is painted while the lips are as open as in
the photo, so the face at rest is exactly the photographed face.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from talkie.render.framing import Stage
from talkie.rig.model import RigMesh

_AA_SHIFT = 2  # quarter-pixel polygon edges
TEETH_VISIBLE_GAP = 0.025  # rest gap (in face heights) above which the photo shows its teeth


class MouthPainter:
    def __init__(
        self, *, mesh: RigMesh, stage: Stage, rest: np.ndarray, face_height: float
    ) -> None:
        self.upper = mesh.region("inner_lip_upper")
        self.lower = mesh.region("inner_lip_lower")
        self.face_height = face_height
        self.rest = rest
        self.rest_gap = self._gap(rest)
        self.fade = max(1.5, 0.02 * face_height)  # opening over which the interior fades in
        # Match the photo's softness: an upscaled photo is blurrier than crisp synthetic edges.
        self.blur = max(0.5, 0.45 * stage.scale)
        self._colours(stage, mesh, rest)
        self._teeth_patch = self._photo_teeth(stage.canvas, rest)

    def _gap(self, verts: np.ndarray) -> float:
        """Mean distance between the inner lips over the middle of the mouth."""
        mid = slice(3, len(self.upper) - 3)
        return float(
            np.mean(np.linalg.norm(verts[self.upper[mid]] - verts[self.lower[mid]], axis=1))
        )

    def _inner_polygon(self, verts: np.ndarray) -> np.ndarray:
        return np.concatenate([verts[self.upper], verts[self.lower][::-1]])

    def _colours(self, stage: Stage, mesh: RigMesh, rest: np.ndarray) -> None:
        canvas = stage.canvas
        lips = np.zeros(canvas.shape[:2], np.uint8)
        outer = np.concatenate(
            [mesh.region("outer_lip_upper"), mesh.region("outer_lip_lower")[::-1]]
        )
        cv2.fillPoly(lips, [rest[outer].astype(np.int32)], 255)
        cv2.fillPoly(lips, [self._inner_polygon(rest).astype(np.int32)], 0)
        pixels = canvas[lips > 0].astype(np.float32)
        lip = np.median(pixels, axis=0) if len(pixels) >= 8 else np.array([150.0, 80.0, 80.0])
        light = float(np.clip(lip.mean() / 120.0, 0.55, 1.1))
        self.lip = lip
        self.teeth = np.array([236.0, 230.0, 218.0]) * min(0.95, 0.4 + 0.5 * light)
        self.cavity = lip * 0.28 + np.array([8.0, 2.0, 2.0])
        self.tongue = lip * 0.7 + np.array([14.0, 0.0, 4.0])
        self.seam = lip * 0.55

    def _photo_teeth(
        self, canvas: np.ndarray, rest: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The photo's own mouth interior (patch, mask, top-left) when it shows teeth."""
        if self.rest_gap <= TEETH_VISIBLE_GAP * self.face_height:
            return None
        poly = self._inner_polygon(rest)
        x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 2
        patch = canvas[y0:y1, x0:x1].astype(np.float32)
        mask = np.zeros(patch.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 4).astype(np.int32)], 255, cv2.LINE_AA, 2)
        mask = cv2.erode(mask, np.ones((2, 2), np.uint8))  # keep the lip edge out of the patch
        return patch, mask.astype(np.float32) / 255.0, np.array([x0, y0], np.float32)

    def paint(self, frame: np.ndarray, verts: np.ndarray) -> None:
        """Paint the interior into ``frame`` (in place) for deformed vertices ``verts``."""
        gap = self._gap(verts)
        if gap < self.rest_gap - 0.5 and self.rest_gap > 2.0:
            self._paint_seam(frame, verts, (self.rest_gap - gap) / self.rest_gap)
            return
        strength = float(np.clip((gap - self.rest_gap) / self.fade, 0.0, 1.0))
        if strength <= 0.0:
            return
        up, lo = verts[self.upper], verts[self.lower]
        poly = np.concatenate([up, lo[::-1]])
        roi = _roi(poly, frame.shape, margin=3)
        if roi is None:
            return
        x0, y0, x1, y1 = roi
        origin = np.array([x0, y0], np.float32)
        rw, rh = x1 - x0, y1 - y0

        def fixed(p: np.ndarray) -> np.ndarray:
            return np.round((p - origin) * (1 << _AA_SHIFT)).astype(np.int32)

        mask = np.zeros((rh, rw), np.uint8)
        cv2.fillPoly(mask, [fixed(poly)], 255, cv2.LINE_AA, _AA_SHIFT)

        # Shading shared by every layer: light falls off towards the mouth corners (the cheeks
        # shade them) and into the depth under the upper lip.
        up_mid = up[len(up) // 2] - origin
        mouth_w = float(np.linalg.norm(up[-1] - up[0]))
        xx = (np.arange(rw, dtype=np.float32) - up_mid[0]) / max(1.0, 0.5 * mouth_w)
        side_light = np.clip(1.0 - 0.55 * xx**2, 0.25, 1.0)[None, :, None]
        yy = (np.arange(rh, dtype=np.float32) / max(1, rh - 1))[:, None, None]
        interior = np.empty((rh, rw, 3), np.float32)
        interior[:] = self.cavity * (0.7 + 0.45 * yy) * side_light

        n = len(up)
        fh = self.face_height
        # Teeth show across the front of the mouth only, fading out well before the corners.
        profile = np.clip(np.sin(np.linspace(0.0, np.pi, n)) * 1.6 - 0.35, 0.0, 1.0)

        # Tongue: a soft mound low in the mouth, set back in shadow (a bright tongue against the
        # lower lip reads as the lip itself).
        lo_mid = lo[n // 2] - origin
        axes = (max(1, int(0.26 * mouth_w)), max(1, int(0.22 * gap)))
        tongue = np.zeros((rh, rw), np.uint8)
        centre = (int(lo_mid[0]), int(lo_mid[1] + 0.05 * gap))
        cv2.ellipse(tongue, centre, axes, 0, 180, 360, 255, -1, cv2.LINE_AA)
        interior = _over(interior, self.tongue * (0.55 + 0.25 * yy) * side_light, tongue)

        # Lower teeth: the tips of the front ones, in the lower lip's shadow, on wide openings.
        low_h = np.clip(0.25 * (gap - 0.07 * fh), 0.0, 0.012 * fh) * profile**2
        if self._teeth_patch is None and low_h.max() > 0.75:
            lower_teeth = (self.teeth * 0.6 + self.cavity * 0.4) * side_light
            interior = _over(interior, lower_teeth, self._band(lo, -low_h, fixed, (rh, rw)))

        if self._teeth_patch is not None:
            interior = self._paste_photo_teeth(interior, verts, origin)
        else:
            top_h = np.minimum(0.03 * fh, 0.45 * gap) * profile
            band = self._band(up, top_h, fixed, (rh, rw))
            # Darker right under the lip (its shadow), lighter towards the biting edge.
            below_lip = np.clip(
                (np.arange(rh, dtype=np.float32) + y0 - up[:, 1].min())
                / max(1.0, float(top_h.max())),
                0,
                1,
            )
            teeth = self.teeth * (0.72 + 0.28 * below_lip[:, None, None]) * side_light
            interior = _over(interior, teeth, band)
            gaps = np.zeros((rh, rw), np.uint8)
            for k in (-1.5, -0.5, 0.5, 1.5):
                x = int(round(up_mid[0] + k * 0.085 * mouth_w))
                y = int(round(up_mid[1]))
                cv2.line(gaps, (x, y), (x, y + int(0.8 * float(top_h.max()))), 255, 1, cv2.LINE_AA)
            gap_lines = np.minimum(gaps, band).astype(np.float32)[..., None] / 255.0
            interior = interior * (1 - 0.15 * gap_lines)

        interior = cv2.GaussianBlur(interior, (0, 0), self.blur)
        alpha = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[..., None] * (strength / 255.0)
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(region * (1 - alpha) + interior * alpha + 0.5, 0, 255).astype(
            np.uint8
        )

    def _band(
        self,
        contour: np.ndarray,
        heights: np.ndarray,
        fixed: Callable[[np.ndarray], np.ndarray],
        shape: tuple[int, int],
    ) -> np.ndarray:
        """Mask of the strip between a lip contour and the same contour moved by ``heights``."""
        edge = contour + np.outer(heights, [0.0, 1.0]).astype(np.float32)
        band = np.zeros(shape, np.uint8)
        cv2.fillPoly(
            band, [fixed(np.concatenate([contour, edge[::-1]]))], 255, cv2.LINE_AA, _AA_SHIFT
        )
        return band

    def _paste_photo_teeth(
        self, interior: np.ndarray, verts: np.ndarray, origin: np.ndarray
    ) -> np.ndarray:
        assert self._teeth_patch is not None
        patch, mask, top_left = self._teeth_patch
        # The upper teeth belong to the skull: they follow the upper lip, never stretch.
        mid = len(self.upper) // 2
        shift = verts[self.upper[mid]] - self.rest[self.upper[mid]]
        tx, ty = top_left + shift - origin
        matrix = np.array([[1, 0, tx], [0, 1, ty]], np.float32)
        size = (interior.shape[1], interior.shape[0])
        moved = cv2.warpAffine(patch, matrix, size, flags=cv2.INTER_LINEAR)
        moved_mask = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_LINEAR)[..., None]
        return interior * (1 - moved_mask) + moved * moved_mask

    def _paint_seam(self, frame: np.ndarray, verts: np.ndarray, amount: float) -> None:
        """Lips closing tighter than in the photo: squeeze out the photo's open-mouth interior
        into a dark lip seam instead of a compressed strip of teeth."""
        poly = self._inner_polygon(verts)
        roi = _roi(poly, frame.shape, margin=2)
        if roi is None:
            return
        x0, y0, x1, y1 = roi
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = np.round((poly - [x0, y0]) * (1 << _AA_SHIFT)).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, _AA_SHIFT)
        cv2.polylines(mask, [pts], True, 255, 1, cv2.LINE_AA, _AA_SHIFT)
        alpha = mask.astype(np.float32)[..., None] / 255.0 * float(np.clip(amount * 1.5, 0, 1))
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(
            region * (1 - alpha) + self.seam * alpha + 0.5, 0, 255
        ).astype(np.uint8)


def _roi(
    poly: np.ndarray, shape: tuple[int, ...], *, margin: int
) -> tuple[int, int, int, int] | None:
    h, w = shape[:2]
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + margin + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def _over(base: np.ndarray, colour: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``colour`` over ``base`` where the uint8 ``mask`` is set (anti-aliased edges blend)."""
    m = (mask.astype(np.float32) / 255.0)[..., None]
    return base * (1 - m) + colour * m
