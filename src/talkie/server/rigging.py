"""The point editor's server side: a character's face points (or a first guess of them), the
photo they are placed on, the mesh fitted through moved points, and a test animation.

Errors about points are 422 ``bad_points`` naming the points at fault (``points`` in the error
body), so an editor can highlight them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from talkie.errors import InvalidInputError
from talkie.render.trial import trial_frames
from talkie.rig import build_rig_from_points
from talkie.rig import topology as topo
from talkie.rig.guess import guess_points
from talkie.rig.manual import (
    MANUAL_POINTS,
    POINT_INFO,
    fit_points,
    points_named_in,
    points_of_rig,
)
from talkie.server.auth import Principal
from talkie.server.characters import NEEDS_RIG, CharacterService
from talkie.server.errors import ApiError
from talkie.store import CharacterRecord

_OUTLINES = {
    "face": topo.FACE_OVAL + topo.FACE_OVAL[:1],
    "right_eye": topo.RIGHT_EYE_UPPER + topo.RIGHT_EYE_LOWER[::-1],
    "left_eye": topo.LEFT_EYE_UPPER + topo.LEFT_EYE_LOWER[::-1],
    "lips_outer": topo.OUTER_LIP_UPPER + topo.OUTER_LIP_LOWER[::-1],
    "lips_inner": topo.INNER_LIP_UPPER + topo.INNER_LIP_LOWER[::-1],
    "right_brow": topo.RIGHT_BROW,
    "left_brow": topo.LEFT_BROW,
}
MAX_PHOTO_PNG_PIXELS = 1_500_000  # larger photos go to the editor as JPEG


def may_rig(who: Principal, record: CharacterRecord) -> None:
    """A publishable key (the bundled page's) may place the points of a character it created,
    while those are hand-placed or missing; a detected face is changed only with a secret key."""
    who.require("characters:rig")
    if who.key is None or who.key.kind != "publishable":
        return
    if record.owner_key != who.key.id or record.rig_source not in (NEEDS_RIG, "manual"):
        raise ApiError(
            403, "forbidden", "this key may only place the points of characters it created "
            "that have no detected face",
        )  # fmt: skip


def rig_info(svc: CharacterService, character_id: str) -> dict[str, Any]:
    record = svc.get(character_id)
    photo = svc.photo(record)
    height, width = photo.shape[:2]
    guess: str | None = None
    if record.rig_source == NEEDS_RIG:
        first = guess_points(photo)
        points, source, guess = first.points, "guess", first.found
    else:
        points = points_of_rig(svc.load(character_id).rig)
        source = "manual" if record.rig_source == "manual" else "detected"
    return {
        "character_id": record.id,
        "status": "needs_rig" if record.rig_source == NEEDS_RIG else "ready",
        "source": source,
        "guess": guess,
        "image_width": width,
        "image_height": height,
        "image_url": f"/v1/characters/{record.id}/image",
        "points": {k: {"x": round(x, 2), "y": round(y, 2)} for k, (x, y) in points.items()},
        "point_info": [
            {"name": n, "required": POINT_INFO[n].required, "where": POINT_INFO[n].where}
            for n in MANUAL_POINTS
        ],
        "triangles": [tuple(int(i) for i in t) for t in topo.surface_triangles()],
        "outlines": {k: list(v) for k, v in _OUTLINES.items()},
    }


def rig_preview(
    svc: CharacterService, record: CharacterRecord, points: Mapping[str, tuple[float, float]],
    *, frames: bool,
) -> dict[str, Any]:  # fmt: skip
    """The fitted mesh (fast) and, with ``frames``, a test animation of the rig the points
    make (about a second of work: it is built like the real one)."""
    photo = svc.photo(record)
    size = (photo.shape[1], photo.shape[0])
    landmarks = _points_call(lambda: fit_points(points, size))
    out: dict[str, Any] = {
        "landmarks": [(round(float(x), 2), round(float(y), 2)) for x, y in landmarks[:, :2]],
        "frames": [],
        "frame_names": [],
    }
    if frames:
        rig = _points_call(lambda: svc.run_rigging(lambda: build_rig_from_points(photo, points)))
        for name, frame in trial_frames(rig):
            out["frames"].append(_jpeg_data_url(frame))
            out["frame_names"].append(name)
    return out


def rerig(
    svc: CharacterService, character_id: str, points: Mapping[str, tuple[float, float]]
) -> CharacterRecord:
    return _points_call(lambda: svc.rerig(character_id, points))


def photo_bytes(svc: CharacterService, record: CharacterRecord) -> tuple[bytes, str]:
    """The photo, re-encoded as oriented (EXIF rotation applied): exactly the pixels the points
    refer to. PNG, or JPEG for big photos."""
    photo = cv2.cvtColor(svc.photo(record), cv2.COLOR_RGB2BGR)
    if photo.shape[0] * photo.shape[1] <= MAX_PHOTO_PNG_PIXELS:
        ok, data = cv2.imencode(".png", photo, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        kind = "image/png"
    else:
        ok, data = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 92])
        kind = "image/jpeg"
    if not ok:  # pragma: no cover - only for invalid arrays
        raise RuntimeError("could not encode the photo")
    return bytes(data.tobytes()), kind


def _points_call(make: Any) -> Any:
    try:
        return make()
    except InvalidInputError as exc:
        raise ApiError(
            422, "bad_points", str(exc), details={"points": points_named_in(str(exc))}
        ) from exc


def _jpeg_data_url(frame: np.ndarray) -> str:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    if not ok:  # pragma: no cover
        raise RuntimeError("could not encode a preview frame")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")
