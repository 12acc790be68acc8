"""One image -> ``CharacterRig``: find the face, landmarks, person matte, background plate, mesh."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from talkie.errors import ImplausibleFaceError, NoFaceFoundError
from talkie.rig import detect
from talkie.rig import topology as topo
from talkie.rig.mesh import build_landmark_mesh
from talkie.rig.model import CharacterRig, FacePoints
from talkie.rig.plausibility import check_face

log = logging.getLogger(__name__)

# The working image is cropped around the face (room for hair, shoulders and head motion) and
# resized so the face box is at most this many pixels: enough for 1080p output, small enough to
# keep rig time and rig files small for 20-megapixel photos.
MAX_FACE_PX = 400
CROP_LEFT_RIGHT, CROP_ABOVE, CROP_BELOW = 2.6, 2.0, 3.4  # in face-box sizes
MAX_CANDIDATES = 6  # candidate faces verified with the landmark model
MIN_FACE_PX = 32  # forehead to chin; smaller faces give too few pixels to animate

NO_FACE_HELP = (
    "use a clear photo in which one face is visible from the front, at least 32 pixels tall "
    "and not cut off by the border; for a drawing, animal or mascot, place the face points by "
    "hand instead (a manual rig)"
)

Progress = Callable[[str], None]


@dataclass(frozen=True, eq=False)
class _Located:
    """A verified face: the working crop around it and its landmarks in that crop."""

    working: np.ndarray
    landmarks: np.ndarray
    x0: int
    y0: int
    scale: float
    box: detect.FaceBox | None


def build_rig(image: np.ndarray, *, progress: Progress | None = None) -> CharacterRig:
    """Rig an RGB uint8 image. Raises ``NoFaceFoundError`` when no usable face is visible."""
    say = progress or (lambda _msg: None)
    height, width = image.shape[:2]
    notes: list[str] = []

    say("finding faces")
    candidates = detect.detect_faces(image)
    say("placing face landmarks")
    found = [f for f in (_locate(image, box) for box in candidates[:MAX_CANDIDATES]) if f]
    if not found:
        # A close-up can defeat the detectors; the landmark model's own detector may still
        # see it in the whole image.
        whole = _locate(image, None)
        found = [whole] if whole else []
    if not found:
        raise NoFaceFoundError(f"no face found in the image; {NO_FACE_HELP}")
    face = found[0]
    if len(found) > 1 and face.box is not None:
        b = face.box
        notes.append(
            f"found {len(found)} faces; animating the most prominent one "
            f"({b.w:.0f}x{b.h:.0f} px at {b.x:.0f},{b.y:.0f})"
        )
    _check_face(face.landmarks, face.working.shape[1], face.working.shape[0])
    say("checking the face")
    plausible = check_face(face.working, face.landmarks)
    if not plausible.ok:
        log.info("implausible face mesh: %s (%s)", plausible.problems, plausible.scores)
        raise ImplausibleFaceError(
            f"the face found does not fit the picture ({'; '.join(plausible.problems)}); "
            "place the face points by hand (a manual rig)"
        )
    return rig_from_landmarks(
        face.working,
        face.landmarks,
        source="mediapipe",
        crop=(face.x0, face.y0, face.scale),
        source_size=(width, height),
        notes=notes,
        progress=say,
    )


def rig_from_landmarks(
    working: np.ndarray,
    landmarks: np.ndarray,
    *,
    source: str,
    crop: tuple[float, float, float],
    source_size: tuple[int, int],
    notes: Sequence[str] = (),
    progress: Progress | None = None,
) -> CharacterRig:
    """The rest of the rig once the 478 landmarks are known, whoever placed them (the landmark
    model, or a fit to hand-placed points): person matte, background plate, mesh.

    ``working`` is the crop of the source image the rig animates, ``landmarks`` (478, 3) are in
    its pixels, ``crop`` is (x0, y0, scale) from source to working pixels.
    """
    say = progress or (lambda _msg: None)
    say("separating the person from the background")
    alpha = _person_alpha(working, landmarks)
    plate = _background_plate(working, alpha)

    say("building the mesh")
    mesh = build_landmark_mesh(landmarks, (working.shape[1], working.shape[0]))
    return CharacterRig(
        image=working,
        alpha=alpha,
        plate=plate,
        face=FacePoints(landmarks, source),
        mesh=mesh,
        crop=(float(crop[0]), float(crop[1]), float(crop[2])),
        source_size=source_size,
        notes=tuple(notes),
    )


def crop_around(
    image: np.ndarray, cx: float, cy: float, size: float, scale: float
) -> tuple[np.ndarray, int, int]:
    """The working image for a face of ``size`` source pixels centred at (cx, cy): the source
    cropped with room for hair, shoulders and head motion, resized by ``scale``; and the crop's
    top-left corner (x0, y0) in the source."""
    height, width = image.shape[:2]
    x0 = max(0, int(cx - CROP_LEFT_RIGHT * size))
    x1 = min(width, int(cx + CROP_LEFT_RIGHT * size))
    y0 = max(0, int(cy - CROP_ABOVE * size))
    y1 = min(height, int(cy + CROP_BELOW * size))
    crop = image[y0:y1, x0:x1]
    working = cv2.resize(
        crop,
        (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    return working, x0, y0


def _locate(image: np.ndarray, box: detect.FaceBox | None) -> _Located | None:
    """Crop the working image around a candidate face and place its landmarks, or None when
    the landmark model finds no face there (a false detection)."""
    height, width = image.shape[:2]
    if box is not None:
        cx, cy = box.centre
        size = max(box.w, box.h)
        scale = min(1.0, MAX_FACE_PX / size)
    else:
        cx, cy, size = width / 2, height / 2, max(width, height) / CROP_BELOW
        scale = min(1.0, 1600 / max(width, height))
    working, x0, y0 = crop_around(image, cx, cy, size, scale)
    landmarks = _landmarks_near(working, (cx - x0) * scale, (cy - y0) * scale, size * scale)
    if landmarks is None:
        return None
    if box is not None:
        # The landmarks must belong to this candidate, not to a neighbour inside the crop.
        centre = landmarks[:, :2].mean(axis=0) / scale + (x0, y0)
        if np.hypot(*(centre - box.centre)) > 0.75 * size:
            return None
    return _Located(working, landmarks, x0, y0, scale, box)


def _landmarks_near(image: np.ndarray, cx: float, cy: float, size: float) -> np.ndarray | None:
    """Landmarks from a square crop around the face (the mesh model wants the face large in
    its input; detector boxes vary in how much head they include, so two crop sizes are tried),
    falling back to the whole working image."""
    h, w = image.shape[:2]
    for half in (1.0 * size, 0.6 * size):
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(w, int(cx + half)), min(h, int(cy + half))
        if x1 - x0 <= 32 or y1 - y0 <= 32:
            continue
        found = detect.face_landmarks(image[y0:y1, x0:x1])
        if found is not None:
            found[:, 0] += x0
            found[:, 1] += y0
            return found
    return detect.face_landmarks(image)


def _check_face(landmarks: np.ndarray, width: int, height: int) -> None:
    xy = landmarks[:, :2]
    face_h = float(np.linalg.norm(xy[topo.FOREHEAD_TOP] - xy[topo.CHIN]))
    if face_h < MIN_FACE_PX:
        raise NoFaceFoundError(
            f"the face is too small to animate ({face_h:.0f} px tall, need at least "
            f"{MIN_FACE_PX}); "
            "use a larger or closer photo"
        )
    inside = (xy[:, 0] >= -0.05 * width) & (xy[:, 0] <= 1.05 * width)
    inside &= (xy[:, 1] >= -0.05 * height) & (xy[:, 1] <= 1.05 * height)
    if inside.mean() < 0.9:
        raise NoFaceFoundError(
            "the face is cut off by the image border; use a photo that shows the whole face"
        )


def _person_alpha(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Person matte (uint8): the segmenter's mask, with the face itself always solid."""
    mask = detect.person_mask(image)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=1.0)
    # Sharpen the soft segmenter output into a matte with a few-pixel soft edge.
    alpha = np.clip((mask - 0.3) / 0.4, 0.0, 1.0)
    face = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(landmarks[:, :2].astype(np.int32)), 255)
    alpha = np.maximum(alpha, face.astype(np.float32) / 255.0)
    return (alpha * 255.0 + 0.5).astype(np.uint8)


