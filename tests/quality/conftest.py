"""Fixtures for talkie.quality tests: the astronaut portrait and one shared FaceMeasurer."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from talkie.quality import FaceMeasure, FaceMeasurer

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    img = np.ascontiguousarray(skimage_data.astronaut())
    img.setflags(write=False)
    return img


@pytest.fixture(scope="session")
def measurer() -> Iterator[FaceMeasurer]:
    with FaceMeasurer() as fm:
        yield fm


@pytest.fixture(scope="session")
def neutral(measurer: FaceMeasurer, astronaut: np.ndarray) -> FaceMeasure:
    m = measurer.measure(astronaut)
    assert m is not None, "mediapipe did not find the astronaut's face"
    return m
