"""Manual rig: the full face fitted to a few points a person placed by hand.

For images where face detection fails or is wrong (drawings, cartoons, mascots, animals, statues,
odd lighting), a person places the named points of ``MANUAL_POINTS`` on the image. The 478
MediaPipe landmarks are fitted to them and the rest of the rig (matte, background plate, mesh) is
built exactly as for a detected face, so the same renderer animates it.

Contract for the points:

* Coordinates are (x, y) pixels of the image as given (for a file: as any viewer shows it, after
  EXIF rotation), x to the right, y down, (0, 0) the top-left corner of the image; every point
  must lie inside the image (0 <= x <= width, 0 <= y <= height).
* "left" and "right" are the CHARACTER's own, as everywhere in Talkie: for a face looking at the
  viewer, the character's right eye and right mouth corner are on the image's LEFT. Points whose
  sides are swapped are reported as such.
* ``REQUIRED_POINTS`` (eye corners, nose tip, mouth corners, chin) must all be given; the others
  refine the fit where a face departs from human proportions (big cartoon eyes, thick lips, a
  narrow head) and are estimated from the template when absent.

The fit: a symmetric, frontal template face (``data/face_template.json``, made by
``scripts/make_face_template.py``) is placed by the similarity transform that best matches the
required points, then bent by a thin-plate spline through every given point, so each point lands
exactly where it was placed and the landmarks between them follow smoothly. Depth comes from the
template at the fitted scale (a drawing has no depth of its own to measure).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import PchipInterpolator, RBFInterpolator

from talkie.errors import InvalidInputError, MissingDependencyError
from talkie.rig import topology as topo
from talkie.rig.builder import MAX_FACE_PX, Progress, crop_around, rig_from_landmarks
from talkie.rig.model import CharacterRig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManualPoint:
    """One point a person places: the landmark it pins, whether it is required, and where it
    goes (for a user interface)."""

    name: str
    landmark: int
    required: bool
    where: str


_POINTS = (
    ManualPoint("right_eye_outer", 33, True, "outer corner of the character's right eye"),
    ManualPoint("right_eye_inner", 133, True, "inner corner of the character's right eye"),
    ManualPoint("left_eye_inner", 362, True, "inner corner of the character's left eye"),
    ManualPoint("left_eye_outer", 263, True, "outer corner of the character's left eye"),
    ManualPoint("nose_tip", topo.NOSE_TIP, True, "tip of the nose"),
    ManualPoint("mouth_right", 61, True, "corner of the mouth on the character's right"),
    ManualPoint("mouth_left", 291, True, "corner of the mouth on the character's left"),
    ManualPoint("chin", topo.CHIN, True, "bottom of the chin"),
    ManualPoint("upper_lip", 0, False, "top edge of the upper lip, in the middle"),
    ManualPoint("lower_lip", 17, False, "bottom edge of the lower lip, in the middle"),
    ManualPoint("right_eye_top", 159, False, "middle of the right eye's upper lid edge"),
    ManualPoint("right_eye_bottom", 145, False, "middle of the right eye's lower lid edge"),
    ManualPoint("left_eye_top", 386, False, "middle of the left eye's upper lid edge"),
    ManualPoint("left_eye_bottom", 374, False, "middle of the left eye's lower lid edge"),
    ManualPoint("forehead", topo.FOREHEAD_TOP, False, "top of the forehead above the nose"),
    ManualPoint("face_right", 234, False, "edge of the face on the character's right, by the ear"),
    ManualPoint("face_left", 454, False, "edge of the face on the character's left, by the ear"),
)
MANUAL_POINTS: tuple[str, ...] = tuple(p.name for p in _POINTS)
REQUIRED_POINTS: tuple[str, ...] = tuple(p.name for p in _POINTS if p.required)
POINT_INFO: Mapping[str, ManualPoint] = {p.name: p for p in _POINTS}

MIN_EYE_DISTANCE = 12.0  # px between the eye centres; fewer leave nothing to animate
MIN_FEATURE_PX = 2.0  # an eye's or the mouth's two corners closer than this are one click
MIN_MOUTH_BELOW_EYES = 0.15  # in eye distances: a mouth on the eye line is a mistake
MAX_FOLDED = 0.005  # share of the face covered twice by folds (drawings measured < 0.1 %)
MAX_OUTSIDE = 0.1  # fraction of fitted landmarks allowed beyond the image (as for detection)
# Landmark bounding box over the face detector's box (measured on two portraits: 1.04, 1.11), so
# a manual rig gets the same working crop as a detected one.
LANDMARK_BOX_RATIO = 1.08

_SIDES = (
    "'right' and 'left' are the character's own: for a face looking at you, the character's "
    "right eye and mouth corner are on the image's left"
)

Points = Mapping[str, tuple[float, float]]


def build_rig_from_points(
    image: np.ndarray, points: Points, *, progress: Progress | None = None
) -> CharacterRig:
    """Rig an RGB uint8 image from hand-placed points (see the module docstring for the contract).

    Raises ``InvalidInputError`` naming the point when a point is missing, unknown, not a finite
    pair of numbers, outside the image, or when the points cannot be a face (swapped sides, the
    mouth above the eyes, eyes on top of each other, a face too small to animate).
    """
    say = progress or (lambda _msg: None)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InvalidInputError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    say("checking the placed points")
    placed = validate_points(points, (width, height))
    say("fitting the face to the placed points")
    landmarks = fit_landmarks(placed)
    _check_inside(landmarks, width, height)

    lo, hi = landmarks[:, :2].min(axis=0), landmarks[:, :2].max(axis=0)
    size = float(max(hi - lo)) / LANDMARK_BOX_RATIO
    down = _face_axes(placed)[1]
    cx, cy = (lo + hi) / 2 + 0.05 * size * down  # detector boxes sit a little lower
    scale = min(1.0, MAX_FACE_PX / size)
    working, x0, y0 = crop_around(image, float(cx), float(cy), size, scale)
    local = landmarks.copy()
    local[:, :2] = (local[:, :2] - (x0, y0)) * scale
    local[:, 2] *= scale
    return rig_from_landmarks(
        working,
        local.astype(np.float32),
        source="manual",
        crop=(x0, y0, scale),
        source_size=(width, height),
        progress=say,
    )


def load_points(path: str | Path) -> dict[str, tuple[float, float]]:
    """Read points from a JSON file: ``{"chin": [x, y], ...}``. The REST API's body
    (``{"points": {"chin": {"x": .., "y": ..}}}``) is accepted too. Values are checked by
    ``validate_points``; this only checks the file's shape."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such points file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read the points file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); write an object like "
            '{"chin": [x, y], ...}'
        ) from None
    if isinstance(data, dict) and set(data) == {"points"}:
        data = data["points"]
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"{path} must hold a JSON object of point name -> [x, y], e.g. "
            '{"nose_tip": [250, 310], ...}'
        )
    out: dict[str, tuple[float, float]] = {}
    for name, value in data.items():
        if isinstance(value, dict) and set(value) == {"x", "y"}:
            value = [value["x"], value["y"]]
        out[str(name)] = value  # checked by validate_points, which names the point
    return out


