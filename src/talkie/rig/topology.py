"""Face topology: which landmark indices form which facial region, and the face triangles.

Indices follow MediaPipe's 478-point face mesh (468 surface points + 10 iris points). "Right" and
"left" are the *character's*: the character's right eye appears on the image's left.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

N_FACE_LANDMARKS = 478

# Lip contours run from the character's right mouth corner (image left) to the left corner.
OUTER_LIP_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LIP_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
INNER_LIP_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LIP_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

# Eye contours run from the outer to the inner corner along the lid.
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
# The skin fold just above each upper lid; it travels part of the way with a blink.
RIGHT_LID_FOLD = (130, 247, 30, 29, 27, 28, 56, 190, 243)
LEFT_LID_FOLD = (359, 467, 260, 259, 257, 258, 286, 414, 463)
RIGHT_IRIS = (468, 469, 470, 471, 472)  # centre first
LEFT_IRIS = (473, 474, 475, 476, 477)

RIGHT_BROW = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
LEFT_BROW = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)

# Closed loop around the face, clockwise from the top of the forehead.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
FOREHEAD_TOP = 10
CHIN = 152
NOSE_TIP = 1
RIGHT_CHEEK = 50
LEFT_CHEEK = 280


@lru_cache(maxsize=1)
def surface_triangles() -> np.ndarray:
    """The triangles of MediaPipe's face surface (eyes and mouth are holes), as (T, 3) int32.

    MediaPipe publishes the tessellation as edges; its faces are the 3-cliques of that graph.
    """
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    edges = {tuple(sorted(e)) for e in FACEMESH_TESSELATION}
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    triangles = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
    # Two 3-cliques are not faces: at each nostril wing four points are all connected, and the
    # outer triangle of the four (which contains the fourth point) would overlap the real ones.
    triangles -= _NOT_FACES
    return np.array(sorted(triangles), dtype=np.int32)


_NOT_FACES = {(49, 64, 129), (279, 294, 358)}


def strip_triangles(upper: tuple[int, ...], lower: tuple[int, ...]) -> np.ndarray:
    """Triangulate the band between two contours that share their end points.

    Used to close the mouth and eye holes: each quad between neighbouring pairs becomes two
    triangles, so the band opens and closes without any triangle flipping over.
    """
    assert upper[0] == lower[0] and upper[-1] == lower[-1] and len(upper) == len(lower)
    tris: list[tuple[int, int, int]] = [(upper[0], upper[1], lower[1])]
    for i in range(1, len(upper) - 2):
        tris.append((upper[i], upper[i + 1], lower[i]))
        tris.append((upper[i + 1], lower[i + 1], lower[i]))
    tris.append((upper[-2], upper[-1], lower[-2]))
    return np.array(tris, dtype=np.int32)
