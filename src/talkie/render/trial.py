"""A short test animation of a rig, for a person checking the face points they placed: the
mouth opening and closing, a blink, a word with a head turn, as the live video will show them."""

from __future__ import annotations

import numpy as np

from talkie.messages import FaceParams
from talkie.render.meshwarp import MeshWarpRenderer, RenderOptions
from talkie.rig.model import CharacterRig

TRIAL_POSES: tuple[tuple[str, FaceParams], ...] = (
    ("rest", FaceParams()),
    ("half open", FaceParams(jaw_open=0.4, lip_width=0.1)),
    ("open", FaceParams(jaw_open=0.85, lip_width=0.15, upper_lip_raise=0.1)),
    ("closed", FaceParams(lip_press=1.0)),
    ("blink", FaceParams(blink_left=1.0, blink_right=1.0)),
    ("talking, head turned", FaceParams(jaw_open=0.55, lip_width=0.4, head_yaw=8.0, smile=0.3)),
)


def trial_frames(
    rig: CharacterRig, size: tuple[int, int] = (480, 270)
) -> list[tuple[str, np.ndarray]]:
    """(pose name, RGB frame) for each of ``TRIAL_POSES``, framed like the video."""
    renderer = MeshWarpRenderer(rig, options=RenderOptions(size=size))
    return [(name, renderer.render(params)) for name, params in TRIAL_POSES]
