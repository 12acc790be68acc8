"""What the photo looks like around the mouth: its colours, light, sharpness and grain.

Everything the renderer paints itself (mouth interior, eyelids) is coloured, softened and
grained from these measurements, so synthetic pixels sit in the picture like photographed ones:
teeth are as white as the photo's own eye whites (or its brightest skin, for a drawing without
them), the gums and tongue take the lips' hue, and the edges are as soft and as noisy as the
photo's own edges at the output scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkie.rig.model import RigMesh

_DEFAULT_LIP = np.array([150.0, 80.0, 80.0], np.float32)
_DEFAULT_SKIN = np.array([210.0, 170.0, 150.0], np.float32)


@dataclass(frozen=True, eq=False)
class PhotoLook:
    """Colours (RGB float32, 0..255) and image qualities, in output pixels."""

    lip: np.ndarray
    skin: np.ndarray
    teeth: np.ndarray
    gum: np.ndarray
    tongue: np.ndarray
    cavity: np.ndarray
    blur: float  # Gaussian sigma of the photo's edges at the output size
    grain: np.ndarray  # noise standard deviation per channel
    grain_size: float  # output pixels per grain (the photo's pixels are upscaled)
    teeth_from: str  # "eyes", "photo teeth" or "skin": what set the teeth's white

    def noise(self, shape: tuple[int, int], seed: int = 7) -> np.ndarray:
        """A fixed grain field of ``shape`` (h, w, 3), zero-mean, with the photo's strength."""
        h, w = shape
        size = max(1.0, self.grain_size)
        small = (max(1, int(np.ceil(w / size))), max(1, int(np.ceil(h / size))))
        rng = np.random.default_rng(seed)
        field = rng.standard_normal((small[1], small[0], 3)).astype(np.float32)
        if size > 1.0:
            field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)
            # Upscaling bilinearly lowers the spread; restore it.
            field /= max(float(field.std()), 1e-3)
        return np.asarray(field[:h, :w] * self.grain[None, None, :], np.float32)


def measure_look(
    canvas: np.ndarray, mesh: RigMesh, rest: np.ndarray, scale: float, *, open_mouth: bool
) -> PhotoLook:
    """Measure the look of ``canvas`` (the rig's image framed at the output size) around the
    face whose rest vertices (output pixels) are ``rest``; ``scale`` is output pixels per
    photo pixel; ``open_mouth``: the photo's lips are apart (its teeth may show)."""
    lip = _lip_colour(canvas, mesh, rest)
    skin = _skin_colour(canvas, mesh, rest)
    teeth, source = _teeth_colour(canvas, mesh, rest, skin, open_mouth)
    # Gums: the lips' hue, lighter and pinker; tongue: the lips' hue, a little lighter and less
    # saturated (a tongue is paler than the lips); cavity: the lips' hue in deep shadow. Lips
    # that are no pink-red (a drawing's outline, fur) lend only their light, not their hue.
    flesh = _flesh(lip)
    gum = np.clip(flesh * np.array([1.1, 0.92, 0.95]) + np.array([22.0, 8.0, 12.0]), 0, 255)
    tongue = np.clip(0.72 * flesh + 0.28 * np.array([205.0, 120.0, 120.0]), 0, 255)
    cavity = flesh * np.array([0.3, 0.19, 0.19]) + np.array([4.0, 1.0, 1.0])
    blur = _edge_blur(canvas, mesh, rest)
    grain = _grain(canvas, mesh, rest, scale)
    return PhotoLook(
        lip=lip.astype(np.float32), skin=skin.astype(np.float32),
        teeth=teeth.astype(np.float32), gum=gum.astype(np.float32),
        tongue=tongue.astype(np.float32), cavity=cavity.astype(np.float32), blur=blur,
        grain=grain, grain_size=max(1.0, scale), teeth_from=source,
    )  # fmt: skip


_PINK = np.array([196.0, 112.0, 112.0], np.float32)


def _flesh(lip: np.ndarray) -> np.ndarray:
    """The lip colour if it is a plausible pink-red, else a pink at the lip colour's light."""
    hsv = cv2.cvtColor(np.clip(lip, 0, 255).astype(np.uint8)[None, None], cv2.COLOR_RGB2HSV)[0, 0]
    hue = float(hsv[0]) * 2.0  # degrees
    reddish = min(hue, 360.0 - hue) <= 15.0 and hsv[1] >= 40 and hsv[2] >= 100
    if reddish:
        return lip
    light = max(float(lip.mean()), 60.0) / float(_PINK.mean())
    return np.asarray(np.clip(_PINK * min(light, 1.2), 0, 255), np.float32)


def _polygon_pixels(canvas: np.ndarray, *polys: np.ndarray, holes: tuple = ()) -> np.ndarray:
    mask = np.zeros(canvas.shape[:2], np.uint8)
    for poly in polys:
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
    for hole in holes:
        cv2.fillPoly(mask, [np.round(hole).astype(np.int32)], 0)
    return canvas[mask > 0].astype(np.float32)


def _lip_colour(canvas: np.ndarray, mesh: RigMesh, rest: np.ndarray) -> np.ndarray:
    outer = np.concatenate([mesh.region("outer_lip_upper"), mesh.region("outer_lip_lower")[::-1]])
    inner = np.concatenate([mesh.region("inner_lip_upper"), mesh.region("inner_lip_lower")[::-1]])
    pixels = _polygon_pixels(canvas, rest[outer], holes=(rest[inner],))
    return np.median(pixels, axis=0) if len(pixels) >= 8 else _DEFAULT_LIP.copy()


