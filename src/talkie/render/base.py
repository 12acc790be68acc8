"""The renderer protocol: face parameters + a character rig -> RGB frames."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from talkie.messages import FaceParams


@runtime_checkable
class Renderer(Protocol):
    """Turns one ``FaceParams`` into one RGB uint8 frame of ``size`` (width, height).

    A renderer is built for one rig and one output size; ``render`` may reuse internal buffers but
    always returns an array the caller owns.
    """

    size: tuple[int, int]

    def render(self, params: FaceParams) -> np.ndarray: ...
