"""Fixtures for the engine tests: real rigs of scikit-image's astronaut portrait (built once)."""

from __future__ import annotations

import numpy as np
import pytest

from talkie.messages import FaceParams
from talkie.render import MeshWarpRenderer
from talkie.rig import CharacterRig, build_rig


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def astronaut_rig(astronaut: np.ndarray) -> CharacterRig:
    return build_rig(astronaut)


@pytest.fixture(scope="session")
def renderer(astronaut_rig: CharacterRig) -> MeshWarpRenderer:
    return MeshWarpRenderer(astronaut_rig)


@pytest.fixture(scope="session")
def closed_mouth_photo(renderer: MeshWarpRenderer) -> np.ndarray:
    """The astronaut with her lips closed: a second, closed-mouth portrait for the tests (the
    packaged portrait smiles with her teeth showing, which takes a different mouth path)."""
    return renderer.render(FaceParams(lip_press=1.0))