def _skin_colour(canvas: np.ndarray, mesh: RigMesh, rest: np.ndarray) -> np.ndarray:
    """The cheeks and the skin between nose and mouth."""
    oval = rest[mesh.region("face_oval")]
    centre = oval.mean(axis=0)
    band = centre + 0.55 * (oval - centre)
    outer = np.concatenate([mesh.region("outer_lip_upper"), mesh.region("outer_lip_lower")[::-1]])
    eyes = [
        np.concatenate([mesh.region(f"{s}_eye_upper"), mesh.region(f"{s}_eye_lower")[::-1]])
        for s in ("right", "left")
    ]
    pixels = _polygon_pixels(canvas, band, holes=(rest[outer], *(rest[e] for e in eyes)))
    return np.median(pixels, axis=0) if len(pixels) >= 8 else _DEFAULT_SKIN.copy()


def _teeth_colour(
    canvas: np.ndarray, mesh: RigMesh, rest: np.ndarray, skin: np.ndarray, open_mouth: bool
) -> tuple[np.ndarray, str]:
    """The white of the teeth: the photo's own teeth if its mouth shows them, else its eye
    whites (lit like the mouth, and as white as this camera renders white), else a pale,
    desaturated version of its brightest skin."""
    inner = np.concatenate([mesh.region("inner_lip_upper"), mesh.region("inner_lip_lower")[::-1]])
    bright = _whites(_polygon_pixels(canvas, rest[inner])) if open_mouth else None
    if bright is not None:
        return bright, "photo teeth"
    eyes = [
        rest[np.concatenate([mesh.region(f"{s}_eye_upper"), mesh.region(f"{s}_eye_lower")[::-1]])]
        for s in ("right", "left")
    ]
    sclera = _whites(_polygon_pixels(canvas, *eyes), percentile=90)
    if sclera is not None:
        # The lit part of the eye whites (most of the eye is shaded by lids and lashes); teeth
        # are a touch warmer.
        return np.clip(sclera * np.array([1.04, 1.02, 0.97]), 0, 255), "eyes"
    grey = float(np.dot(skin, [0.3, 0.59, 0.11]))
    pale = np.clip(0.25 * skin + 0.75 * min(245.0, grey * 1.25 + 30), 0, 255)
    return pale * np.array([1.0, 0.98, 0.92]), "skin"


def _whites(pixels: np.ndarray, percentile: float = 50) -> np.ndarray | None:
    """A percentile of the light, unsaturated pixels, when there are enough of them."""
    if len(pixels) < 12:
        return None
    value = pixels.max(axis=1)
    saturation = (value - pixels.min(axis=1)) / np.maximum(value, 1.0)
    light = value > max(120.0, float(np.percentile(value, 60)))
    white = light & (saturation < 0.25)
    if white.sum() < max(6, 0.08 * len(pixels)):
        return None
    return np.asarray(np.percentile(pixels[white], percentile, axis=0))


def _face_box(mesh: RigMesh, rest: np.ndarray, shape: tuple[int, ...]) -> tuple[slice, slice]:
    pts = rest[mesh.region("face_oval")]
    x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(pts.max(axis=0)).astype(int) + 1, [shape[1], shape[0]])
    return slice(y0, y1), slice(x0, x1)


def _edge_blur(canvas: np.ndarray, mesh: RigMesh, rest: np.ndarray) -> float:
    """Gaussian sigma of the face's edges: a blurred step of contrast C has a steepest slope of
    C / (sigma sqrt(2 pi)), so sigma follows from the slope and the contrast across strong
    edges (the sharpest quarter: texture edges are softer than outlines)."""
    ys, xs = _face_box(mesh, rest, canvas.shape)
    gray = cv2.cvtColor(canvas[ys, xs], cv2.COLOR_RGB2GRAY).astype(np.float32)
    if gray.shape[0] < 16 or gray.shape[1] < 16:
        return 0.8
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    slope = np.hypot(gx, gy)
    k = np.ones((9, 9), np.uint8)
    contrast = cv2.dilate(gray, k) - cv2.erode(gray, k)
    peak = slope >= cv2.dilate(slope, np.ones((3, 3), np.uint8))
    strong = peak & (contrast > 30.0) & (slope > 2.0)
    if strong.sum() < 20:
        return 0.8
    sigma = contrast[strong] / (slope[strong] * np.sqrt(2 * np.pi))
    # The Sobel derivative of a sampled edge spreads it by about half a pixel.
    return float(np.clip(np.percentile(sigma, 25) - 0.35, 0.4, 6.0))


def _grain(canvas: np.ndarray, mesh: RigMesh, rest: np.ndarray, scale: float) -> np.ndarray:
    """Noise per channel in flat skin: the spread of what a small median filter removes, in
    the photo's own pixels (the residual of the upscaled canvas underestimates it)."""
    ys, xs = _face_box(mesh, rest, canvas.shape)
    face = canvas[ys, xs]
    if scale > 1.0:
        size = (max(8, round(face.shape[1] / scale)), max(8, round(face.shape[0] / scale)))
        face = cv2.resize(face, size, interpolation=cv2.INTER_AREA)
    if face.shape[0] < 8 or face.shape[1] < 8:
        return np.zeros(3, np.float32)
    smooth = cv2.medianBlur(face, 3).astype(np.float32)
    residual = face.astype(np.float32) - smooth
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float32)
    flat = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)) < 40
    if flat.sum() < 50:
        return np.zeros(3, np.float32)
    # Mean absolute deviation (0.8 sigma for Gaussian noise) of the central 95 %, scaled to a
    # standard deviation; the 3x3 median removes about a fifth of white noise's spread.
    r = np.abs(residual[flat])
    r = np.minimum(r, np.percentile(r, 95, axis=0))
    return np.clip(r.mean(axis=0) / 0.8 * 1.2, 0.0, 12.0).astype(np.float32)
