"""One image -> a ``CharacterRig`` the renderer can animate."""

from talkie.rig.builder import build_rig
from talkie.rig.manual import MANUAL_POINTS, REQUIRED_POINTS, build_rig_from_points
from talkie.rig.model import CharacterRig, FacePoints, RigMesh, load_rig

__all__ = [
    "MANUAL_POINTS",
    "REQUIRED_POINTS",
    "CharacterRig",
    "FacePoints",
    "RigMesh",
    "build_rig",
    "build_rig_from_points",
    "load_rig",
]
