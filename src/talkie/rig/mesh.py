"""Build the animation mesh from 478 face landmarks.

The face itself uses MediaPipe's surface triangles; the mouth and eye holes are closed with strips
that can open and close without flipping; rings of points around the face (hair, ears, neck) and
anchors on the image border are joined with a Delaunay triangulation, so the deformation fades
out smoothly and the border never moves.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay

from talkie.rig import topology as topo
from talkie.rig.model import LAYER_FACE, LAYER_HOLES, LAYER_SURROUND, RigMesh

# How far each ring around the face sits, as a fraction of the centre-to-oval distance.
RING_SCALES = (1.22, 1.6, 2.3)
BORDER_ANCHORS_PER_SIDE = 8


def build_landmark_mesh(landmarks: np.ndarray, image_size: tuple[int, int]) -> RigMesh:
    """Mesh + regions for MediaPipe's 478 landmarks in a working image of (width, height)."""
    if landmarks.shape != (topo.N_FACE_LANDMARKS, 3):
        raise ValueError(f"expected (478, 3) landmarks, got {landmarks.shape}")
    width, height = image_size
    oval_idx = np.array(topo.FACE_OVAL)
    oval = landmarks[oval_idx, :2]
    centre = oval.mean(axis=0)
    back_depth = float(landmarks[oval_idx, 2].mean())

    vertices = [landmarks.astype(np.float32)]
    regions: dict[str, np.ndarray] = {}
    next_index = len(landmarks)
    spacing = 0.012 * max(width, height)
    placed = [landmarks[:, :2]]
    oval_depth = landmarks[oval_idx, 2]
    for k, scale in enumerate(RING_SCALES, start=1):
        # Rings are kept whole (clamped inside the image rather than dropped): the outermost one
        # is where motion stops, and a gap in it would let the fade reach the border.
        ring = centre + (oval - centre) * scale
        ring = np.clip(ring, [2.0, 2.0], [width - 3.0, height - 3.0])
        kept = _far_from(ring, np.concatenate(placed), spacing)
        ring = ring[kept]
        # A ring point is never nearer the camera than the face outline it extends: otherwise a
        # head turn moves it more than the ear next to it and the skin between them folds over.
        depth = np.maximum(oval_depth[kept], back_depth)[:, None]
        vertices.append(np.hstack([ring, depth]).astype(np.float32))
        regions[f"ring{k}"] = np.arange(next_index, next_index + len(ring))
        placed.append(ring)
        next_index += len(ring)

    anchors = _border_anchors(width, height)
    vertices.append(np.hstack([anchors, np.full((len(anchors), 1), back_depth)]).astype(np.float32))
    regions["anchors"] = np.arange(next_index, next_index + len(anchors))
    all_vertices = np.concatenate(vertices)

    surround = _surround_triangles(all_vertices[:, :2], oval_idx, first_outer=len(landmarks))
    holes = np.concatenate(
        [
            topo.strip_triangles(topo.INNER_LIP_UPPER, topo.INNER_LIP_LOWER),
            _eye_triangles(landmarks, topo.RIGHT_EYE_UPPER, topo.RIGHT_EYE_LOWER, topo.RIGHT_IRIS),
            _eye_triangles(landmarks, topo.LEFT_EYE_UPPER, topo.LEFT_EYE_LOWER, topo.LEFT_IRIS),
        ]
    )
    face = topo.surface_triangles()
    triangles = np.concatenate([surround, holes, face]).astype(np.int32)
    layers = np.concatenate(
        [
            np.full(len(surround), LAYER_SURROUND),
            np.full(len(holes), LAYER_HOLES),
            np.full(len(face), LAYER_FACE),
        ]
    ).astype(np.int8)

    named = {
        "outer_lip_upper": topo.OUTER_LIP_UPPER,
        "outer_lip_lower": topo.OUTER_LIP_LOWER,
        "inner_lip_upper": topo.INNER_LIP_UPPER,
        "inner_lip_lower": topo.INNER_LIP_LOWER,
        "right_eye_upper": topo.RIGHT_EYE_UPPER,
        "right_eye_lower": topo.RIGHT_EYE_LOWER,
        "left_eye_upper": topo.LEFT_EYE_UPPER,
        "left_eye_lower": topo.LEFT_EYE_LOWER,
        "right_lid_fold": topo.RIGHT_LID_FOLD,
        "left_lid_fold": topo.LEFT_LID_FOLD,
        "right_iris": topo.RIGHT_IRIS,
        "left_iris": topo.LEFT_IRIS,
        "right_brow": topo.RIGHT_BROW,
        "left_brow": topo.LEFT_BROW,
        "face_oval": topo.FACE_OVAL,
        "face_surface": tuple(range(468)),
        "landmarks": tuple(range(topo.N_FACE_LANDMARKS)),
        "forehead_top": (topo.FOREHEAD_TOP,),
        "chin": (topo.CHIN,),
        "nose_tip": (topo.NOSE_TIP,),
        "cheeks": (topo.RIGHT_CHEEK, topo.LEFT_CHEEK),
    }
    regions.update({k: np.array(v, dtype=np.int32) for k, v in named.items()})
    return RigMesh(all_vertices, triangles, layers, regions)


