"""FaceParams -> deformed mesh vertices, by rules tied to the face's own geometry.

Every local face movement (jaw, lips, smile, brows, blinks, gaze) is a per-vertex displacement
field ("basis") computed once from the rig, so a frame's local deformation is a single small
matrix product. The head then rotates in 3-D about a pivot in the neck using the landmarks' depth
(near points like the nose move more than the cheeks: parallax), with a weight that fades to zero
towards the body and the frame border.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from talkie.messages import FaceParams
from talkie.rig.model import RigMesh

# Per-unit amplitudes, as fractions of the face height (forehead top to chin) unless noted.
JAW_DROP = 0.11  # lower inner lip travel at jaw_open = 1
UPPER_LIP_WITH_JAW = 0.012
LIP_WIDTH = 0.13  # corner travel as a fraction of the mouth width, each side
LIP_ROUND_IN = 0.16  # corners pulled in, fraction of mouth width
LIP_ROUND_POUT = 0.018
LIP_PRESS_THIN = 0.25  # fraction of lip thickness the outer contours move in when pressed
UPPER_LIP_RAISE = 0.03
SMILE_UP, SMILE_OUT = 0.035, 0.07
BROW_UP = 0.035
LID_MEET = 0.72  # where the lids meet on a blink, from the upper (0) to the lower lid (1)
FOLD_FOLLOW = 0.35  # how much of the lid's travel the skin fold above it follows
GAZE_X, GAZE_Y = 0.2, 0.12  # iris travel as fractions of the eye's width and height

BASIS_PARAMS = (
    "jaw_open", "lip_width", "lip_round", "lip_press", "upper_lip_raise", "smile", "brow_raise",
    "blink_left", "blink_right", "gaze_x", "gaze_y", "lip_close",
)  # fmt: skip
_PARAM_INDEX = {name: i for i, name in enumerate(FaceParams.names())}


@dataclass(frozen=True, eq=False)
class FaceFrame2D:
    """The face's own axes in the image: ``u`` along the eye line, ``v`` down the face."""

    u: np.ndarray
    v: np.ndarray
    face_height: float
    mouth_centre: np.ndarray
    mouth_width: float


