"""The renderer plug-in boundary: ``load_renderer(spec)`` picks the CPU mesh warp by default,
a built-in or installed plug-in by name, or any ``module:factory``; a neural model plugs in
through ``NeuralRenderer`` (shown with the reference test double, which is no neural model)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from talkie.errors import InvalidInputError, MissingDependencyError
from talkie.messages import FaceParams
from talkie.render import MeshWarpRenderer, Renderer, RenderOptions, load_renderer
from talkie.render.neural import NeuralRenderer, ReferenceTestDouble
from talkie.rig import CharacterRig

SMALL = RenderOptions(size=(320, 180))


def test_the_default_is_the_cpu_mesh_warp(astronaut_rig: CharacterRig, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("TALKIE_RENDERER", raising=False)
    for spec in (None, "", "meshwarp"):
        assert isinstance(load_renderer(spec, astronaut_rig, options=SMALL), MeshWarpRenderer)


def test_the_environment_names_a_process_wide_default(
    astronaut_rig: CharacterRig, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TALKIE_RENDERER", "reference-test-double")
    assert isinstance(load_renderer("", astronaut_rig, options=SMALL), NeuralRenderer)
    # An explicit choice (per character) wins over the process default.
    assert isinstance(load_renderer("meshwarp", astronaut_rig, options=SMALL), MeshWarpRenderer)


def test_a_neural_model_plugs_in_behind_the_same_protocol(astronaut_rig: CharacterRig) -> None:
    renderer = load_renderer("reference-test-double", astronaut_rig, options=SMALL)
    assert isinstance(renderer, Renderer) and isinstance(renderer, NeuralRenderer)
    model = renderer.model
    assert isinstance(model, ReferenceTestDouble)
    still = renderer.render(FaceParams())
    assert still.shape == (180, 320, 3) and still.dtype == np.uint8
    turned = renderer.render(FaceParams(head_yaw=10.0, head_roll=6.0))
    assert np.abs(turned.astype(int) - still).mean() > 2  # the head moved
    # The model gets Talkie's motion as driving keypoints: the jaw drops the lower lip.
    rest = renderer.driving_keypoints(FaceParams())
    open_ = renderer.driving_keypoints(FaceParams(jaw_open=1.0))
    assert open_[14, 1] - rest[14, 1] > 5  # lower inner lip
    assert abs(open_[13, 1] - rest[13, 1]) < 2.5  # the upper lip stays
    # A whole step reaches the model at once.
    frames = renderer.render_many([FaceParams(jaw_open=j) for j in (0.0, 0.3, 0.6, 0.9)])
    assert len(frames) == 4 and model.calls[-1] == 4


def test_any_module_factory(astronaut_rig: CharacterRig, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    module = types.ModuleType("my_renderer_plugin")

    def make(rig: CharacterRig, *, options: RenderOptions) -> NeuralRenderer:
        return NeuralRenderer(rig, model=ReferenceTestDouble(), options=options)

    module.make = make  # type: ignore[attr-defined]
    module.not_callable = 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_renderer_plugin", module)
    renderer = load_renderer("my_renderer_plugin:make", astronaut_rig, options=SMALL)
    assert renderer.size == (320, 180)
    with pytest.raises(InvalidInputError, match="has no 'missing'"):
        load_renderer("my_renderer_plugin:missing", astronaut_rig)
    with pytest.raises(InvalidInputError, match="not a factory"):
        load_renderer("my_renderer_plugin:not_callable", astronaut_rig)


def test_bad_specs_are_clear_errors(astronaut_rig: CharacterRig) -> None:
    with pytest.raises(InvalidInputError, match="unknown renderer 'warp-drive'.*meshwarp"):
        load_renderer("warp-drive", astronaut_rig)
    with pytest.raises(MissingDependencyError, match="cannot be imported"):
        load_renderer("no_such_package_xyz:make", astronaut_rig)


def test_a_model_returning_the_wrong_frames_is_caught(astronaut_rig: CharacterRig) -> None:
    class Broken(ReferenceTestDouble):
        def generate(self, driving, params):  # type: ignore[no-untyped-def]
            return super().generate(driving, params)[:, :10]

    renderer = NeuralRenderer(astronaut_rig, model=Broken(), options=SMALL)
    with pytest.raises(ValueError, match="expected uint8"):
        renderer.render(FaceParams())