def validate_points(points: Points, image_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """The points as float64 (x, y) arrays, or ``InvalidInputError`` naming what is wrong."""
    if not isinstance(points, Mapping):
        raise InvalidInputError("the points must be a mapping of point name -> (x, y)")
    unknown = sorted(str(n) for n in points if n not in POINT_INFO)
    if unknown:
        raise InvalidInputError(
            f"unknown point {', '.join(repr(n) for n in unknown)}; the points are "
            f"{', '.join(MANUAL_POINTS)}"
        )
    missing = [n for n in REQUIRED_POINTS if n not in points]
    if missing:
        raise InvalidInputError(
            f"missing required point{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED_POINTS)})"
        )
    width, height = image_size
    placed: dict[str, np.ndarray] = {}
    for name in MANUAL_POINTS:
        if name in points:
            placed[name] = _coordinates(name, points[name], width, height)
    _check_geometry(placed)
    return placed


def fit_landmarks(placed: Mapping[str, np.ndarray]) -> np.ndarray:
    """(478, 3) landmarks in image pixels fitted to validated points (z in x's scale, negative
    nearer the viewer, as FaceMesh gives them)."""
    template = _template()
    names = [n for n in MANUAL_POINTS if n in placed]
    idx = np.array([POINT_INFO[n].landmark for n in names])
    src = template[idx, :2]
    dst = np.array([placed[n] for n in names], np.float64)
    required = np.array([POINT_INFO[n].required for n in names])
    scale, rot, shift = _similarity(src[required], dst[required])
    # The rest happens in the template's own units (eye distance 1, x along the eyes, y down
    # the face): well conditioned whatever the image size; the similarity maps the result into
    # the image at the end.
    target = ((dst - shift) @ rot) / scale  # the placed points, back in template coordinates
    shaped = _reshape(template[:, :2], names, idx, target)
    # A thin-plate spline through every point takes it exactly where it was placed, and the
    # landmarks between the points along smoothly.
    spline = RBFInterpolator(
        shaped[idx], target - shaped[idx], kernel="thin_plate_spline", degree=1
    )
    bent = shaped + spline(shaped)
    out = np.empty((len(template), 3))
    out[:, :2] = scale * bent @ rot.T + shift
    out[:, 2] = scale * template[:, 2]
    _check_no_fold(template[:, :2], bent, placed, out)
    return out


def _reshape(
    template: np.ndarray, names: list[str], idx: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """The template with the placed face's proportions and mouth curve, before the spline.

    Drawn faces differ from the template mostly in proportions (a nose and mouth close under
    big eyes, a thin mouth line, a short chin) and in a strong smile. A spline alone squeezes
    and turns the template's features between points until the mesh folds over; monotone
    stretches of each axis and a shear for the smile cannot fold, and leave the spline small
    corrections.
    """
    shaped = template.copy()
    # Down the face, the lips' edges set the mouth's place and thickness. The corners do not:
    # a smile lifts them above the lips' middle (measured on a smiling portrait, using them put
    # the whole mouth 3 px too high); the spline takes them where they were placed.
    lips = tuple((n,) for n in ("upper_lip", "lower_lip") if n in names)
    down = (*_DOWN[:3], *lips, *_DOWN[3:])
    for axis, groups in ((0, _ACROSS), (1, down)):
        present = [[names.index(n) for n in g if n in names] for g in groups]
        knots = [(template[idx[i], axis].mean(), target[i, axis].mean()) for i in present if i]
        shaped[:, axis] = _monotone_map(knots)(template[:, axis])
    for side in ("right", "left"):
        shaped[:, 1] = _eye_stretch(shaped, side, names, idx, target)
        shaped = _eye_roundness(shaped, side, names)
    shaped[:, 1] += _smile_bend(shaped, names, idx, target)
    return shaped


def _eye_stretch(
    shaped: np.ndarray, side: str, names: list[str], idx: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """v of every landmark after opening or narrowing one eye to its placed top and bottom.

    Drawn eyes are often far rounder than the template's; left to the spline, that correction
    spreads over the whole face. Here each column near the eye is stretched by a monotone map
    through the eye line and the lids, faded out above, below and beside the eye.
    """
    v = shaped[:, 1]
    lids = [n for n in (f"{side}_eye_top", f"{side}_eye_bottom") if n in names]
    if not lids:
        return v
    corners = [names.index(f"{side}_eye_outer"), names.index(f"{side}_eye_inner")]
    line = float(shaped[idx[corners], 1].mean())
    u_lo, u_hi = np.sort(shaped[idx[corners], 0])
    width = u_hi - u_lo
    knots = [(line, line)]
    for name in lids:
        i = names.index(name)
        knots.append((float(shaped[idx[i], 1]), float(target[i, 1])))
    reach = max(abs(a - line) for k in knots for a in k) + 0.4 * width
    knots += [(line - reach, line - reach), (line + reach, line + reach)]
    stretched = _monotone_map(knots)(v)
    fade = 1.0 * width  # about an eye's width: narrower fades flip thin triangles beside it
    beside = np.clip(np.maximum(u_lo - shaped[:, 0], shaped[:, 0] - u_hi) / fade, 0.0, 1.0)
    near = 1.0 - beside * beside * (3 - 2 * beside)
    return np.asarray(v + near * (stretched - v))


_EYE_CONTOURS = {
    "right": (topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER),
    "left": (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER),
}
HUMAN_EYE_ASPECT, ROUND_EYE_ASPECT = 0.45, 0.75  # height / width: almond below, round above


def _eye_roundness(shaped: np.ndarray, side: str, names: list[str]) -> np.ndarray:
    """Round out one eye's lids when its placed top and bottom make it a round, drawn eye.

    The template's eye is an almond, narrow towards the corners; stretched to a cartoon eye's
    height it leaves the round eye's sides outside the lids, and a blink leaves them open. The
    lid outlines are blended towards an ellipse through the corners, top and bottom (fully from
    ``ROUND_EYE_ASPECT``), and everything around follows by a polar map about the eye's centre:
    each direction's radius is rescaled monotonically, so nothing can fold.
    """
    if f"{side}_eye_top" not in names or f"{side}_eye_bottom" not in names:
        return shaped
    upper, lower = (np.array(c) for c in _EYE_CONTOURS[side])
    pts = shaped.copy()
    outer, inner = pts[upper[0]], pts[upper[-1]]
    top, bottom = pts[upper[len(upper) // 2]], pts[lower[len(lower) // 2]]
    width = float(np.linalg.norm(inner - outer))
    aspect = float(bottom[1] - top[1]) / max(width, 1e-6)
    x = np.clip((aspect - HUMAN_EYE_ASPECT) / (ROUND_EYE_ASPECT - HUMAN_EYE_ASPECT), 0.0, 1.0)
    blend = x * x * (3 - 2 * x)
    if blend <= 0.0:
        return shaped
    centre = np.array([(outer[0] + inner[0]) / 2, (top[1] + bottom[1]) / 2])
    lids = np.concatenate([upper[1:-1], lower[1:-1]])
    # Each lid point keeps its place along the eye; its height over the corners' line becomes
    # an ellipse through the top (or bottom) point, split at that point's place along the eye.
    slope = (inner[1] - outer[1]) / (inner[0] - outer[0])  # corners differ in u (validated)

    def line(at: np.ndarray) -> np.ndarray:
        return np.asarray(outer[1] + (at - outer[0]) * slope)

    u = pts[lids, 0]
    rounded = pts[lids].copy()
    n_upper = len(upper) - 2
    for peak, ids in ((top, np.arange(n_upper)), (bottom, n_upper + np.arange(len(lower) - 2))):
        towards = np.where(u[ids] < peak[0], min(outer[0], inner[0]), max(outer[0], inner[0]))
        t = np.clip((u[ids] - peak[0]) / (towards - peak[0]), 0.0, 1.0)
        height = peak[1] - line(np.array(peak[0]))
        rounded[ids, 1] = line(u[ids]) + height * np.sqrt(1.0 - t * t)
    new_lids = pts[lids] + blend * (rounded - pts[lids])

    # Polar map: radius before and after, per direction, from the lid points and the corners.
    ring = np.concatenate([[upper[0], upper[-1]], lids])
    before = pts[ring] - centre
    after = np.concatenate([pts[[upper[0], upper[-1]]], new_lids]) - centre
    angle = np.arctan2(before[:, 1], before[:, 0])
    order = np.argsort(angle)
    r_before = np.linalg.norm(before, axis=1)[order]
    r_after = np.linalg.norm(after, axis=1)[order]
    angle = angle[order]
    rel = pts - centre
    theta = np.arctan2(rel[:, 1], rel[:, 0])
    r = np.linalg.norm(rel, axis=1)
    r0 = np.interp(theta, angle, r_before, period=2 * np.pi)
    r1 = np.interp(theta, angle, r_after, period=2 * np.pi)
    far = np.maximum(r0, r1) + 0.35 * width  # beyond this, nothing moves
    scaled = np.where(
        r <= r0,
        r * r1 / np.maximum(r0, 1e-9),
        np.where(r < far, r1 + (r - r0) * (far - r1) / np.maximum(far - r0, 1e-9), r),
    )
    out = centre + rel * (scaled / np.maximum(r, 1e-9))[:, None]
    return np.asarray(out)


# The points that set the face's proportions along each axis, as groups whose mean is one knot.
_ACROSS = (
    ("face_right",), ("right_eye_outer",), ("right_eye_inner",),
    ("left_eye_inner",), ("left_eye_outer",), ("face_left",),
)  # fmt: skip
_EYE_CORNERS = ("right_eye_outer", "right_eye_inner", "left_eye_inner", "left_eye_outer")
_DOWN = (("forehead",), _EYE_CORNERS, ("nose_tip",), ("chin",))  # lips go before the chin


def _smile_bend(
    shaped: np.ndarray, names: list[str], idx: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Vertical shift per landmark that curves the template's straight mouth into the placed
    smile (corners above the lips' middle) or frown.

    The template's lips would otherwise have to turn about each corner inside the spline, which
    folds them over for a drawn U-shaped smile. The shift is a shear, k * g(u) * w(v): zero on
    the face's centre line, k at the corners and beyond (the cheeks lift with a smile), faded in
    between the eyes and the nose and out towards the chin. Its Jacobian is 1 + k g w'(v), so it
    cannot fold unless a smile is deeper than the eyes are above the nose (the fold check then
    reports it).
    """
    middle = [names.index(n) for n in ("upper_lip", "lower_lip") if n in names]
    if not middle:
        return np.zeros(len(shaped))  # only the corners: nothing says how the mouth curves
    corners = [names.index("mouth_right"), names.index("mouth_left")]
    residual = target[:, 1] - shaped[idx, 1]
    k = float(residual[corners].mean() - residual[middle].mean())
    centre_u = float(shaped[idx[corners], 0].mean())
    half_width = max(float(np.ptp(shaped[idx[corners], 0])) / 2, 1e-3)
    t = np.clip((shaped[:, 0] - centre_u) / half_width, -1.0, 1.0)
    # A parabola: the classic smile curve (whatever its shape, a shear along v cannot fold).
    across = t**2

    def ramp(v: np.ndarray, start: float, end: float) -> np.ndarray:
        x = np.clip((v - start) / (end - start), 0.0, 1.0) if end > start else (v >= end) * 1.0
        return np.asarray(x * x * (3 - 2 * x))

    level = {n: float(shaped[idx[names.index(n)], 1]) for n in ("nose_tip", "chin")}
    eyes = float(shaped[idx[[names.index(n) for n in _EYE_CORNERS]], 1].mean())
    mouth_low = float(shaped[idx[corners + middle], 1].max())
    v = shaped[:, 1]
    down = ramp(v, eyes, level["nose_tip"]) * (1.0 - ramp(v, mouth_low, level["chin"]))
    return np.asarray(k * across * down)


def _monotone_map(knots: list[tuple[float, float]]) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth increasing map through (template, target) knots (PCHIP: no overshoot between
    them), continued linearly with the overall slope beyond the outermost knots. Knots that
    would make it decrease are dropped; the spline then takes care of those points."""
    if not knots:
        return lambda v: v
    knots = sorted(knots)
    kept = [knots[0]]
    for x, y in knots[1:]:
        if x > kept[-1][0] + 1e-6 and y > kept[-1][1] + 1e-6:
            kept.append((x, y))
    xs, ys = np.array(kept).T
    if len(kept) < 2:
        return lambda v: v + (ys[0] - xs[0])
    slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
    inside = PchipInterpolator(xs, ys)

    def apply(v: np.ndarray) -> np.ndarray:
        out = inside(np.clip(v, xs[0], xs[-1]))
        out = np.where(v < xs[0], ys[0] + (v - xs[0]) * slope, out)
        return np.asarray(np.where(v > xs[-1], ys[-1] + (v - xs[-1]) * slope, out))

    return apply


def points_of_rig(rig: CharacterRig) -> dict[str, tuple[float, float]]:
    """Where each of ``MANUAL_POINTS`` sits on a rig, in source-image pixels: a starting point for
    a person correcting a detected rig, or the points a manual rig was fitted to."""
    x0, y0, scale = rig.crop
    pts = rig.face.points
    return {
        p.name: (
            float(pts[p.landmark, 0] / scale + x0),
            float(pts[p.landmark, 1] / scale + y0),
        )
        for p in _POINTS
    }


# -- validation -------------------------------------------------------------------------------


def _coordinates(name: str, value: Any, width: int, height: int) -> np.ndarray:
    pair = list(value) if isinstance(value, list | tuple | np.ndarray) else None
    if (
        pair is None
        or len(pair) != 2
        or not all(isinstance(v, int | float | np.number) for v in pair)
        or any(isinstance(v, bool | np.bool_) for v in pair)
    ):
        raise InvalidInputError(f"point {name!r} must be a pair of numbers [x, y], got {value!r}")
    x, y = float(pair[0]), float(pair[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidInputError(f"point {name!r} has a non-finite coordinate ({x}, {y})")
    if not (0.0 <= x <= width and 0.0 <= y <= height):
        raise InvalidInputError(
            f"point {name!r} at ({x:g}, {y:g}) is outside the {width}x{height} image; "
            "coordinates are pixels from the top-left corner"
        )
    return np.array([x, y])


def _face_axes(p: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The face's own axes: ``u`` from the character's right eye to its left, ``v`` down the
    face (``u`` turned a quarter clockwise in the image, whose y axis points down)."""
    right = (p["right_eye_outer"] + p["right_eye_inner"]) / 2
    left = (p["left_eye_inner"] + p["left_eye_outer"]) / 2
    u = (left - right) / max(float(np.linalg.norm(left - right)), 1e-9)
    return u, np.array([-u[1], u[0]])


def _check_geometry(p: Mapping[str, np.ndarray]) -> None:
    """Reject points that cannot be a face, naming them: the spline would fold the mesh."""
    right = (p["right_eye_outer"] + p["right_eye_inner"]) / 2
    left = (p["left_eye_inner"] + p["left_eye_outer"]) / 2
    eye_distance = float(np.linalg.norm(left - right))
    if eye_distance < MIN_EYE_DISTANCE:
        raise InvalidInputError(
            f"the eyes are {eye_distance:.1f} px apart (from the right_eye_* to the left_eye_* "
            f"points), at least {MIN_EYE_DISTANCE:g} are needed: the face is too small to animate "
            "or the eyes are on top of each other"
        )
    u, v = _face_axes(p)
    mid = (left + right) / 2

    def at(name: str) -> tuple[float, float]:
        rel = p[name] - mid
        return float(rel @ u), float(rel @ v)

    mouth_v = (at("mouth_right")[1] + at("mouth_left")[1]) / 2
    if mouth_v < MIN_MOUTH_BELOW_EYES * eye_distance:
        mouth_y = (p["mouth_right"][1] + p["mouth_left"][1]) / 2
        if -mouth_v >= MIN_MOUTH_BELOW_EYES * eye_distance and mouth_y > mid[1]:
            # Lower in the picture yet "above" in the face's frame: the frame is upside down
            # because the eyes were labelled by image side.
            raise InvalidInputError(
                "the right_eye_* and left_eye_* points look swapped (the mouth comes out above "
                f"the eyes); {_SIDES}"
            )
        raise InvalidInputError(
            "mouth_right and mouth_left must be below the eyes (the mouth is placed "
            f"{'above' if mouth_v < 0 else 'on'} the line through the eyes)"
        )
    for a, b in (
        ("right_eye_outer", "right_eye_inner"),
        ("left_eye_inner", "left_eye_outer"),
        ("mouth_right", "mouth_left"),
    ):
        if np.linalg.norm(p[a] - p[b]) < MIN_FEATURE_PX:
            raise InvalidInputError(f"{a} and {b} are on top of each other; place both corners")
        if at(a)[0] >= at(b)[0]:
            why = "the outer corner is the one away from the nose" if "eye" in a else _SIDES
            raise InvalidInputError(f"{a} and {b} look swapped; {why}")
    if at("right_eye_inner")[0] >= at("left_eye_inner")[0]:
        raise InvalidInputError("the eyes overlap: right_eye_inner is beyond left_eye_inner")
    nose_v = at("nose_tip")[1]
    if not 0.0 < nose_v < mouth_v:
        raise InvalidInputError("nose_tip must lie below the eyes and above the mouth corners")
    lowest_mouth = max(mouth_v, at("lower_lip")[1] if "lower_lip" in p else mouth_v)
    if at("chin")[1] <= lowest_mouth:
        raise InvalidInputError("chin must be below the mouth")
    _check_optional(p, at, nose_v, eye_distance)


def _check_optional(
    p: Mapping[str, np.ndarray],
    at: Callable[[str], tuple[float, float]],
    nose_v: float,
    eye_distance: float,
) -> None:
    if "upper_lip" in p and at("upper_lip")[1] <= nose_v:
        raise InvalidInputError("upper_lip must be below nose_tip")
    if "upper_lip" in p and "lower_lip" in p and at("upper_lip")[1] >= at("lower_lip")[1]:
        raise InvalidInputError("upper_lip must be above lower_lip")
    for side in ("right", "left"):
        outer, inner = at(f"{side}_eye_outer")[0], at(f"{side}_eye_inner")[0]
        lo, hi = min(outer, inner), max(outer, inner)
        for part in ("top", "bottom"):
            name = f"{side}_eye_{part}"
            if name in p and not lo < at(name)[0] < hi:
                raise InvalidInputError(
                    f"{name} must lie between {side}_eye_outer and {side}_eye_inner"
                )
        top, bottom = f"{side}_eye_top", f"{side}_eye_bottom"
        if top in p and bottom in p and at(top)[1] >= at(bottom)[1]:
            raise InvalidInputError(f"{top} must be above {bottom}")
    if "forehead" in p and at("forehead")[1] >= -0.1 * eye_distance:
        raise InvalidInputError("forehead must be above the eyes")
    if "face_right" in p and at("face_right")[0] >= at("right_eye_outer")[0]:
        raise InvalidInputError(
            f"face_right must be farther out than right_eye_outer (the edge of the face beyond "
            f"the character's right eye); {_SIDES}"
        )
    if "face_left" in p and at("face_left")[0] <= at("left_eye_outer")[0]:
        raise InvalidInputError(
            f"face_left must be farther out than left_eye_outer (the edge of the face beyond "
            f"the character's left eye); {_SIDES}"
        )


def _check_no_fold(
    template: np.ndarray, bent: np.ndarray, placed: Mapping[str, np.ndarray], fitted: np.ndarray
) -> None:
    """Reject points that bend the face over itself (a mouth corner dragged past the mouth's
    middle, ...): the image there would be covered twice and tear when it moves.

    A few slivers always turn over (the closed lips' corners have almost no area, and even
    FaceMesh's own landmarks fold a little at a smile's corners); they cover next to nothing, so
    the measure is the share of the fitted face covered by turned-over triangles.
    """
    tris = topo.surface_triangles()

    def signed_area(pts: np.ndarray) -> np.ndarray:
        a, b, c = pts[tris[:, 0]], pts[tris[:, 1]], pts[tris[:, 2]]
        return np.asarray((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])

    after = signed_area(bent)
    folded = np.sign(signed_area(template)) != np.sign(after)
    share = float(np.abs(after[folded]).sum() / max(np.abs(after).sum(), 1e-12))
    if share <= MAX_FOLDED:
        return
    centres = fitted[tris[folded], :2].mean(axis=1)
    names = list(placed)
    dist = np.array([[float(np.linalg.norm(c - placed[n])) for n in names] for c in centres])
    near = [names[i] for i in np.argsort(dist.min(axis=0))[:3]]
    raise InvalidInputError(
        f"these points bend the face over itself ({share:.1%} of it folds, near "
        f"{', '.join(near)}); move them closer to where a face has them"
    )


def _check_inside(landmarks: np.ndarray, width: int, height: int) -> None:
    xy = landmarks[:, :2]
    inside = (xy[:, 0] >= -0.05 * width) & (xy[:, 0] <= 1.05 * width)
    inside &= (xy[:, 1] >= -0.05 * height) & (xy[:, 1] <= 1.05 * height)
    if inside.mean() < 1.0 - MAX_OUTSIDE:
        raise InvalidInputError(
            "with these points the face reaches well beyond the image border; place forehead, "
            "face_left and face_right if the head is smaller than estimated, or use an image "
            "with room around the face"
        )


# -- fitting ----------------------------------------------------------------------------------


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares scale, rotation (2x2) and shift with dst ~ scale * src @ rot.T + shift
    (Umeyama, reflections excluded: validated points always have the template's handedness)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    u, sing, vt = np.linalg.svd(d.T @ s)
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ flip @ vt
    scale = float(np.trace(np.diag(sing) @ flip) / (s**2).sum())
    return scale, rot, mu_d - scale * mu_s @ rot.T


@lru_cache(maxsize=1)
def _template() -> np.ndarray:
    """The template face (478, 3), in eye distances (see scripts/make_face_template.py)."""
    try:
        text = resources.files("talkie.rig").joinpath("data/face_template.json").read_text()
        landmarks = np.array(json.loads(text)["landmarks"], np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise MissingDependencyError(
            f"the face template of manual rigs is missing or damaged ({exc}); reinstall Talkie "
            "(talkie/rig/data/face_template.json is package data)"
        ) from exc
    if landmarks.shape != (topo.N_FACE_LANDMARKS, 3):
        raise MissingDependencyError(
            f"the face template has shape {landmarks.shape}; reinstall Talkie"
        )
    return landmarks
