"""The framed rig is built once per process and shared by every renderer of the character:
renderers of a copied rig (as a session worker unpickles it) reuse it and draw the same frames."""

from __future__ import annotations

import dataclasses
import pickle
import time

import numpy as np
import pytest

from talkie.messages import FaceParams
from talkie.render import meshwarp
from talkie.render.meshwarp import MeshWarpRenderer, RenderOptions, prepare_stage
from talkie.rig import CharacterRig

POSES = [
    FaceParams(),
    FaceParams(jaw_open=0.8, lip_round=0.3),
    FaceParams(head_yaw=6.0, blink_left=1.0, blink_right=1.0),
]


def _fresh_renderer(rig: CharacterRig, size: tuple[int, int]) -> MeshWarpRenderer:
    with meshwarp._prepared_lock:
        meshwarp._prepared.clear()
    return MeshWarpRenderer(rig, options=RenderOptions(size=size))


def test_a_copied_rig_reuses_the_prepared_stage_and_draws_the_same_frames(
    astronaut_rig: CharacterRig,
) -> None:
    size = (640, 360)
    reference = _fresh_renderer(astronaut_rig, size)
    expected = [reference.render(p) for p in POSES]

    copy = pickle.loads(pickle.dumps(astronaut_rig))  # what a session worker receives
    started = time.perf_counter()
    reused = MeshWarpRenderer(copy, options=RenderOptions(size=size))
    print(f"renderer from a prepared stage: {1000 * (time.perf_counter() - started):.0f} ms")
    assert reused.stage is reference.stage
    for pose, frame in zip(POSES, expected, strict=True):
        assert np.array_equal(reused.render(pose), frame)


def test_the_shared_images_cannot_be_written(astronaut_rig: CharacterRig) -> None:
    renderer = MeshWarpRenderer(astronaut_rig, options=RenderOptions(size=(320, 180)))
    with pytest.raises(ValueError, match="read-only"):
        renderer.stage.canvas[0, 0] = 0
    frame = renderer.render(FaceParams(jaw_open=0.5))  # frames are the caller's own
    frame[0, 0] = 0


def test_another_photo_or_size_gets_its_own_stage(astronaut_rig: CharacterRig) -> None:
    first, _ = prepare_stage(astronaut_rig, (320, 180))
    assert prepare_stage(astronaut_rig, (320, 180))[0] is first
    assert prepare_stage(astronaut_rig, (480, 270))[0] is not first
    darker = dataclasses.replace(astronaut_rig, image=astronaut_rig.image // 2)
    other, _ = prepare_stage(darker, (320, 180))
    assert other is not first
    assert other.canvas.mean() < first.canvas.mean()


def test_only_a_few_stages_are_kept(astronaut_rig: CharacterRig) -> None:
    sizes = [(320 + 16 * i, 180 + 9 * i) for i in range(meshwarp._PREPARED_KEPT + 1)]
    first = prepare_stage(astronaut_rig, sizes[0])[0]
    for size in sizes[1:]:
        prepare_stage(astronaut_rig, size)
    assert meshwarp.prepared_stages() == meshwarp._PREPARED_KEPT
    assert prepare_stage(astronaut_rig, sizes[0])[0] is not first  # the oldest was let go
