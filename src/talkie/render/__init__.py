"""FaceParams + rig -> frames. ``MeshWarpRenderer`` is the default CPU renderer."""

from talkie.render.base import Renderer
from talkie.render.meshwarp import MeshWarpRenderer, RenderOptions

__all__ = ["MeshWarpRenderer", "RenderOptions", "Renderer"]
