"""Vision fixtures: pictures of a person generated at test time with Talkie's own renderer
(the astronaut portrait facing the camera, or with the head turned away), and empty rooms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from talkie.messages import FaceParams


@pytest.fixture(scope="session")
def render_person() -> Callable[..., np.ndarray]:
    """``render_person(yaw=0.0, size=(640, 480))``: the astronaut as a camera would see her."""
    from skimage import data

    from talkie.render import RenderOptions, load_renderer
    from talkie.rig import build_rig

    rig = build_rig(data.astronaut())
    renderers: dict[tuple[int, int], object] = {}

    def render(yaw: float = 0.0, size: tuple[int, int] = (640, 480)) -> np.ndarray:
        if size not in renderers:
            renderers[size] = load_renderer(None, rig, options=RenderOptions(size=size))
        return renderers[size].render(FaceParams(head_yaw=yaw))  # type: ignore[attr-defined]

    return render
