"""Teeth and gums, drawn once per character as layers that ride with the skull and the jaw.

A row of teeth is laid out on a dental arch (a circle seen from the front, so the teeth towards
the corners are foreshortened and set back into shadow) with real proportions: central and
lateral incisors, canines, premolars, a molar, each with its own width, crown length, edge shape
and a hair of colour variation; thin gaps between them, a convex shine across each tooth, a
darker neck where it meets the gum, a translucent biting edge, and scalloped gums above (which
only show when the lip lifts). Sizes are in millimetres, scaled by the width of the mouth, so a
cartoon's huge grin gets big teeth and a photo's small mouth small ones.

Layers are premultiplied RGBA in rest output pixels, supersampled for clean edges; the mouth
painter moves them each frame with one affine warp (upper row: the head; lower row: the jaw).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from talkie.render.palette import PhotoLook

SUPERSAMPLE = 3
MOUTH_WIDTH_MM = 52.0  # corner to corner, for the millimetre scale
OVERBITE_MM = 0.7  # the lower incisors' edges sit this far above the upper ones, behind them
GUM_BAND_MM = 7.0
PAPILLA_MM = 2.2  # how far the gum reaches down between two teeth


@dataclass(frozen=True)
class ToothRow:
    """One half of a row, from the middle outwards (millimetres)."""

    arch_radius: float
    widths: tuple[float, ...]
    crowns: tuple[float, ...]  # visible crown length
    edge_rise: tuple[float, ...]  # how much higher (shorter) the edge is than the centrals'
    corner_round: tuple[float, ...]  # how far the biting edge rounds off towards the sides
    flat: tuple[float, ...]  # the straight share of the biting edge (0: a pointed canine)
    shade: float  # overall light: the lower row sits in the upper row's shadow


UPPER = ToothRow(
    arch_radius=26.0,
    widths=(8.6, 6.6, 7.6, 7.0, 6.6, 10.0),
    # Seen from the front, upper crowns lean outwards and look about a fifth shorter than they
    # are: a full smile shows a hair of gum, as most people's does.
    crowns=(8.4, 7.2, 8.0, 6.8, 6.0, 5.6),
    edge_rise=(0.0, 0.7, 0.1, 0.6, 1.0, 1.4),
    corner_round=(0.7, 1.1, 2.2, 1.3, 1.3, 1.0),
    flat=(0.6, 0.45, 0.0, 0.3, 0.35, 0.5),
    shade=1.0,
)
LOWER = ToothRow(
    arch_radius=22.0,
    widths=(5.3, 5.9, 6.9, 7.1, 7.1, 11.0),
    crowns=(9.0, 9.5, 10.5, 8.0, 7.5, 7.0),
    edge_rise=(0.0, 0.1, -0.3, 0.7, 1.0, 1.3),
    corner_round=(0.5, 0.6, 1.8, 1.2, 1.2, 1.0),
    flat=(0.7, 0.6, 0.0, 0.3, 0.3, 0.5),
    shade=0.8,
)


@dataclass(frozen=True, eq=False)
class Layer:
    """Premultiplied RGB + alpha (float32, H x W x 4) whose pixel (0, 0) is at ``origin`` (rest
    output pixels)."""

    rgba: np.ndarray
    origin: np.ndarray

    def warp_into(
        self, affine: np.ndarray, roi_origin: np.ndarray, size: tuple[int, int]
    ) -> np.ndarray:
        """The layer moved by ``affine`` (rest -> frame pixels), cut to a ROI of ``size``
        (w, h) whose top-left frame pixel is ``roi_origin``."""
        m = affine.astype(np.float64).copy()
        # layer pixel p -> rest (p + origin) -> frame affine(...) -> ROI (... - roi_origin)
        m[:, 2] = m[:, :2] @ self.origin + m[:, 2] - roi_origin
        return cv2.warpAffine(
            self.rgba, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )


@dataclass(frozen=True, eq=False)
class MouthAxes:
    """The mouth's frame at rest: ``u`` along the mouth (character's right to left), ``v`` down,
    ``centre`` the middle of the mouth in output pixels, ``mm`` output pixels per millimetre."""

    u: np.ndarray
    v: np.ndarray
    centre: np.ndarray
    mm: float

    def coords(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rel = xy - self.centre
        return rel @ self.u, rel @ self.v

    def grid(
        self, x0: float, y0: float, w: int, h: int, step: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mouth coordinates (pixels along u and v) of the centres of a pixel grid."""
        xs = x0 + (np.arange(w, dtype=np.float32) + 0.5) * step - 0.5
        ys = y0 + (np.arange(h, dtype=np.float32) + 0.5) * step - 0.5
        dx = xs[None, :] - self.centre[0]
        dy = ys[:, None] - self.centre[1]
        return dx * self.u[0] + dy * self.u[1], dx * self.v[0] + dy * self.v[1]


