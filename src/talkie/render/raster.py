"""Triangle-id maps for the backward warp: which mesh triangle covers each map sample.

Two rasterisers with one contract (samples sit at integer coordinates of the map; a sample
covered by several triangles shows the one drawn last, i.e. the highest index; -1 where none):

- ``polygon_ids``: one ``cv2.fillConvexPoly`` call per triangle. Simple, but ~1,000 calls per
  frame, and each call releases and re-takes the GIL: beside three sessions' event loops and
  encoders a frame waited for the GIL hundreds of times (5.8 ms of CPU took 20 ms of wall
  time, bench/results/sessions.json before this module).
- ``span_ids``: the same map from ~25 whole-array numpy operations (a scanline rasteriser:
  per triangle and row the covered span from the three edge half-planes, then every span's
  samples at once). A sample exactly on an edge between two triangles goes to either (their
  affine maps agree there); ``fillConvexPoly`` also claims samples up to about half a sample
  outside a triangle, so the two maps differ only along edges, by which neighbour a border
  sample is given to (tests/engine/test_render_raster.py bounds what that changes on frames).
"""

from __future__ import annotations

import cv2
import numpy as np

_SUBPIXEL_BITS = 4  # fillConvexPoly fixed-point precision
# Samples this close (in samples) outside a triangle still count as inside: a sample on a
# shared edge must never fall between two triangles through rounding (it would show unwarped).
_EDGE_SLACK = 1e-3


def polygon_ids(tris: np.ndarray, solid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) int32 triangle ids by ``cv2.fillConvexPoly``; ``tris`` (T, 3, 2) in map samples,
    only ``solid`` triangles drawn, in index order (later wins)."""
    scale = 1 << _SUBPIXEL_BITS
    fixed = np.round(tris * scale).astype(np.int32)
    ids = np.full(shape, -1, np.int32)
    for t in np.flatnonzero(solid):
        cv2.fillConvexPoly(ids, fixed[t], int(t), lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return ids


def span_ids(tris: np.ndarray, solid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) int32 triangle ids, vectorised (see the module docstring); same arguments as
    ``polygon_ids``."""
    h, w = shape
    ids = np.full(h * w, -1, np.int32)
    which = np.flatnonzero(solid)
    if len(which) == 0:
        return ids.reshape(h, w)
    p = tris[which].astype(np.float64)  # (n, 3, 2)
    n = len(which)

    # Each edge bounds a row's span from the left or the right: with the edge's inward normal
    # (a, b) (oriented by the triangle's winding), a sample (x, y) is inside when
    # a * x + b * y + c >= -slack * |edge|, i.e. x >= or <= slope * y + offset for a > 0 or
    # a < 0. Per triangle: three left bounds and three right bounds, the edges that do not
    # bound that side set to -inf / +inf (a horizontal edge bounds no side: the row range
    # below already stops at it).
    start, end = p, np.roll(p, -1, axis=1)  # edges 0-1, 1-2, 2-0
    d = end - start
    area2 = d[:, 0, 0] * d[:, 1, 1] - d[:, 0, 1] * d[:, 1, 0]
    sign = np.where(area2 < 0, -1.0, 1.0)[:, None]
    a = -d[..., 1] * sign
    b = d[..., 0] * sign
    c = (d[..., 1] * start[..., 0] - d[..., 0] * start[..., 1]) * sign
    # Like fillConvexPoly's 8-connected edges, a triangle also claims the samples its edge
    # line passes within half a sample of, along the axis the edge is steeper in (where two
    # triangles overlap at a fold, the later one's edge decides, as it did with OpenCV).
    c += 0.5 * np.maximum(np.abs(d[..., 0]), np.abs(d[..., 1]))
    c += _EDGE_SLACK * np.hypot(d[..., 0], d[..., 1])
    safe = np.where(a == 0, 1.0, a)
    slope, offset = -b / safe, -c / safe
    table = np.empty((12, n))  # left slope, offset x3, right slope, offset x3 (one per row)
    table[0:6:2] = np.where(a > 0, slope, 0.0).T
    table[1:6:2] = np.where(a > 0, offset, -np.inf).T
    table[6:12:2] = np.where(a < 0, slope, 0.0).T
    table[7:12:2] = np.where(a < 0, offset, np.inf).T

    # Rows each triangle spans, and its columns (the widened edges' corners must not reach
    # beyond them: a thin triangle's widened corner would spike out).
    top = np.maximum(np.ceil(p[..., 1].min(axis=1) - 0.5), 0).astype(np.int64)
    bottom = np.minimum(np.floor(p[..., 1].max(axis=1) + 0.5), h - 1).astype(np.int64)
    x_first = np.ceil(p[..., 0].min(axis=1) - 0.5)
    x_last = np.floor(p[..., 0].max(axis=1) + 0.5)
    rows_per = np.maximum(bottom - top + 1, 0)
    tri_of_row = np.repeat(np.arange(n), rows_per)
    row_y = np.arange(len(tri_of_row)) + np.repeat(top - (np.cumsum(rows_per) - rows_per), rows_per)
    y = row_y.astype(np.float64)
    t = table[:, tri_of_row]  # (12, rows)
    lo = np.maximum(np.maximum(t[0] * y + t[1], t[2] * y + t[3]), t[4] * y + t[5])
    hi = np.minimum(np.minimum(t[6] * y + t[7], t[8] * y + t[9]), t[10] * y + t[11])
    left = np.maximum(np.maximum(np.ceil(lo), x_first[tri_of_row]), 0).astype(np.int64)
    right = np.minimum(np.minimum(np.floor(hi), x_last[tri_of_row]), w - 1).astype(np.int64)
    width = np.maximum(right - left + 1, 0)

    # Every covered sample of every span, in triangle order: the span's first sample's flat
    # index, plus 0, 1, 2, ... along the span.
    if len(width) == 0 or not width.any():
        return ids.reshape(h, w)
    first = np.cumsum(width) - width
    row_start = row_y * w + left - first
    flat = np.arange(int(first[-1] + width[-1])) + np.repeat(row_start, width)
    # Later triangles must win. Fancy assignment writes in index order for a 1-D target and
    # index (numpy's documented caveat is about multi-dimensional, buffered cases); the unit
    # tests pin it with overlapping triangles.
    ids[flat] = np.repeat(which[tri_of_row].astype(np.int32), width)
    return ids.reshape(h, w)