class FaceDeformer:
    """Precomputes displacement bases and head weights for one mesh (in output pixels)."""

    def __init__(self, *, mesh: RigMesh, vertices: np.ndarray) -> None:
        self.rest = vertices.astype(np.float32)  # (V, 3) in output pixels, z in the same scale
        self.mesh = mesh
        self.frame = _face_frame(mesh, self.rest)
        self.bases = self._bases()  # (len(BASIS_PARAMS), V, 2)
        self._basis_rows = np.array([_PARAM_INDEX[n] for n in BASIS_PARAMS])
        self.head_weight = self._head_weights()
        self.pivot = self._pivot()
        self.moving = self.head_weight > 0
        self.moving |= np.abs(self.bases).sum(axis=(0, 2)) > 1e-3

    def deform(self, params: FaceParams) -> np.ndarray:
        """Deformed (V, 2) vertex positions for one frame."""
        values = params.as_array()
        # einsum, not tensordot/@: these go to BLAS, whose spinning worker threads cost a core
        # at 24 calls a second for matrices this small.
        local = np.einsum("k,kvc->vc", values[self._basis_rows], self.bases)
        pts = self.rest.copy()
        pts[:, :2] += local
        return self._move_head(pts, params)

    # -- head ---------------------------------------------------------------------------------

    def skull_affine(self, params: FaceParams, anchors: np.ndarray) -> np.ndarray:
        """The head's motion around the ``anchors`` (three vertex indices) as a 2x3 affine map of
        rest output pixels: where whatever is fixed to the skull there (the upper teeth) goes."""
        rest = self.rest[anchors]
        moved = self._move_head(rest.copy(), params, anchors)
        return cv2.getAffineTransform(rest[:, :2].astype(np.float32), moved.astype(np.float32))

    def jaw_shift(self, params: FaceParams, vertex: int) -> np.ndarray:
        """How far the jaw alone moves ``vertex`` (x, y output pixels), before the head moves."""
        return np.asarray(self.bases[BASIS_PARAMS.index("jaw_open"), vertex] * params.jaw_open)

    def _move_head(
        self, pts: np.ndarray, p: FaceParams, idx: np.ndarray | slice = slice(None)
    ) -> np.ndarray:
        yaw, pitch, roll = np.radians([p.head_yaw, p.head_pitch, p.head_roll])
        cy, sy, cp, sp, cr, sr = (
            np.cos(yaw),
            np.sin(yaw),
            np.cos(pitch),
            np.sin(pitch),
            np.cos(roll),
            np.sin(roll),
        )
        rot_y = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
        rot_x = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        rot_z = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
        rot = (rot_z @ rot_x @ rot_y).astype(np.float32)
        rel = pts - self.pivot
        turned = np.einsum("vi,ji->vj", rel, rot) + self.pivot
        shift = np.array([p.head_dx, p.head_dy], np.float32) * self.frame.face_height
        moved = (turned[:, :2] - pts[:, :2] + shift) * self.head_weight[idx, None]
        return pts[:, :2] + moved

    def _pivot(self) -> np.ndarray:
        """Top of the neck, level with the jaw hinge, at the depth of the ears."""
        oval = self.rest[self.mesh.region("face_oval")]
        chin = self.rest[self.mesh.region("chin")[0]]
        centre = oval[:, :2].mean(axis=0)
        y = centre[1] + 0.6 * (chin[1] - centre[1])
        return np.array([centre[0], y, self._ear_depth()], np.float32)

    def _head_weights(self) -> np.ndarray:
        """1 on the face and the hair around it, fading out over the outer rings, lower on the
        neck than above the eyes, 0 on the image border."""
        weight = np.zeros(len(self.rest), np.float32)
        weight[self.mesh.region("landmarks")] = 1.0
        fh = self.frame.face_height
        chin_v = self._v(self.rest[self.mesh.region("chin")[0], :2])
        for name, base in (("ring1", 1.0), ("ring2", 0.75), ("ring3", 0.0)):
            idx = self.mesh.regions.get(name)
            if idx is None or len(idx) == 0:
                continue
            below_chin = (self._v(self.rest[idx, :2]) - chin_v) / fh
            # The collar and shoulders stay put: weight fades out within a quarter face below.
            neck = np.clip(1.0 - below_chin / 0.25, 0.0, 1.0)
            weight[idx] = base * neck
        return weight

    # -- bases --------------------------------------------------------------------------------

    def _v(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(pts @ self.frame.v)

    def _u(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(pts @ self.frame.u)

    def _bases(self) -> np.ndarray:
        n = len(self.rest)
        bases = np.zeros((len(BASIS_PARAMS), n, 2), np.float32)
        builders = {
            "jaw_open": self._jaw,
            "lip_width": self._lip_width,
            "lip_round": self._lip_round,
            "lip_press": self._lip_press,
            "upper_lip_raise": self._upper_lip_raise,
            "smile": self._smile,
            "brow_raise": self._brow_raise,
            "blink_left": lambda: self._blink("left"),
            "blink_right": lambda: self._blink("right"),
            "gaze_x": lambda: self._gaze(axis=0),
            "gaze_y": lambda: self._gaze(axis=1),
            "lip_close": lambda: self._lip_press(thin=0.0),
        }
        bands = [self._lip_band(side) for side in ("upper", "lower")]
        for i, name in enumerate(BASIS_PARAMS):
            bases[i] = builders[name]()
            for band in bands:
                band(bases[i])
        return bases

    def _lip_band(self, side: str) -> Callable[[np.ndarray], None]:
        """The landmarks inside one lip (between its inner and outer contour) move as the lip
        does: each takes the contours' displacements, blended by where it lies between them.
        The motion rules only move the contours; left alone, a lip's inner rows would lag
        behind them and stretch or fold the lip's texture (visible on drawn, flat lips)."""
        m, pts = self.mesh, self.rest[:, :2]
        inner, outer = m.region(f"inner_lip_{side}"), m.region(f"outer_lip_{side}")
        poly = np.concatenate([pts[outer], pts[inner][::-1]]).astype(np.float32)
        contour = {
            int(i) for name in ("inner_lip_upper", "inner_lip_lower", "outer_lip_upper",
                                "outer_lip_lower") for i in m.region(name)
        }  # fmt: skip
        members = np.array(
            [
                i for i in m.region("face_surface")
                if i not in contour and cv2.pointPolygonTest(poly, _point(pts[i]), False) > 0
            ],
            dtype=np.int64,
        )  # fmt: skip
        if len(members) == 0:
            return lambda basis: None
        u = self._u(pts[members])
        iu, ou = self._u(pts[inner]), self._u(pts[outer])
        iv = np.interp(u, *_by_u(iu, self._v(pts[inner])))
        ov = np.interp(u, *_by_u(ou, self._v(pts[outer])))
        span = np.where(np.abs(ov - iv) > 1e-3, ov - iv, 1e-3)
        t = np.clip((self._v(pts[members]) - iv) / span, 0.0, 1.0)

        def follow(basis: np.ndarray) -> None:
            for c in range(2):
                di = np.interp(u, *_by_u(iu, basis[inner, c]))
                do = np.interp(u, *_by_u(ou, basis[outer, c]))
                basis[members, c] = (1 - t) * di + t * do

        return follow

    def _along(self, du: np.ndarray, dv: np.ndarray) -> np.ndarray:
        """Displacements given in face axes -> image axes, shape (V, 2)."""
        return (du[:, None] * self.frame.u[None, :] + dv[:, None] * self.frame.v[None, :]).astype(
            np.float32
        )

    def _mouth_falloff(self, radius: float) -> np.ndarray:
        d = np.linalg.norm(self.rest[:, :2] - self.frame.mouth_centre, axis=1)
        w = np.exp(-((d / (radius * self.frame.mouth_width)) ** 2))
        w[self._not_face()] = 0.0
        return w

    def _not_face(self) -> np.ndarray:
        mask = np.ones(len(self.rest), bool)
        mask[self.mesh.region("landmarks")] = False
        return mask

    def _seam_v(self, u: np.ndarray) -> np.ndarray:
        """v of the line where the lips meet, at each u (flat beyond the mouth corners)."""
        up = self.rest[self.mesh.region("inner_lip_upper"), :2]
        lo = self.rest[self.mesh.region("inner_lip_lower"), :2]
        mid = (up + lo) / 2
        mu, mv = self._u(mid), self._v(mid)
        order = np.argsort(mu)
        return np.interp(u, mu[order], mv[order])

    def _jaw(self) -> np.ndarray:
        """The jaw rotates about the ear axis: in a frontal view a point drops in proportion to
        how far in front of that axis it is (its depth), the lower lip and chin the most."""
        m, fh = self.mesh, self.frame.face_height
        pts = self.rest[:, :2]
        below = self._v(pts) - self._seam_v(self._u(pts))
        weight = np.clip((below + 0.02 * fh) / (0.12 * fh), 0.0, 1.0)
        weight = weight * weight * (3 - 2 * weight)
        weight[self._not_face()] = 0.0
        weight[m.region("inner_lip_upper")] = 0.0
        weight[m.region("outer_lip_upper")] = 0.0
        # The lower lip drops most in the middle: the opening rounds off into the corners instead
        # of ending in a steep step beside them.
        rel_u = (self._u(pts) - self._u(self.frame.mouth_centre[None])[0]) / (
            0.5 * self.frame.mouth_width
        )
        lip_profile = 0.3 + 0.7 * (1.0 - np.clip(np.abs(rel_u), 0.0, 1.0) ** 1.6)
        for name in ("inner_lip_lower", "outer_lip_lower"):
            weight[m.region(name)] = lip_profile[m.region(name)]
        # Below the lower lip the skin rides with it (the jaw is one bone): no shear across the
        # lip's lower edge, which would smear it.
        outer = self.rest[m.region("outer_lip_lower"), :2]
        ou, ov = self._u(outer), self._v(outer)
        order = np.argsort(ou)
        lip_v = np.interp(self._u(pts), ou[order], ov[order], left=np.inf, right=np.inf)
        under = (self._v(pts) > lip_v) & ~self._not_face()
        weight[under] = np.maximum(weight[under], lip_profile[under])
        corners = _corners(m)
        weight[corners] = 0.45
        ear_depth = self._ear_depth()
        lower_lip = self.rest[m.region("inner_lip_lower")[len(m.region("inner_lip_lower")) // 2]]
        depth = np.clip(ear_depth - self.rest[:, 2], 0.0, None) / max(
            1e-3, ear_depth - lower_lip[2]
        )
        depth = np.clip(depth, 0.0, 1.1)
        # The lower lip is carried as one piece (a depth-scaled drop would stretch it).
        lips = np.concatenate([m.region("inner_lip_lower"), m.region("outer_lip_lower")])
        depth[lips] = 1.0
        drop = JAW_DROP * fh * weight * depth
        du = np.zeros(len(pts), np.float32)
        # The corners slide inwards a little as the jaw drops (the mouth becomes taller and
        # narrower), and the neck region below the chin follows partly via the surrounding mesh.
        du[corners] = -np.sign(
            self._u(pts[corners]) - self._u(self.frame.mouth_centre[None])[0]
        ) * (0.04 * self.frame.mouth_width)
        dv = drop
        dv[m.region("inner_lip_upper")] = -UPPER_LIP_WITH_JAW * fh
        dv[corners] = drop[corners]
        return self._along(du, dv)

    def _ear_depth(self) -> float:
        """Depth of the jaw hinge: the far side of the face outline (ears, jaw angles)."""
        oval = self.rest[self.mesh.region("face_oval")]
        return float(np.percentile(oval[:, 2], 80))

    def _lip_width(self) -> np.ndarray:
        pts = self.rest[:, :2]
        rel_u = (self._u(pts) - self._u(self.frame.mouth_centre[None])[0]) / (
            self.frame.mouth_width / 2
        )
        fall = self._mouth_falloff(0.75)
        du = LIP_WIDTH * self.frame.mouth_width * np.clip(rel_u, -1.3, 1.3) * fall
        return self._along(du, np.zeros_like(du))

    def _lip_round(self) -> np.ndarray:
        m, fh = self.mesh, self.frame.face_height
        pts = self.rest[:, :2]
        rel_u = (self._u(pts) - self._u(self.frame.mouth_centre[None])[0]) / (
            self.frame.mouth_width / 2
        )
        fall = self._mouth_falloff(0.7)
        du = -LIP_ROUND_IN * self.frame.mouth_width * np.clip(rel_u, -1.2, 1.2) * fall
        dv = np.zeros_like(du)
        centre_profile = np.clip(1.0 - np.abs(rel_u), 0.0, 1.0)
        up, lo = m.region("outer_lip_upper"), m.region("outer_lip_lower")
        dv[up] -= LIP_ROUND_POUT * fh * centre_profile[up]
        dv[lo] += LIP_ROUND_POUT * fh * centre_profile[lo]
        return self._along(du, dv)

    def _lip_press(self, thin: float = LIP_PRESS_THIN) -> np.ndarray:
        """Inner lips meet on the seam (closing any gap the photo has) and the lips thin by
        ``thin`` (not at all for a relaxed close)."""
        m = self.mesh
        pts = self.rest[:, :2]
        dv = np.zeros(len(pts), np.float32)
        seam = self._seam_v(self._u(pts))
        v = self._v(pts)
        for inner, outer in (
            ("inner_lip_upper", "outer_lip_upper"),
            ("inner_lip_lower", "outer_lip_lower"),
        ):
            i_idx, o_idx = m.region(inner), m.region(outer)
            dv[i_idx] = seam[i_idx] - v[i_idx]
            thickness = v[i_idx] - v[o_idx]
            dv[o_idx] = thin * thickness + dv[i_idx] * 0.5
        corners = _corners(m)
        dv[corners] = 0.0
        return self._along(np.zeros_like(dv), dv)

    def _upper_lip_raise(self) -> np.ndarray:
        m, fh = self.mesh, self.frame.face_height
        pts = self.rest[:, :2]
        rel_u = (self._u(pts) - self._u(self.frame.mouth_centre[None])[0]) / (
            self.frame.mouth_width / 2
        )
        profile = np.clip(1.0 - rel_u**2, 0.0, 1.0)
        dv = np.zeros(len(pts), np.float32)
        for name, amount in (("inner_lip_upper", 1.0), ("outer_lip_upper", 0.6)):
            idx = m.region(name)
            dv[idx] = -UPPER_LIP_RAISE * fh * amount * profile[idx]
        return self._along(np.zeros_like(dv), dv)

    def _smile(self) -> np.ndarray:
        m, fh = self.mesh, self.frame.face_height
        pts = self.rest[:, :2]
        du = np.zeros(len(pts), np.float32)
        dv = np.zeros(len(pts), np.float32)
        mc_u = self._u(self.frame.mouth_centre[None])[0]
        for corner in (m.region("outer_lip_upper")[0], m.region("outer_lip_upper")[-1]):
            d = np.linalg.norm(pts - pts[corner], axis=1) / (0.45 * self.frame.mouth_width)
            w = np.exp(-(d**2))
            w[self._not_face()] = 0.0
            side = np.sign(self._u(pts[corner][None])[0] - mc_u)
            du += side * SMILE_OUT * self.frame.mouth_width * w
            dv -= SMILE_UP * fh * w
        for cheek in m.region("cheeks"):
            d = np.linalg.norm(pts - pts[cheek], axis=1) / (0.5 * self.frame.mouth_width)
            w = np.exp(-(d**2))
            w[self._not_face()] = 0.0
            dv -= 0.012 * fh * w
        return self._along(du, dv)

    def _brow_raise(self) -> np.ndarray:
        m, fh = self.mesh, self.frame.face_height
        pts = self.rest[:, :2]
        dv = np.zeros(len(pts), np.float32)
        for side in ("right", "left"):
            brow = m.region(f"{side}_brow")
            centre = pts[brow].mean(axis=0)
            width = np.ptp(self._u(pts[brow])) + 1e-3
            d = np.linalg.norm(pts - centre, axis=1) / (0.75 * width)
            w = np.exp(-(d**2))
            w[self._not_face()] = 0.0
            # Skin below the brow follows less (the eye stays put); above it, the forehead.
            above = self._v(pts) < self._v(centre[None])[0]
            w = np.where(above, w * 0.8, w * 0.5)
            w[brow] = 1.0
            w[m.region(f"{side}_eye_upper")] = 0.0
            w[m.region(f"{side}_eye_lower")] = 0.0
            w[m.region(f"{side}_iris")] = 0.0
            dv = np.minimum(dv, -BROW_UP * fh * w)
        return self._along(np.zeros_like(dv), dv)

    def _blink(self, side: str) -> np.ndarray:
        m = self.mesh
        pts = self.rest[:, :2]
        disp = np.zeros((len(pts), 2), np.float32)
        upper, lower = m.region(f"{side}_eye_upper"), m.region(f"{side}_eye_lower")
        fold = m.region(f"{side}_lid_fold")
        meet = pts[upper] + LID_MEET * (pts[lower] - pts[upper])
        inner = slice(1, len(upper) - 1)  # the eye corners stay where they are
        disp[upper[inner]] = meet[inner] - pts[upper[inner]]
        disp[lower[inner]] = meet[inner] - pts[lower[inner]]
        disp[fold[inner]] = FOLD_FOLLOW * (meet[inner] - pts[upper[inner]])
        # Iris points inside the eye collapse onto the line where the lids meet.
        mu, mv = self._u(meet), self._v(meet)
        order = np.argsort(mu)
        for i in m.region(f"{side}_iris"):
            target_v = np.interp(self._u(pts[i][None])[0], mu[order], mv[order])
            disp[i] = (target_v - self._v(pts[i][None])[0]) * self.frame.v
        return disp

    def _gaze(self, *, axis: int) -> np.ndarray:
        m = self.mesh
        pts = self.rest[:, :2]
        disp = np.zeros((len(pts), 2), np.float32)
        for side in ("right", "left"):
            upper, lower = m.region(f"{side}_eye_upper"), m.region(f"{side}_eye_lower")
            eye_w = float(np.ptp(self._u(pts[np.concatenate([upper, lower])])))
            eye_h = float(np.max(self._v(pts[lower])) - np.min(self._v(pts[upper])))
            amount = GAZE_X * eye_w if axis == 0 else GAZE_Y * eye_h
            direction = self.frame.u if axis == 0 else self.frame.v
            disp[m.region(f"{side}_iris")] = amount * direction
        return disp


def _point(xy: np.ndarray) -> tuple[float, float]:
    return float(xy[0]), float(xy[1])


def _by_u(u: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(u)
    return u[order], values[order]


def _corners(mesh: RigMesh) -> np.ndarray:
    return np.array(
        [
            mesh.region("outer_lip_upper")[0],
            mesh.region("outer_lip_upper")[-1],
            mesh.region("inner_lip_upper")[0],
            mesh.region("inner_lip_upper")[-1],
        ]
    )


def _face_frame(mesh: RigMesh, rest: np.ndarray) -> FaceFrame2D:
    pts = rest[:, :2]
    right_eye = pts[
        np.concatenate([mesh.region("right_eye_upper"), mesh.region("right_eye_lower")])
    ]
    left_eye = pts[np.concatenate([mesh.region("left_eye_upper"), mesh.region("left_eye_lower")])]
    u = left_eye.mean(axis=0) - right_eye.mean(axis=0)
    u = u / (np.linalg.norm(u) + 1e-6)
    v = np.array([-u[1], u[0]], np.float32)
    face_height = float(
        np.linalg.norm(pts[mesh.region("forehead_top")[0]] - pts[mesh.region("chin")[0]])
    )
    inner = np.concatenate([mesh.region("inner_lip_upper"), mesh.region("inner_lip_lower")])
    mouth_centre = pts[inner].mean(axis=0)
    outer_up = mesh.region("outer_lip_upper")
    mouth_width = float(np.linalg.norm(pts[outer_up[0]] - pts[outer_up[-1]]))
    return FaceFrame2D(u.astype(np.float32), v, face_height, mouth_centre, mouth_width)