def draw_row(
    row: ToothRow,
    axes: MouthAxes,
    box: tuple[int, int, int, int],
    edge_v: np.ndarray,
    edge_u: np.ndarray,
    *,
    upper: bool,
    look: PhotoLook,
    seed: int,
) -> Layer:
    """A row of teeth (and its gums) in the rest box (x0, y0, x1, y1). ``edge_v`` at ``edge_u``
    (pixels along the mouth's axes) is the biting edge of the centrals, following the lip."""
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) * SUPERSAMPLE, (y1 - y0) * SUPERSAMPLE
    u, v = axes.grid(x0, y0, w, h, step=1.0 / SUPERSAMPLE)
    mm = axes.mm
    order = np.argsort(edge_u)
    edge = np.interp(u, edge_u[order], edge_v[order]).astype(np.float32)
    # Millimetres from the biting edge towards the root (up for the upper row, down for the lower).
    depth_mm = ((edge - v) if upper else (v - edge)) / mm

    widths = np.array(row.widths, np.float32)
    starts = np.concatenate([[0.0], np.cumsum(widths)[:-1]]).astype(np.float32)
    radius = row.arch_radius
    across = np.clip(np.abs(u) / (radius * mm), 0.0, 0.999)
    arc = radius * np.arcsin(across)  # millimetres along the arch from the middle
    tooth = np.clip(np.searchsorted(starts, arc, side="right") - 1, 0, len(widths) - 1)
    on_arch = (arc < starts[-1] + widths[-1]) & (np.abs(u) < 0.999 * radius * mm)
    xc = 2.0 * (arc - starts[tooth]) / widths[tooth] - 1.0  # -1..1 across the tooth

    table = {name: np.array(getattr(row, name), np.float32)[tooth] for name in
             ("crowns", "edge_rise", "corner_round", "flat")}  # fmt: skip
    d = depth_mm - table["edge_rise"]
    side = np.clip((np.abs(xc) - table["flat"]) / np.maximum(1.0 - table["flat"], 1e-3), 0, 1)
    edge_curve = table["corner_round"] * side**2
    gum_line = table["crowns"] - PAPILLA_MM * xc**2
    # Neighbours touch: the rounded corners leave a dark notch at the biting edge, and a hair
    # of a gap shows only there (contact points close it further up).
    gap = 0.12 / (0.5 * widths[tooth]) * (1.0 - _smoothstep(0.0, 2.5, d))
    is_tooth = on_arch & (d >= edge_curve) & (d <= gum_line) & (np.abs(xc) <= 1.0 - gap)
    is_gum = (
        (d > gum_line) & (d <= table["crowns"] + GUM_BAND_MM) & (np.abs(u) < 0.999 * radius * mm)
    )

    # Light: a convex shine across each tooth, darker towards the gum, set back (darker) towards
    # the corners of the arch, a little variation per tooth; a translucent biting edge.
    rng = np.random.default_rng(seed)
    jitter = 1.0 + rng.uniform(-0.045, 0.045, size=(2, len(widths))).astype(np.float32)
    side_of_mouth = (u > 0).astype(np.int64)
    back = radius * (1.0 - np.cos(arc / radius))  # mm behind the front teeth
    t = np.clip(d / np.maximum(table["crowns"], 1e-3), 0.0, 1.0)
    light = 0.88 + 0.12 * np.sqrt(np.clip(1.0 - xc**2, 0.0, 1.0))
    light = light * (1.0 - 0.35 * np.exp(-((((1.0 - np.abs(xc)) * widths[tooth]) / 0.45) ** 2)))
    light = light * (1.0 - 0.14 * _smoothstep(0.55, 1.0, t)) * jitter[side_of_mouth, tooth]
    light = light * (1.0 - 0.5 * np.clip(back / 9.0, 0.0, 1.0) ** 1.5) * row.shade
    colour = look.teeth[None, None, :] * light[..., None]
    # Necks are a little yellower, biting edges a little greyer and bluer (enamel over the dark).
    neck = _smoothstep(0.6, 1.0, t)[..., None] * np.array([0.0, -6.0, -16.0], np.float32)
    translucent = (0.35 * (1.0 - _smoothstep(0.0, 0.18, t)))[..., None]
    edge_colour = look.teeth * 0.62 + np.array([-8.0, -2.0, 10.0], np.float32)
    colour = (colour + neck) * (1.0 - translucent) + edge_colour * translucent
    gum_light = 0.78 + 0.22 * (1.0 - _smoothstep(0.0, GUM_BAND_MM, d - gum_line))
    gum = look.gum[None, None, :] * gum_light[..., None] * row.shade
    rgb = np.where(is_tooth[..., None], colour, np.where(is_gum[..., None], gum, 0.0))
    alpha = (is_tooth | is_gum).astype(np.float32)
    rgba = np.dstack([rgb * alpha[..., None], alpha]).astype(np.float32)
    small = cv2.resize(rgba, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return Layer(small, np.array([x0, y0], np.float64))


def photo_teeth(
    canvas: np.ndarray, polygon: np.ndarray, axes: MouthAxes, look: PhotoLook
) -> tuple[Layer, float] | None:
    """The photo's own upper teeth (for a photo that shows them): the mouth opening above the
    lowest tooth-white pixel of each column, cut with a soft lower edge; and where that edge is
    in the middle of the mouth (``v`` of the mouth's axes)."""
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 2
    x0, y0 = max(0, x0), max(0, y0)
    patch = canvas[y0:y1, x0:x1].astype(np.float32)
    if patch.shape[0] < 3 or patch.shape[1] < 3:
        return None
    mask = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round((polygon - [x0, y0]) * 4).astype(np.int32)], 255, cv2.LINE_AA, 2)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))  # keep the lip edge out of the patch
    luma = patch @ np.array([0.3, 0.59, 0.11], np.float32)
    white = (luma > 0.62 * float(look.teeth @ np.array([0.3, 0.59, 0.11]))) & (mask > 128)
    if white.sum() < 6:
        return None
    rows = np.arange(patch.shape[0])[:, None]
    lowest = np.where(white, rows, -1).max(axis=0).astype(np.float32)
    cols = np.flatnonzero(lowest >= 0)
    # Columns without teeth (the dark corners) take the neighbours' edge, smoothed.
    lowest = np.interp(np.arange(patch.shape[1]), cols, lowest[cols])
    lowest = cv2.GaussianBlur(lowest[None, :].astype(np.float32), (0, 0), 1.5)[0]
    keep = np.clip(lowest[None, :] + 1.0 - rows, 0.0, 1.0)
    alpha = mask.astype(np.float32) / 255.0 * keep
    rgba = np.dstack([patch * alpha[..., None], alpha]).astype(np.float32)
    middle_x = float(axes.centre[0]) - x0
    column = int(np.clip(round(middle_x), 0, len(lowest) - 1))
    _, edge_v = axes.coords(np.array([x0 + middle_x, y0 + lowest[column] + 0.5]))
    return Layer(rgba, np.array([x0, y0], np.float64)), float(edge_v)


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return np.asarray(t * t * (3 - 2 * t))