def _far_from(points: np.ndarray, existing: np.ndarray, min_dist: float) -> np.ndarray:
    """Indices of points at least ``min_dist`` from existing ones and from each other."""
    kept: list[int] = []
    pool = existing
    for i, p in enumerate(points):
        if np.min(np.hypot(*(pool - p).T)) >= min_dist:
            kept.append(i)
            pool = np.vstack([pool, p])
    return np.array(kept, dtype=np.int64)


def _border_anchors(width: int, height: int) -> np.ndarray:
    xs = np.linspace(0, width - 1, BORDER_ANCHORS_PER_SIDE + 1)
    ys = np.linspace(0, height - 1, BORDER_ANCHORS_PER_SIDE + 1)
    top = np.stack([xs, np.zeros_like(xs)], 1)
    bottom = np.stack([xs, np.full_like(xs, height - 1)], 1)
    left = np.stack([np.zeros_like(ys[1:-1]), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], width - 1), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right]).astype(np.float32)


def _surround_triangles(points: np.ndarray, oval_idx: np.ndarray, first_outer: int) -> np.ndarray:
    """Delaunay over the face oval, the rings and the anchors, minus what lies inside the oval."""
    outer = np.arange(first_outer, len(points))
    used = np.concatenate([oval_idx, outer])
    tri = Delaunay(points[used])
    triangles = used[tri.simplices]
    oval_poly = points[oval_idx]
    centroids = points[triangles].mean(axis=1)
    keep = ~_inside_polygon(centroids, oval_poly)
    return triangles[keep]


def _inside_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon test, vectorised over points."""
    x, y = pts[:, 0:1], pts[:, 1:2]
    x0, y0 = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = ((y0 > y) != (y1 > y)) & (x < (x1 - x0) * (y - y0) / (y1 - y0 + 1e-12) + x0)
    return np.asarray(crosses.sum(axis=1) % 2 == 1)


def _eye_triangles(
    landmarks: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...], iris: tuple[int, ...]
) -> np.ndarray:
    """Triangles filling one eye opening, with the iris points that lie inside it as vertices
    (so gaze can move the iris) — or a plain lid-to-lid strip when the iris is not visible."""
    contour = list(upper) + list(lower[-2:0:-1])
    poly = landmarks[contour, :2]
    inner = [i for i in iris if _inside_polygon(landmarks[[i], :2], poly)[0]]
    if iris[0] not in inner:
        return topo.strip_triangles(upper, lower)
    idx = np.array(contour + inner)
    tri = Delaunay(landmarks[idx, :2])
    triangles = idx[tri.simplices]
    centroids = landmarks[triangles, :2].mean(axis=1)
    return triangles[_inside_polygon(centroids, poly)]
