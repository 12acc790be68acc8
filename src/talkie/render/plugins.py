"""Choosing a renderer: ``load_renderer(spec, rig)``, per character or per server.

A spec is one of:

* ``""`` or ``"meshwarp"``: the CPU mesh-warp renderer (the default; ``TALKIE_RENDERER`` names
  another default for a whole process, e.g. a server with a GPU);
* ``"meshwarp-donor-teeth"``: the same, with real teeth from a donor photo (scikit-image's
  astronaut) where the photo shows none (bench/looks.py and bench/lipsync.py compare the two);
* ``"reference-test-double"``: ``talkie.render.neural.NeuralRenderer`` driving the reference
  test double of a neural model (proves the plug-in boundary; it is no neural model);
* the name of an installed plug-in: an entry point in the ``talkie.renderers`` group, declared
  by the plug-in's package (``[project.entry-points."talkie.renderers"] mymodel =
  "mypkg.talkie_plugin:make_renderer"``);
* ``"package.module:factory"``: any importable factory.

A factory is called as ``factory(rig, options=RenderOptions(...))`` and returns a ``Renderer``
(``size`` and ``render(FaceParams) -> RGB uint8 frame``; optionally ``render_many`` for a step
of frames at once). How a neural model plugs in is described in ``talkie.render.neural``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable
from importlib import metadata
from typing import Any

from talkie.errors import InvalidInputError, MissingDependencyError
from talkie.render.base import Renderer
from talkie.render.meshwarp import MeshWarpRenderer, RenderOptions
from talkie.rig.model import CharacterRig

ENTRY_POINT_GROUP = "talkie.renderers"
DEFAULT_RENDERER = "meshwarp"
ENV_VAR = "TALKIE_RENDERER"

RendererFactory = Callable[..., Renderer]


def _donor_teeth(rig: CharacterRig, *, options: RenderOptions | None = None) -> Renderer:
    return MeshWarpRenderer(
        rig, options=dataclasses.replace(options or RenderOptions(), teeth="donor")
    )


def _reference(rig: CharacterRig, *, options: RenderOptions | None = None) -> Renderer:
    from talkie.render.neural import reference_test_double

    return reference_test_double(rig, options=options)


_BUILT_IN: dict[str, RendererFactory] = {
    "meshwarp": MeshWarpRenderer,
    "meshwarp-donor-teeth": _donor_teeth,
    "reference-test-double": _reference,
}


def renderer_factory(spec: str | None = None) -> RendererFactory:
    """The factory ``spec`` names (see the module docstring); raises ``InvalidInputError`` for a
    spec that names nothing, ``MissingDependencyError`` when its package cannot be imported."""
    name = (spec or os.environ.get(ENV_VAR, "") or DEFAULT_RENDERER).strip()
    if name in _BUILT_IN:
        return _BUILT_IN[name]
    if ":" in name:
        return _import_factory(name)
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            try:
                loaded: Any = entry.load()
            except ImportError as exc:
                raise MissingDependencyError(
                    f"the renderer plug-in {name!r} failed to import ({exc}); reinstall its package"
                ) from exc
            return _callable(loaded, name)
    known = sorted(
        set(_BUILT_IN) | {e.name for e in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    )
    raise InvalidInputError(
        f"unknown renderer {name!r}; use one of {', '.join(known)} or 'package.module:factory'"
    )


def load_renderer(
    spec: str | None, rig: CharacterRig, *, options: RenderOptions | None = None
) -> Renderer:
    """A renderer for ``rig`` made by the factory ``spec`` names (``None``/"": the default)."""
    renderer = renderer_factory(spec)(rig, options=options or RenderOptions())
    if not isinstance(renderer, Renderer):
        raise InvalidInputError(
            f"the renderer {spec!r} made a {type(renderer).__name__}, which has no "
            "size and render(params)"
        )
    return renderer


def _import_factory(name: str) -> RendererFactory:
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the renderer {name!r} cannot be imported ({exc}); install the package that "
            "provides it"
        ) from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise InvalidInputError(f"the renderer {name!r}: {module_name} has no {attr!r}")
    return _callable(factory, name)


def _callable(obj: Any, name: str) -> RendererFactory:
    if not callable(obj):
        raise InvalidInputError(f"the renderer {name!r} is not a factory (not callable)")
    factory: RendererFactory = obj
    return factory