# -- a donor's teeth -------------------------------------------------------------------------

_DONOR_GRID = (240, 72)  # samples across the mouth, and down from under the lip to the edge
_DONOR_DEPTH_MM = (-9.0, 0.6)  # from above the biting edge (negative) to just below it


@dataclass(frozen=True, eq=False)
class _Donor:
    texture: np.ndarray  # (H, W, 4) RGBA, rows from _DONOR_DEPTH_MM[0] to [1], cols u -1..1
    white: np.ndarray  # the donor's tooth white


@lru_cache(maxsize=1)
def _donor() -> _Donor | None:
    """Real upper teeth, from scikit-image's astronaut (public domain, ships with the package),
    resampled in her mouth's own frame: across the mouth (-1..1 of half its opening) and in
    millimetres above her teeth's biting edge."""
    from skimage import data

    from talkie.render.palette import measure_look
    from talkie.rig import build_rig

    rig = build_rig(data.astronaut())
    image = rig.image
    pts = rig.mesh.vertices[:, :2].astype(np.float64)
    upper, lower = rig.mesh.region("inner_lip_upper"), rig.mesh.region("inner_lip_lower")
    u = pts[263] - pts[33]
    u /= np.linalg.norm(u)
    v = np.array([-u[1], u[0]])
    centre = (pts[upper[len(upper) // 2]] + pts[lower[len(lower) // 2]]) / 2
    axes = MouthAxes(u, v, centre, float(np.linalg.norm(pts[61] - pts[291])) / MOUTH_WIDTH_MM)
    polygon = np.concatenate([pts[upper], pts[lower][::-1]]).astype(np.float32)
    look = measure_look(image, rig.mesh, pts.astype(np.float32), 1.0, open_mouth=True)
    found = photo_teeth(image, polygon, axes, look)
    if found is None:
        return None
    layer, edge_v = found
    half = 0.5 * float(np.ptp(axes.coords(pts[upper])[0]))
    cols, rows = _DONOR_GRID
    un = np.linspace(-1.0, 1.0, cols, dtype=np.float32)[None, :]
    depth = np.linspace(*_DONOR_DEPTH_MM, rows, dtype=np.float32)[:, None]
    du, dv = un * half, edge_v + depth * axes.mm
    x = centre[0] + du * u[0] + dv * v[0] - layer.origin[0]
    y = centre[1] + du * u[1] + dv * v[1] - layer.origin[1]
    texture = cv2.remap(layer.rgba, x.astype(np.float32), y.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT)  # fmt: skip
    return _Donor(texture, look.teeth.astype(np.float32))


def donor_teeth(
    axes: MouthAxes, box: tuple[int, int, int, int], edge_v: np.ndarray, edge_u: np.ndarray,
    half_opening: float, look: PhotoLook,
) -> Layer | None:  # fmt: skip
    """The donor's real upper teeth fitted to this mouth (stretched across its opening, set on
    its biting edge at the donor's size in millimetres) and coloured like this photo's white."""
    donor = _donor()
    if donor is None:
        return None
    x0, y0, x1, y1 = box
    u, v = axes.grid(x0, y0, x1 - x0, y1 - y0)
    order = np.argsort(edge_u)
    edge = np.interp(u, edge_u[order], edge_v[order])
    cols, rows = _DONOR_GRID
    lo, hi = _DONOR_DEPTH_MM
    map_x = (u / max(half_opening, 1.0) + 1.0) * 0.5 * (cols - 1)
    map_y = ((v - edge) / axes.mm - lo) / (hi - lo) * (rows - 1)
    rgba = cv2.remap(donor.texture, map_x.astype(np.float32), map_y.astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)  # fmt: skip
    gain = look.teeth / np.maximum(donor.white, 1.0)
    rgba[..., :3] = np.minimum(rgba[..., :3] * gain, 255.0 * rgba[..., 3:4])
    return Layer(rgba.astype(np.float32), np.array([x0, y0], np.float64))