def _background_plate(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The background with the person filled in, from the surrounding background colours.

    Only a thin band next to the head is ever revealed by head motion, so a smooth low-resolution
    fill is enough and keeps rigging fast.
    """
    h, w = image.shape[:2]
    hole = (alpha > 8).astype(np.uint8) * 255
    hole = cv2.dilate(hole, np.ones((5, 5), np.uint8), iterations=2)
    small_scale = min(1.0, 192 / max(h, w))
    sw, sh = max(8, round(w * small_scale)), max(8, round(h * small_scale))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole, (sw, sh), interpolation=cv2.INTER_NEAREST)
    small_hole = cv2.dilate(small_hole, np.ones((3, 3), np.uint8))
    if small_hole.all():
        # No background visible at all (a close-up): a blurred version is the best guess.
        filled = cv2.GaussianBlur(small, (0, 0), 5)
    else:
        filled = cv2.inpaint(small, small_hole, 6, cv2.INPAINT_TELEA)
        filled = cv2.GaussianBlur(filled, (0, 0), 2)
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    keep = (1.0 - cv2.GaussianBlur(hole.astype(np.float32) / 255.0, (0, 0), 2))[..., None]
    plate = image.astype(np.float32) * keep + filled.astype(np.float32) * (1.0 - keep)
    return np.clip(plate + 0.5, 0, 255).astype(np.uint8)
