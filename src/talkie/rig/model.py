"""The character rig: everything the renderer needs to animate one image, and its file format.

Where the points came from (MediaPipe landmarks, or points a person placed by hand) is recorded in
``FacePoints.source``; the renderer only reads the ``RigMesh`` (vertices, triangles, named regions),
so any point source that can fill the same regions can drive the same renderer.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from talkie.errors import InvalidInputError

RIG_FORMAT_VERSION = 1

# Triangle draw order: later layers win where deformed triangles overlap (lips over the mouth
# hole, lids over the eyeball, the face over the hair and background around it).
LAYER_SURROUND = 0
LAYER_HOLES = 1
LAYER_FACE = 2


@dataclass(frozen=True, eq=False)
class FacePoints:
    """Face points in working-image pixels: (N, 3) x, y, z (z in x's scale, negative = nearer).

    ``source`` is "mediapipe" for detected landmarks or "manual" for hand-placed points.
    """

    points: np.ndarray
    source: str


@dataclass(frozen=True, eq=False)
class RigMesh:
    """Vertices (V, 3) in working-image pixels, triangles (T, 3), a draw layer per triangle, and
    named regions (index arrays into the vertices) that the renderer's motion rules refer to."""

    vertices: np.ndarray
    triangles: np.ndarray
    layers: np.ndarray
    regions: dict[str, np.ndarray] = field(default_factory=dict)

    def region(self, name: str) -> np.ndarray:
        return self.regions[name]


@dataclass(frozen=True, eq=False)
class CharacterRig:
    """One image, ready to animate.

    ``image`` is the working crop of the source photo around the chosen face (RGB uint8),
    ``alpha`` the person matte (uint8, 255 = person), ``plate`` the background with the person
    filled in (so a moving head reveals background, not holes). ``crop`` is (x, y, scale): where
    the working image sits in the source photo, and how much it was resized.
    """

    image: np.ndarray
    alpha: np.ndarray
    plate: np.ndarray
    face: FacePoints
    mesh: RigMesh
    crop: tuple[float, float, float]
    source_size: tuple[int, int]
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the working image."""
        return (self.image.shape[1], self.image.shape[0])

    def save(self, path: str | Path) -> None:
        """Write the rig as one file (a zip of PNG/JPEG images, arrays and JSON metadata)."""
        meta = {
            "version": RIG_FORMAT_VERSION,
            "face_source": self.face.source,
            "crop": list(self.crop),
            "source_size": list(self.source_size),
            "notes": list(self.notes),
            "regions": sorted(self.mesh.regions),
        }
        arrays = {
            "face_points": self.face.points,
            "vertices": self.mesh.vertices,
            "triangles": self.mesh.triangles,
            "layers": self.mesh.layers,
            **{f"region_{k}": v for k, v in self.mesh.regions.items()},
        }
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr("meta.json", json.dumps(meta))
            zf.writestr("arrays.npz", buf.getvalue())
            zf.writestr("image.png", _encode(self.image, ".png"))
            zf.writestr("alpha.png", _encode(self.alpha, ".png"))
            zf.writestr("plate.jpg", _encode(self.plate, ".jpg"))
        tmp.replace(path)


def load_rig(path: str | Path) -> CharacterRig:
    """Read a rig written by ``CharacterRig.save``."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("meta.json"))
            if meta.get("version") != RIG_FORMAT_VERSION:
                raise InvalidInputError(
                    f"{path} is a rig of format {meta.get('version')}, this Talkie reads "
                    f"format {RIG_FORMAT_VERSION}; rebuild it with `talkie rig IMAGE`"
                )
            arrays = np.load(io.BytesIO(zf.read("arrays.npz")))
            image = _decode(zf.read("image.png"), color=True)
            alpha = _decode(zf.read("alpha.png"), color=False)
            plate = _decode(zf.read("plate.jpg"), color=True)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(
            f"{path} is not a readable Talkie rig ({exc}); rebuild it with `talkie rig IMAGE`"
        ) from exc
    regions = {name: arrays[f"region_{name}"] for name in meta["regions"]}
    return CharacterRig(
        image=image,
        alpha=alpha,
        plate=plate,
        face=FacePoints(arrays["face_points"], meta["face_source"]),
        mesh=RigMesh(arrays["vertices"], arrays["triangles"], arrays["layers"], regions),
        crop=(float(meta["crop"][0]), float(meta["crop"][1]), float(meta["crop"][2])),
        source_size=(int(meta["source_size"][0]), int(meta["source_size"][1])),
        notes=tuple(meta["notes"]),
    )


def _encode(image: np.ndarray, ext: str) -> bytes:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if ext == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, data = cv2.imencode(ext, image, params)
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise ValueError(f"could not encode {ext}")
    return data.tobytes()


def _decode(data: bytes, *, color: bool) -> np.ndarray:
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None:
        raise ValueError("corrupt image inside the rig")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color else image
