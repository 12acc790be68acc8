"""Paint the inside of the mouth into the opened lips.

Back to front: a dark cavity (darkest under the upper teeth and out in the corners), the tongue
(jaw-borne; its tip rises to the teeth for l, n, t, d and shows between them for th), the lower
teeth (jaw-borne, set so their edges show above the lower lip as the jaw drops wide), the upper
teeth and gums (fixed to the skull: they stay with the head while the jaw moves, and the gums
show only when the upper lip lifts above them), then the lips' own shade where they meet the
teeth. Teeth and gums are drawn once per character (``talkie.render.dental``); colours, softness
and grain come from the photo (``talkie.render.palette``). A photo that shows its teeth keeps
them: they ride with the skull, and only what the photo does not show is drawn.

Nothing is painted while the lips are as open as in the photo, so the face at rest is exactly the
photographed face; lips pressed tighter than in the photo close over a lip-coloured seam.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkie.messages import FaceParams
from talkie.render import dental
from talkie.render.deform import FaceDeformer
from talkie.render.framing import Stage
from talkie.render.palette import PhotoLook, measure_look
from talkie.rig.model import RigMesh

_AA_SHIFT = 2  # quarter-pixel polygon edges
TEETH_VISIBLE_GAP = 0.025  # rest gap (in face heights) above which the photo shows its teeth
UPPER_EDGE_BELOW_LIP_MM = 2.0  # the upper teeth's edge under a relaxed, closed upper lip
LOWER_TEETH_FOLLOW = 0.82  # share of the jaw's travel at the lower lip the lower teeth make
TONGUE_FOLLOW = 0.8
MAX_WORK_PIXELS = 60_000  # bigger mouths are composed at a lower resolution, then upsampled
_SUBDIVIDE = 4


class MouthPainter:
    """``teeth``: "drawn" (a row of teeth drawn from the photo's own colours) or "donor" (real
    teeth from scikit-image's astronaut, fitted and coloured to the mouth) where the photo shows
    none of its own."""

    def __init__(
        self, *, mesh: RigMesh, stage: Stage, rest: np.ndarray, deformer: FaceDeformer,
        teeth: str = "drawn",
    ) -> None:  # fmt: skip
        self.upper = mesh.region("inner_lip_upper")
        self.lower = mesh.region("inner_lip_lower")
        self.deformer = deformer
        face = deformer.frame
        self.face_height = face.face_height
        self.rest = rest
        self.rest_gap = self._gap(rest)
        self.fade = max(1.5, 0.02 * face.face_height)  # opening over which the interior fades in
        n = len(self.upper)
        self.mid = n // 2
        self.anchors = np.array([self.upper[0], self.upper[-1], self.upper[self.mid]])
        self._spline = _catmull_rom_matrix(n, _SUBDIVIDE)

        centre = (rest[self.upper[self.mid]] + rest[self.lower[self.mid]]) / 2
        self.axes = dental.MouthAxes(
            face.u.astype(np.float64), face.v.astype(np.float64), centre.astype(np.float64),
            max(0.05, face.mouth_width / dental.MOUTH_WIDTH_MM),
        )  # fmt: skip
        open_mouth = self.rest_gap > TEETH_VISIBLE_GAP * face.face_height
        self.look: PhotoLook = measure_look(
            stage.canvas, mesh, rest, stage.scale, open_mouth=open_mouth
        )
        # Our drawing is about half a pixel soft already (supersampling, bilinear warps).
        self.blur = float(np.sqrt(max(self.look.blur**2 - 0.55**2, 0.0)))
        self._build_layers(stage.canvas, mesh, open_mouth, teeth)

    # -- set-up -------------------------------------------------------------------------------

    def _build_layers(
        self, canvas: np.ndarray, mesh: RigMesh, open_mouth: bool, teeth: str
    ) -> None:
        rest, axes, mm = self.rest, self.axes, self.axes.mm
        up_u, up_v = axes.coords(rest[self.upper])
        lo_u, lo_v = axes.coords(rest[self.lower])
        found = (
            dental.photo_teeth(canvas, self._polygon(rest), axes, self.look) if open_mouth else None
        )
        self.photo = found[0] if found else None
        # Biting edges follow the lips' curve (a smile's arc), a little flattened.
        centre_up = float(np.interp(0.0, *_sorted(up_u, up_v)))
        centre_lo = float(np.interp(0.0, *_sorted(lo_u, lo_v)))
        # With teeth in the photo, the drawn ones continue them (behind them).
        edge0 = found[1] if found is not None else centre_up + UPPER_EDGE_BELOW_LIP_MM * mm
        upper_edge = edge0 + 0.6 * (up_v - centre_up)
        # The lower incisors' edges rest just behind the upper ones, hidden by the lower lip.
        lower0 = max(edge0 - dental.OVERBITE_MM * mm, centre_lo + 0.5 * mm)
        lower_edge = lower0 + 0.6 * (lo_v - centre_lo)
        self.upper_edge_centre = edge0
        self.lower_edge_centre = lower0
        self.inner_width = float(np.ptp(up_u))

        outer = np.concatenate([mesh.region("outer_lip_upper"), mesh.region("outer_lip_lower")])
        lo_xy, hi_xy = rest[outer].min(axis=0), rest[outer].max(axis=0)
        side = 0.12 * float(np.ptp(rest[outer][:, 0])) + 2
        box = (
            int(np.floor(lo_xy[0] - side)), int(np.floor(lo_xy[1] - 16 * mm - 2)),
            int(np.ceil(hi_xy[0] + side)), int(np.ceil(hi_xy[1] + 20 * mm + 2)),
        )  # fmt: skip
        self.upper_row = dental.draw_row(
            dental.UPPER, axes, box, upper_edge, up_u, upper=True, look=self.look, seed=11
        )
        self.lower_row = dental.draw_row(
            dental.LOWER, axes, box, lower_edge, lo_u, upper=False, look=self.look, seed=12
        )
        if self.photo is None and teeth == "donor":
            self.photo = dental.donor_teeth(
                axes, box, upper_edge, up_u, 0.5 * self.inner_width, self.look
            )
        # A fixed grain field around the mouth (screen-fixed, like a photo's own grain).
        pad = box[2] - box[0]
        self._noise_origin = np.array([box[0] - pad // 2, box[1] - pad // 2])
        shape = (box[3] - box[1] + pad, box[2] - box[0] + pad)
        self._noise = self.look.noise(shape) if self.look.grain.max() > 0.3 else None

    def _gap(self, verts: np.ndarray) -> float:
        """Mean distance between the inner lips over the middle of the mouth."""
        mid = slice(3, len(self.upper) - 3)
        return float(
            np.mean(np.linalg.norm(verts[self.upper[mid]] - verts[self.lower[mid]], axis=1))
        )

    def _polygon(self, verts: np.ndarray) -> np.ndarray:
        """The opening as a smooth closed curve (Catmull-Rom through the lip vertices): straight
        segments between the few lip vertices would show as corners on a big, drawn mouth."""
        up = self._spline @ verts[self.upper]
        lo = self._spline @ verts[self.lower]
        return np.concatenate([up, lo[::-1]]).astype(np.float32)

    # -- per frame ------------------------------------------------------------------------------

    def paint(self, frame: np.ndarray, verts: np.ndarray, params: FaceParams) -> None:
        """Paint the interior into ``frame`` (in place) for deformed vertices ``verts``."""
        gap = self._gap(verts)
        if gap < self.rest_gap - 0.5 and self.rest_gap > 2.0:
            self._paint_seam(frame, verts, (self.rest_gap - gap) / self.rest_gap)
            return
        strength = float(np.clip((gap - self.rest_gap) / self.fade, 0.0, 1.0))
        if strength <= 0.0:
            return
        poly = self._polygon(verts)
        roi = _roi(poly, frame.shape, margin=3)
        if roi is None:
            return
        x0, y0, x1, y1 = roi
        rw, rh = x1 - x0, y1 - y0
        step = max(1, int(np.ceil(np.sqrt(rw * rh / MAX_WORK_PIXELS))))
        ww, wh = -(-rw // step), -(-rh // step)

        skull = self.deformer.skull_affine(params, self.anchors)
        jaw = self.deformer.jaw_shift(params, int(self.lower[self.mid]))
        # Work in the mouth's rest frame: undo the head's motion for every pixel of the ROI.
        inverse = cv2.invertAffineTransform(skull)
        origin = np.array([x0, y0], np.float64)
        u, v = self._rest_grid(inverse, origin, (ww, wh), step)
        up_u, up_v = self.axes.coords(_apply(inverse, verts[self.upper]))
        lo_u, lo_v = self.axes.coords(_apply(inverse, verts[self.lower]))
        lip_top = np.interp(u, *_sorted(up_u, up_v))
        lip_bottom = np.interp(u, *_sorted(lo_u, lo_v))
        half = 0.5 * max(float(np.ptp(up_u)), 1.0)

        interior = self._cavity(u, v, lip_top, lip_bottom, half)
        tongue_shift = TONGUE_FOLLOW * jaw
        t_du, t_dv = float(tongue_shift @ self.axes.u), float(tongue_shift @ self.axes.v)
        interior = self._tongue(
            interior, u - t_du, v - t_dv, params.tongue, v_upper_edge=self.upper_edge_centre - t_dv
        )
        lower = skull.copy()
        lower[:, 2] += skull[:, :2] @ (LOWER_TEETH_FOLLOW * jaw)
        for layer, affine in ((self.lower_row, lower), (self.upper_row, skull)):
            interior = _over(interior, self._place(layer, affine, origin, (ww, wh), step))
        if self.photo is not None:
            interior = _over(interior, self._place(self.photo, skull, origin, (ww, wh), step))
        if params.tongue > 0.85:
            interior = self._tongue_between_teeth(interior, u - t_du, v, params.tongue)

        # The lips shade what is right behind them: the upper lip's shadow falls on the teeth,
        # the corners sink into the dark of the cheeks.
        mm = self.axes.mm
        below_top = _smoothstep(-0.2 * mm, 0.9 * mm, v - lip_top)
        above_bottom = _smoothstep(-0.2 * mm, 1.0 * mm, lip_bottom - v)
        corners = np.clip(1.0 - 0.7 * (u / half) ** 4, 0.12, 1.0)
        shade = (0.74 + 0.26 * below_top) * (0.8 + 0.2 * above_bottom) * corners
        interior *= shade[..., None]

        if step > 1:
            interior = cv2.resize(interior, (ww * step, wh * step), interpolation=cv2.INTER_LINEAR)
        interior = interior[:rh, :rw]
        if self.blur > 0.05:
            interior = cv2.GaussianBlur(interior, (0, 0), self.blur)
        if self._noise is not None:
            interior += self._noise_at(x0, y0, rw, rh)

        # The smooth curve and the lip vertices' own polygon (the edge of the warped lips): the
        # stretched photo inside the hole never shows as a fringe between the two.
        mask = np.zeros((rh, rw), np.uint8)
        linear = np.concatenate([verts[self.upper], verts[self.lower][::-1]])
        for outline in (poly, linear):
            cv2.fillPoly(mask, [_fixed(outline, np.array([x0, y0]))], 255, cv2.LINE_AA, _AA_SHIFT)
        if self.blur > 0.3:  # the opening's edge as soft as the photo's own edges
            mask = cv2.GaussianBlur(mask, (0, 0), 0.7 * self.blur)
        alpha = mask.astype(np.float32)[..., None] * (strength / 255.0)
        region = frame[y0:y1, x0:x1].astype(np.float32)
        out = region * (1 - alpha) + interior * alpha
        frame[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def _rest_grid(
        self, inverse: np.ndarray, origin: np.ndarray, size: tuple[int, int], step: int
    ) -> tuple[np.ndarray, np.ndarray]:
        w, h = size
        xs = origin[0] + (np.arange(w, dtype=np.float32) + 0.5) * step - 0.5
        ys = origin[1] + (np.arange(h, dtype=np.float32) + 0.5) * step - 0.5
        rx = inverse[0, 0] * xs[None, :] + inverse[0, 1] * ys[:, None] + inverse[0, 2]
        ry = inverse[1, 0] * xs[None, :] + inverse[1, 1] * ys[:, None] + inverse[1, 2]
        dx, dy = rx - self.axes.centre[0], ry - self.axes.centre[1]
        u = dx * self.axes.u[0] + dy * self.axes.u[1]
        v = dx * self.axes.v[0] + dy * self.axes.v[1]
        return u.astype(np.float32), v.astype(np.float32)

    def _place(
        self, layer: dental.Layer, affine: np.ndarray, origin: np.ndarray,
        size: tuple[int, int], step: int,
    ) -> np.ndarray:  # fmt: skip
        if step == 1:
            return layer.warp_into(affine, origin, size)
        scaled = affine / step
        return layer.warp_into(scaled, origin / step, size)

    def _cavity(
        self, u: np.ndarray, v: np.ndarray, top: np.ndarray, bottom: np.ndarray, half: float
    ) -> np.ndarray:
        """Darkest high up behind the upper teeth and out towards the cheeks; a little light
        reaches the floor of the mouth."""
        down = np.clip((v - top) / np.maximum(bottom - top, 1.0), 0.0, 1.0)
        across = np.clip(1.0 - 0.8 * (u / half) ** 2, 0.25, 1.0)
        light = (0.55 + 0.75 * down**1.5) * across
        return self.look.cavity[None, None, :] * light[..., None]

    def _tongue(
        self, interior: np.ndarray, u: np.ndarray, v: np.ndarray, raise_tip: float,
        *, v_upper_edge: float,
    ) -> np.ndarray:  # fmt: skip
        """The tongue's back, low behind the lower teeth, and its tip rising towards the upper
        teeth (``raise_tip`` 0..1; coordinates are the jaw-borne tongue's own)."""
        mm = self.axes.mm
        a = 0.42 * self.inner_width
        b = 0.45 * a
        top = self.lower_edge_centre - 3.5 * mm
        vc = top + b
        r2 = (u / a) ** 2 + ((v - vc) / b) ** 2
        body = np.clip((1.0 - r2) * a / 2.0, 0.0, 1.0)  # ~2 px soft edge
        light = 0.55 + 0.4 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
        groove = 1.0 - 0.14 * np.exp(-((u / (0.05 * a)) ** 2)) * (v > vc - b)
        colour = self.look.tongue[None, None, :] * (light * groove)[..., None] * 0.9
        out = _mix(interior, colour, body)
        lift = min(max(raise_tip, 0.0) / 0.85, 1.0)
        if lift <= 0.02:
            return out
        # The tip: a rounded column from the tongue's back up to just behind the upper teeth.
        tip_top = top + (v_upper_edge - 1.0 * mm - top) * lift
        half_w = 0.16 * self.inner_width
        cap = 0.8 * half_w
        across = np.abs(u) / half_w
        edge = np.where(
            v < tip_top + cap,
            np.sqrt(np.clip(1.0 - ((tip_top + cap - v) / cap) ** 2, 0.0, 1.0)),
            1.0,
        )
        inside = np.clip((edge - across) * half_w / 1.5, 0.0, 1.0) * (v >= tip_top) * (v <= vc)
        tip_light = (0.62 + 0.3 * np.sqrt(np.clip(1.0 - across**2, 0.0, 1.0))) * (
            0.8 + 0.2 * _smoothstep(tip_top, tip_top + 3 * cap, v)
        )
        tip = self.look.tongue[None, None, :] * np.array([1.0, 0.9, 0.92]) * tip_light[..., None]
        return _mix(out, tip, inside * lift)

    def _tongue_between_teeth(
        self, interior: np.ndarray, u: np.ndarray, v: np.ndarray, amount: float
    ) -> np.ndarray:
        """For th the tip shows in front, between the teeth, over the lower ones' edges."""
        mm = self.axes.mm
        show = float(np.clip((amount - 0.85) / 0.15, 0.0, 1.0))
        half_w = 0.18 * self.inner_width
        top = self.upper_edge_centre - 0.8 * mm
        depth = 2.6 * mm
        r2 = (u / half_w) ** 2 + ((v - top) / depth) ** 2
        inside = np.clip((1.0 - r2) * half_w / 2.0, 0.0, 1.0) * (v >= top)
        light = 0.75 + 0.25 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
        colour = self.look.tongue[None, None, :] * light[..., None]
        return _mix(interior, colour, inside * show)

    def _noise_at(self, x0: int, y0: int, w: int, h: int) -> np.ndarray:
        assert self._noise is not None
        out = np.zeros((h, w, 3), np.float32)
        nx, ny = x0 - int(self._noise_origin[0]), y0 - int(self._noise_origin[1])
        sx0, sy0 = max(0, nx), max(0, ny)
        sx1 = min(self._noise.shape[1], nx + w)
        sy1 = min(self._noise.shape[0], ny + h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - ny : sy1 - ny, sx0 - nx : sx1 - nx] = self._noise[sy0:sy1, sx0:sx1]
        return out

    def _paint_seam(self, frame: np.ndarray, verts: np.ndarray, amount: float) -> None:
        """Lips closing tighter than in the photo: the photo's open-mouth interior squeezed
        between them becomes lip, with a soft dark line where the lips meet."""
        poly = self._polygon(verts)
        roi = _roi(poly, frame.shape, margin=4)
        if roi is None:
            return
        x0, y0, x1, y1 = roi
        origin = np.array([x0, y0])
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = _fixed(poly, origin)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, _AA_SHIFT)
        # A little over the lips' edges too: the squeezed teeth must not show as a bright rim.
        rim = max(2, int(round(0.5 * self.axes.mm)))
        cv2.polylines(mask, [pts], True, 255, rim, cv2.LINE_AA, _AA_SHIFT)
        if self.blur > 0.3:
            mask = cv2.GaussianBlur(mask, (0, 0), 0.7 * self.blur)
        line = np.zeros_like(mask)
        seam = (self._spline @ ((verts[self.upper] + verts[self.lower]) / 2)).astype(np.float32)
        width = max(1, int(round(0.5 * self.axes.mm)))
        cv2.polylines(line, [_fixed(seam, origin)], False, 255, width, cv2.LINE_AA, _AA_SHIFT)
        line = cv2.GaussianBlur(line, (0, 0), max(0.6, self.blur))
        alpha = mask.astype(np.float32)[..., None] / 255.0 * float(np.clip(amount * 1.5, 0, 1))
        dark = line.astype(np.float32)[..., None] / 255.0 * 0.75
        colour = self.look.lip * (1.0 - dark) + self.look.lip * 0.35 * dark
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(region * (1 - alpha) + colour * alpha + 0.5, 0, 255).astype(
            np.uint8
        )


def _catmull_rom_matrix(n: int, k: int) -> np.ndarray:
    """(m, n) weights taking n points of an open curve to a Catmull-Rom curve through them,
    ``k`` samples per segment (end points repeated at the ends)."""
    rows: list[np.ndarray] = []
    for i in range(n - 1):
        for j in range(k):
            t = j / k
            w = np.array([
                -0.5 * t**3 + t**2 - 0.5 * t,
                1.5 * t**3 - 2.5 * t**2 + 1.0,
                -1.5 * t**3 + 2.0 * t**2 + 0.5 * t,
                0.5 * t**3 - 0.5 * t**2,
            ])  # fmt: skip
            row = np.zeros(n)
            for weight, idx in zip(w, (i - 1, i, i + 1, i + 2), strict=True):
                row[min(max(idx, 0), n - 1)] += weight
            rows.append(row)
    last = np.zeros(n)
    last[-1] = 1.0
    rows.append(last)
    return np.array(rows, np.float32)


def _sorted(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(u)
    return u[order], v[order]


def _apply(affine: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts @ affine[:, :2].T + affine[:, 2])


def _fixed(pts: np.ndarray, origin: np.ndarray) -> np.ndarray:
    return np.round((pts - origin) * (1 << _AA_SHIFT)).astype(np.int32)


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


def _over(base: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """A premultiplied RGBA ``layer`` over ``base``."""
    return base * (1.0 - layer[..., 3:4]) + layer[..., :3]


def _mix(base: np.ndarray, colour: np.ndarray, amount: np.ndarray) -> np.ndarray:
    a = np.asarray(amount, np.float32)[..., None]
    return base * (1.0 - a) + colour * a


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return np.asarray(t * t * (3 - 2 * t))
