"""One image -> a ``CharacterRig`` the renderer can animate."""

from talkie.rig.builder import build_rig
from talkie.rig.model import CharacterRig, FacePoints, RigMesh, load_rig

__all__ = ["CharacterRig", "FacePoints", "RigMesh", "build_rig", "load_rig"]
