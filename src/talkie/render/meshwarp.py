"""The default CPU renderer: a 2.5-D mesh-warp puppet of the photo.

Per frame: deform the mesh (``FaceDeformer``), rasterise the moving triangles into a half-resolution
triangle-id map, turn it into an exact piecewise-affine backward map, upsample it, ``cv2.remap``
only the region that moves (person colour premultiplied by its matte), composite that over the
static background plate, and paint the mouth interior into the opened lips.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from talkie.messages import FaceParams
from talkie.render.deform import FaceDeformer
from talkie.render.eyes import EyelidPainter
from talkie.render.framing import Stage, frame_rig
from talkie.render.mouth import MouthPainter
from talkie.render.raster import polygon_ids, span_ids
from talkie.rig.model import CharacterRig

log = logging.getLogger(__name__)

MAP_STEP = 2  # backward map resolution: one sample per 2x2 output pixels


@dataclass(frozen=True)
class RenderOptions:
    size: tuple[int, int] = (1280, 720)
    map_step: int = MAP_STEP
    # teeth where the photo shows none: "drawn" from its colours, or "donor" (real teeth from
    # scikit-image's astronaut, fitted and colour-matched; measured in bench/looks.py)
    teeth: str = "drawn"
    # triangle-id maps: "spans" (vectorised) or "polygons" (one cv2 call per triangle, the
    # reference it is tested against; see talkie.render.raster)
    rasteriser: str = "spans"
    # A frame whose mesh moved less than this many output pixels since the last frame drawn
    # (and whose blinks and tongue did not change) is that frame again. An idle or listening
    # face drifts 0.07-0.27 px a frame, so about half of its frames are not drawn again: a
    # quarter-pixel step is not visible. 0 draws every frame.
    still_px: float = 0.25


class MeshWarpRenderer:
    """``Renderer`` for one rig at one output size. ``render`` is safe to call from one worker
    thread at a time (it reuses buffers); make one renderer per thread for parallel rendering."""

    def __init__(self, rig: CharacterRig, *, options: RenderOptions | None = None) -> None:
        self.options = options or RenderOptions()
        self.size = self.options.size
        w, h = self.size
        if w < 64 or h < 64 or w > 4096 or h > 4096:
            raise ValueError(f"output size {w}x{h} is outside 64..4096 pixels per side")
        if self.options.teeth not in ("drawn", "donor"):
            raise ValueError(f"teeth must be 'drawn' or 'donor', not {self.options.teeth!r}")
        if self.options.rasteriser not in _RASTERISERS:
            raise ValueError(
                f"rasteriser must be one of {sorted(_RASTERISERS)}, not {self.options.rasteriser!r}"
            )
        self._triangle_ids = _RASTERISERS[self.options.rasteriser]
        self.stage, self._person = prepare_stage(rig, self.size)
        self._plate = self.stage.plate
        vertices = self.stage.to_output(rig.mesh.vertices)
        self.deformer = FaceDeformer(mesh=rig.mesh, vertices=vertices)
        self.rest = self.deformer.rest[:, :2].copy()
        self.eyelids = EyelidPainter(mesh=rig.mesh, stage=self.stage, rest=self.rest)
        self.mouth = MouthPainter(
            mesh=rig.mesh,
            stage=self.stage,
            rest=self.rest,
            deformer=self.deformer,
            teeth=self.options.teeth,
        )

        # Only triangles touching a vertex that can move are ever re-rasterised. They are drawn
        # layer by layer (lips cover the mouth hole, lids the eyes) and, within a layer, far to
        # near: where a head turn folds the skin near the silhouette, the nearer skin wins.
        tris = rig.mesh.triangles
        moving = self.deformer.moving[tris].any(axis=1)
        depth = self.deformer.rest[tris[moving], 2].mean(axis=1)
        order = np.lexsort((-depth, rig.mesh.layers[moving]))
        self.triangles = tris[moving][order]
        self.rest_tris = self.rest[self.triangles]  # (T, 3, 2)
        self._lock = threading.Lock()
        # the last frame drawn: its mesh, the paint-only parameters, the image
        self._last: tuple[np.ndarray, tuple[float, float, float], np.ndarray] | None = None
        self.frames_reused = 0

    def render(self, params: FaceParams) -> np.ndarray:
        """One RGB uint8 frame of ``size`` for ``params``."""
        with self._lock:
            return self._render(params)

    def deformed_vertices(self, params: FaceParams) -> np.ndarray:
        """Where every mesh vertex lands for ``params``, in output pixels (V, 2)."""
        return self.deformer.deform(params)

    # ---------------------------------------------------------------------------------------

    def _render(self, params: FaceParams) -> np.ndarray:
        verts = self.deformer.deform(params)
        painted = (params.blink_left, params.blink_right, params.tongue)
        last = self._last
        if last is not None and self.options.still_px > 0:
            last_verts, last_painted, last_frame = last
            if (
                float(np.abs(verts - last_verts).max()) < self.options.still_px
                and max(abs(a - b) for a, b in zip(painted, last_painted, strict=True)) < 0.01
            ):
                self.frames_reused += 1
                return last_frame.copy()  # callers own their frames
        frame = self._draw(verts, params)
        self._last = (verts, painted, frame.copy())
        return frame

    def _draw(self, verts: np.ndarray, params: FaceParams) -> np.ndarray:
        frame = self.stage.canvas.copy()
        dst_tris = verts[self.triangles]
        roi = self._roi(dst_tris)
        if roi is None:
            return frame
        x0, y0, x1, y1 = roi
        map_x, map_y = self._backward_map(dst_tris, roi)
        warped = cv2.remap(
            self._person, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        plate = self._plate[y0:y1, x0:x1]
        # Contiguous channel copies (not numpy's strided views, which OpenCV copies slowly) and
        # the sum written straight into the frame: the same pixels, 4-5x less time.
        alpha = cv2.cvtColor(cv2.extractChannel(warped, 3), cv2.COLOR_GRAY2RGB)
        behind = cv2.subtract(plate, cv2.multiply(plate, alpha, scale=1.0 / 255.0))
        cv2.add(cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB), behind, dst=frame[y0:y1, x0:x1])
        self.mouth.paint(frame, verts, params)
        self.eyelids.paint(frame, verts, (params.blink_right, params.blink_left))
        return frame

    def _roi(self, dst_tris: np.ndarray) -> tuple[int, int, int, int] | None:
        """Bounding box (x0, y0, x1, y1) of everything that moved, rest and deformed."""
        moved = np.abs(dst_tris - self.rest_tris).max(axis=(1, 2)) > 0.05
        if not moved.any():
            return None
        pts = np.concatenate([dst_tris[moved], self.rest_tris[moved]]).reshape(-1, 2)
        w, h = self.size
        step = self.options.map_step
        x0 = int(max(0, np.floor(pts[:, 0].min()) - 2)) // step * step
        y0 = int(max(0, np.floor(pts[:, 1].min()) - 2)) // step * step
        x1 = int(min(w, np.ceil(pts[:, 0].max()) + 3))
        y1 = int(min(h, np.ceil(pts[:, 1].max()) + 3))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        return x0, y0, x1, y1

    def _backward_map(
        self, dst_tris: np.ndarray, roi: tuple[int, int, int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each output pixel in ``roi``: the canvas position it shows (piecewise affine)."""
        x0, y0, x1, y1 = roi
        step = self.options.map_step
        lw, lh = -(-(x1 - x0) // step), -(-(y1 - y0) // step)
        # Low-res sample (i, j) sits at output pixel (x0 + (j + .5) * step - .5, ...), the centre
        # convention cv2.resize uses, so upsampling lands every sample on the right pixel.
        low = np.asarray((dst_tris - np.array([x0, y0], np.float32) + 0.5) / step - 0.5)
        # Slivers (a closed eyelid, a pressed lip) own no pixels; OpenCV would still draw them as
        # lines, with a near-singular (exploding) affine map.
        coeffs, solid = _affine_coeffs(dst_tris, self.rest_tris)  # [x, y, 1] -> source x, y
        ids = self._triangle_ids(low, solid, (lh, lw))

        # Work with displacements (source - output position): they are zero where nothing moves,
        # so upsampling (which clamps at the region's edge) cannot shift still pixels. Each
        # triangle's displacement is affine in the map's own (column, row) indices: three
        # coefficients per axis, gathered per sample (id -1 picks the appended zero row).
        x_at0 = x0 + 0.5 * step - 0.5  # output position of sample column 0 (and row 0 below)
        y_at0 = y0 + 0.5 * step - 0.5
        per_col: np.ndarray = coeffs[:, 0] - np.array([1.0, 0.0], np.float32)  # d(displacement)/dx
        per_row: np.ndarray = coeffs[:, 1] - np.array([0.0, 1.0], np.float32)  # d(displacement)/dy
        at0 = per_col * x_at0 + per_row * y_at0 + coeffs[:, 2]
        # (6, T + 1): per axis the column, row and constant terms, one contiguous row each.
        table = np.concatenate([per_col * step, per_row * step, at0], axis=1).T
        table = np.hstack([table, np.zeros((6, 1), table.dtype)]).astype(np.float32)
        flat = ids.ravel().astype(np.intp)
        cx, cy, rx, ry, ox, oy = (np.take(row, flat).reshape(lh, lw) for row in table)
        cols = np.arange(lw, dtype=np.float32)[None, :]
        rows = np.arange(lh, dtype=np.float32)[:, None]
        dx = cx * cols + rx * rows + ox
        dy = cy * cols + ry * rows + oy
        width, height = x1 - x0, y1 - y0
        if step > 1:
            big = (lw * step, lh * step)
            dx = cv2.resize(dx, big, interpolation=cv2.INTER_LINEAR)
            dy = cv2.resize(dy, big, interpolation=cv2.INTER_LINEAR)
        map_x = dx[:height, :width] + np.arange(x0, x1, dtype=np.float32)[None, :]
        map_y = dy[:height, :width] + np.arange(y0, y1, dtype=np.float32)[:, None]
        return map_x, map_y


_RASTERISERS = {"spans": span_ids, "polygons": polygon_ids}

# The framed rig and its person layer take ~0.6 s to build and are the same for every session
# of a character at one size: a process keeps the last few (read-only; renderers share them),
# and a warm session worker builds them before its session (talkie.server.hosts).
_PREPARED_KEPT = 4
_prepared: dict[tuple[bytes, tuple[int, int]], tuple[Stage, np.ndarray]] = {}
_prepared_lock = threading.Lock()


def prepare_stage(rig: CharacterRig, size: tuple[int, int]) -> tuple[Stage, np.ndarray]:
    """``rig`` framed at ``size`` and its premultiplied RGBA person layer, built once per
    process for each rig (by content, so a rig unpickled in another process matches)."""
    key = (_fingerprint(rig), (int(size[0]), int(size[1])))
    with _prepared_lock:
        found = _prepared.pop(key, None)
        if found is not None:
            _prepared[key] = found  # most recently used last
            return found
    stage = frame_rig(rig, size)
    prepared = (stage, _person_layer(stage))
    for array in (stage.canvas, stage.plate, stage.alpha, prepared[1]):
        array.flags.writeable = False  # shared by every renderer of this rig
    with _prepared_lock:
        _prepared[key] = prepared
        while len(_prepared) > _PREPARED_KEPT:
            _prepared.pop(next(iter(_prepared)))
    return prepared


def prepared_stages() -> int:
    """How many framed rigs this process holds ready (warm-up reports and tests)."""
    with _prepared_lock:
        return len(_prepared)


def _fingerprint(rig: CharacterRig) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for array in (rig.image, rig.alpha, rig.plate, rig.mesh.vertices, rig.face.points):
        digest.update(str((array.shape, array.dtype)).encode())
        digest.update(np.ascontiguousarray(array).data)
    digest.update(repr(rig.crop).encode())
    return digest.digest()


def _person_layer(stage: Stage) -> np.ndarray:
    # Premultiplied person layer: composite(P, A, plate) reproduces the canvas exactly at rest,
    # so a still face matches the photo and the region edge leaves no seam.
    # Alpha is raised to the least value that explains each photo pixel as some colour over
    # the plate (the plate is inpainted a little beyond the matte, darker or brighter than the
    # photo there): premultiplied colour then never clips, the composite reproduces the
    # photo exactly at rest, and the fringe moves with the head instead of ghosting.
    canvas = stage.canvas.astype(np.float32)
    plate = stage.plate.astype(np.float32)
    darker = (plate - canvas) / np.maximum(plate, 1.0)
    brighter = (canvas - plate) / np.maximum(255.0 - plate, 1.0)
    needed = np.clip(np.max(np.maximum(darker, brighter), axis=2), 0.0, 1.0)
    a = np.maximum(stage.alpha.astype(np.float32) / 255.0, needed)[..., None]
    premult = np.clip(canvas - (1.0 - a) * plate + 0.5, 0, 255).astype(np.uint8)
    alpha = np.clip(a[..., 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.dstack([premult, alpha]))


def _affine_coeffs(dst: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle, the affine map taking its deformed corners back to its rest corners,
    as (T, 3, 2) coefficients (``[x, y, 1] @ c``), and whether the triangle has enough area to
    be drawn.

    Closed form (a 2x2 inverse per triangle) rather than a batched LAPACK solve: BLAS thread
    pools spin between calls and, at 24 calls a second, kept a core busy. Triangles under a
    quarter pixel of area get the identity.
    """
    d1, d2 = dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]
    det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    solid = 0.5 * np.abs(det) >= 0.25
    inv_det = np.where(solid, 1.0 / np.where(solid, det, 1.0), 0.0)
    s1, s2 = src[:, 1] - src[:, 0], src[:, 2] - src[:, 0]
    # M = S inv(D); D = [d1 d2], S = [s1 s2] (columns); inv(D) = [[d2y, -d2x], [-d1y, d1x]] / det
    m_x = (s1 * d2[:, 1:2] - s2 * d1[:, 1:2]) * inv_det[:, None]  # M[:, 0] (multiplies x)
    m_y = (s2 * d1[:, 0:1] - s1 * d2[:, 0:1]) * inv_det[:, None]  # M[:, 1] (multiplies y)
    t = src[:, 0] - m_x * dst[:, 0, 0:1] - m_y * dst[:, 0, 1:2]
    coeffs = np.stack([m_x, m_y, t], axis=1).astype(np.float32)
    coeffs[~solid] = np.eye(3, 2, dtype=np.float32)
    return coeffs, solid
