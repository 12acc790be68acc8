"""Draw a rig over its image, so a person can check where the points landed."""

from __future__ import annotations

import cv2
import numpy as np

from talkie.rig.model import LAYER_FACE, LAYER_HOLES, CharacterRig

# RGB colours per region group.
_REGION_COLOURS = {
    "face_oval": (60, 220, 90),
    "outer_lip_upper": (235, 60, 60),
    "outer_lip_lower": (235, 60, 60),
    "inner_lip_upper": (255, 150, 60),
    "inner_lip_lower": (255, 150, 60),
    "right_eye_upper": (40, 200, 255),
    "right_eye_lower": (40, 200, 255),
    "left_eye_upper": (40, 200, 255),
    "left_eye_lower": (40, 200, 255),
    "right_brow": (255, 220, 40),
    "left_brow": (255, 220, 40),
}
_OPEN_CONTOURS = {
    "outer_lip_upper", "outer_lip_lower", "inner_lip_upper", "inner_lip_lower",
    "right_eye_upper", "right_eye_lower", "left_eye_upper", "left_eye_lower",
}  # fmt: skip


def draw_rig_preview(rig: CharacterRig, *, min_side: int = 900) -> np.ndarray:
    """RGB image: the photo dimmed outside the person, the mesh, regions, irises and notes."""
    scale = max(1.0, min_side / min(rig.size))
    image = rig.image
    if scale > 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    alpha = cv2.resize(rig.alpha, (image.shape[1], image.shape[0]))[..., None] / 255.0
    canvas = (image * (0.45 + 0.55 * alpha)).astype(np.uint8)

    verts = rig.mesh.vertices[:, :2] * scale
    mesh_layer = canvas.copy()
    for tri, layer in zip(rig.mesh.triangles, rig.mesh.layers, strict=True):
        colour = (150, 150, 255) if layer < LAYER_HOLES else (200, 200, 200)
        if layer == LAYER_FACE:
            colour = (230, 230, 230)
        pts = np.round(verts[tri] * 4).astype(np.int32)
        cv2.polylines(mesh_layer, [pts], True, colour, 1, cv2.LINE_AA, 2)
    canvas = cv2.addWeighted(mesh_layer, 0.35, canvas, 0.65, 0)

    thickness = max(1, round(scale))
    for name, colour in _REGION_COLOURS.items():
        idx = rig.mesh.regions.get(name)
        if idx is None or len(idx) < 2:
            continue
        pts = np.round(verts[idx] * 4).astype(np.int32)
        closed = name not in _OPEN_CONTOURS
        cv2.polylines(canvas, [pts], closed, colour, thickness, cv2.LINE_AA, 2)
    for side in ("right_iris", "left_iris"):
        idx = rig.mesh.regions.get(side)
        if idx is not None and len(idx):
            c = verts[idx[0]]
            cv2.circle(
                canvas, (int(c[0]), int(c[1])), 2 * thickness, (255, 60, 255), -1, cv2.LINE_AA
            )

    lines = [f"{rig.face.source} rig, {len(verts)} vertices, {len(rig.mesh.triangles)} triangles"]
    lines += list(rig.notes)
    y = 28
    for text in lines:
        cv2.putText(canvas, text, (12, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(
            canvas, text, (12, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA
        )
        y += 24
    return canvas
