"""FaceParams + rig -> frames. ``MeshWarpRenderer`` is the default CPU renderer; ``load_renderer``
picks another one by name (see ``talkie.render.plugins`` and, for neural renderers,
``talkie.render.neural``)."""

from talkie.render.base import Renderer
from talkie.render.meshwarp import MeshWarpRenderer, RenderOptions
from talkie.render.plugins import load_renderer, renderer_factory

__all__ = ["MeshWarpRenderer", "RenderOptions", "Renderer", "load_renderer", "renderer_factory"]
