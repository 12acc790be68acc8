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

The fit (``talkie.rig.fitting``) places a symmetric, frontal template face on the points,
reshapes it to their proportions without folding it, and bends it through every point exactly.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkie.errors import InvalidInputError
from talkie.rig import topology as topo
from talkie.rig.builder import MAX_FACE_PX, Progress, crop_around, rig_from_landmarks
from talkie.rig.fitting import fit_landmarks
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
    ManualPoint(
        "mouth_open_top", 13, False,
        "only for a mouth drawn open: the top of the opening, in the middle",
    ),
    ManualPoint(
        "mouth_open_bottom", 14, False,
        "only for a mouth drawn open: the bottom of the opening, in the middle",
    ),
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
    landmarks = fit_points(points, (width, height))

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


def fit_points(points: Points, image_size: tuple[int, int]) -> np.ndarray:
    """The 478 landmarks (x, y, depth; image pixels) fitted through hand-placed points, without
    building a rig (fast: what a point editor shows while points are dragged). Raises
    ``InvalidInputError`` naming the point at fault, as ``build_rig_from_points`` does."""
    width, height = image_size
    placed = validate_points(points, (width, height))
    landmarks = fit_landmarks(
        {n: (POINT_INFO[n].landmark, xy) for n, xy in placed.items()}, REQUIRED_POINTS
    )
    _check_inside(landmarks, width, height)
    return landmarks


def points_named_in(message: str) -> list[str]:
    """The point names an error message mentions (so an editor can highlight them)."""
    return [name for name in MANUAL_POINTS if re.search(rf"\b{name}\b", message)]


def load_points(path: str | Path) -> dict[str, Any]:
    """Read points from a JSON file: ``{"chin": [x, y], ...}``. The REST API's body
    (``{"points": {"chin": {"x": .., "y": ..}}}``) is accepted too. Only the file's shape is
    checked here; ``build_rig_from_points`` checks the values and names the point at fault."""
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
    out: dict[str, Any] = {}
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
        or not all(isinstance(v, int | float | np.integer | np.floating) for v in pair)
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
    opening = [n for n in ("mouth_open_top", "mouth_open_bottom") if n in p]
    if len(opening) == 1:
        raise InvalidInputError(
            f"{opening[0]} needs its partner: place both mouth_open_top and mouth_open_bottom "
            "(for a mouth drawn open), or neither"
        )
    if opening:
        open_top, open_bottom = at("mouth_open_top")[1], at("mouth_open_bottom")[1]
        if open_top >= open_bottom:
            raise InvalidInputError("mouth_open_top must be above mouth_open_bottom")
        if "upper_lip" in p and at("upper_lip")[1] >= open_top:
            raise InvalidInputError("mouth_open_top must be below upper_lip")
        if "lower_lip" in p and at("lower_lip")[1] <= open_bottom:
            raise InvalidInputError("mouth_open_bottom must be above lower_lip")
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
