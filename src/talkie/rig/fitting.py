"""Fit MediaPipe's 478 face landmarks through a few pinned points (see ``talkie.rig.manual``).

A symmetric, frontal template face (``data/face_template.json``, made by
``scripts/make_face_template.py``) is placed by the similarity transform that best matches the
required points, reshaped to the placed face's proportions (monotone stretches along and across
the face, each eye's height and roundness, the mouth's smile or frown: maps that cannot fold the
mesh), then bent by a thin-plate spline through every point, so each point lands exactly where
it was placed and the landmarks between them follow smoothly. Depth comes from the template at
the fitted scale (a drawing has no depth of its own to measure).

Point names are those of ``talkie.rig.manual.MANUAL_POINTS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy.interpolate import PchipInterpolator, RBFInterpolator

from talkie.errors import InvalidInputError, MissingDependencyError
from talkie.rig import topology as topo

MAX_FOLDED = 0.005  # share of the face covered twice by folds (drawings measured < 0.1 %)
HUMAN_EYE_ASPECT, ROUND_EYE_ASPECT = 0.45, 0.75  # height / width: almond below, round above

# The points that set the face's proportions along each axis, as groups whose mean is one knot.
_ACROSS = (
    ("face_right",), ("right_eye_outer",), ("right_eye_inner",),
    ("left_eye_inner",), ("left_eye_outer",), ("face_left",),
)  # fmt: skip
_EYE_CORNERS = ("right_eye_outer", "right_eye_inner", "left_eye_inner", "left_eye_outer")
_DOWN = (("forehead",), _EYE_CORNERS, ("nose_tip",), ("chin",))  # lips go before the chin
_EYE_CONTOURS = {
    "right": (topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER),
    "left": (topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER),
}


def fit_landmarks(
    pins: Mapping[str, tuple[int, np.ndarray]], required: Collection[str]
) -> np.ndarray:
    """(478, 3) landmarks in image pixels through validated pins (point name -> the landmark it
    pins and its image position); the ``required`` ones place the template. z is in x's scale,
    negative nearer the viewer, as FaceMesh gives it. Raises ``InvalidInputError`` when the
    pins bend the face over itself."""
    template = _template()
    names = list(pins)
    idx = np.array([pins[n][0] for n in names])
    src = template[idx, :2]
    dst = np.array([pins[n][1] for n in names], np.float64)
    is_required = np.array([n in required for n in names])
    scale, rot, shift = _similarity(src[is_required], dst[is_required])
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
    _check_no_fold(template[:, :2], bent, {n: dst[i] for i, n in enumerate(names)}, out)
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
    shaped[:, 1] += _mouth_opening(shaped, names, idx, target)
    shaped[:, 1] += _smile_bend(shaped, names, idx, target)
    return shaped


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
    # Room beyond the farther lid before nothing moves: the lid fold and brow follow the lid.
    # (A longer reach shifts the nose and brows more and measured more folds on drawings.)
    reach = max(abs(a - line) for k in knots for a in k) + 0.4 * width
    knots += [(line - reach, line - reach), (line + reach, line + reach)]
    stretched = _monotone_map(knots)(v)
    fade = 1.0 * width  # about an eye's width: narrower fades flip thin triangles beside it
    beside = np.clip(np.maximum(u_lo - shaped[:, 0], shaped[:, 0] - u_hi) / fade, 0.0, 1.0)
    near = 1.0 - beside * beside * (3 - 2 * beside)
    return np.asarray(v + near * (stretched - v))


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


def _mouth_opening(
    shaped: np.ndarray, names: list[str], idx: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Vertical shift per landmark that opens the template's closed mouth to a mouth drawn
    open (an emoji's grin). Above the mouth line, columns near the mouth are stretched by a
    monotone map from the nose tip through the upper lip's edge to the opening's top; below it,
    from the opening's bottom through the lower lip's edge to the chin; both scaled by an
    ellipse across the mouth (full in the middle, nothing at the corners). Within each side a
    shift p(u) g(v) with g monotone and p <= 1 cannot fold the mesh (its Jacobian is
    1 + p g' >= 1 - p >= 0); between the sides is the opening itself."""
    if "mouth_open_top" not in names or "mouth_open_bottom" not in names:
        return np.zeros(len(shaped))

    def knot(name: str) -> tuple[float, float]:
        i = names.index(name)
        return float(shaped[idx[i], 1]), float(target[i, 1])

    top, bottom = knot("mouth_open_top"), knot("mouth_open_bottom")
    line = 0.5 * (top[0] + bottom[0])  # the template's lips meet here
    nose = float(shaped[idx[names.index("nose_tip")], 1])
    chin = float(shaped[idx[names.index("chin")], 1])
    upper = [(nose, nose), (line, top[1])]
    lower = [(line, bottom[1]), (chin, chin)]
    if "upper_lip" in names:
        upper.append(knot("upper_lip"))
    if "lower_lip" in names:
        lower.append(knot("lower_lip"))
    v = shaped[:, 1]
    below = v > line
    below[list(topo.INNER_LIP_UPPER + topo.OUTER_LIP_UPPER)] = False
    below[list(topo.INNER_LIP_LOWER + topo.OUTER_LIP_LOWER)] = True
    below[[topo.INNER_LIP_UPPER[0], topo.INNER_LIP_UPPER[-1]]] = False  # the corners stay
    moved = np.where(
        below,
        _monotone_map(lower)(np.maximum(v, line)),
        _monotone_map(upper)(np.minimum(v, line)),
    )
    corners = [names.index("mouth_right"), names.index("mouth_left")]
    centre_u = float(shaped[idx[corners], 0].mean())
    half = max(float(np.ptp(shaped[idx[corners], 0])) / 2, 1e-3)
    across = np.clip(1.0 - ((shaped[:, 0] - centre_u) / half) ** 2, 0.0, 1.0)
    # Only between the nose and the chin (the maps are the identity beyond them anyway).
    inside = (v > nose) & (v < chin)
    return np.asarray(np.where(inside, np.sqrt(across) * (moved - v), 0.0))


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
