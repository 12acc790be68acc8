"""Shared fixtures. Media fixtures are generated at test time; nothing is downloaded."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from PIL import Image

# Servers started by tests keep their database and media in a throwaway folder, never ~/.talkie.
os.environ.setdefault("TALKIE_DATA_DIR", tempfile.mkdtemp(prefix="talkie-test-data-"))
# Tests get the deterministic built-in brain unless they ask for the local model themselves
# (tests/brain/test_brain_local.py): a live LLM would make every conversation test slow.
os.environ.setdefault("TALKIE_LOCAL_LLM", "0")
# Sessions get full 720p24 video however loaded the test machine is (what the tests measure on
# frames assumes it); tests of the video budget give it a machine load of their own.
os.environ.setdefault("TALKIE_VIDEO_BUDGET", "0")


@pytest.fixture(scope="session")
def astronaut_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 512x512 RGB PNG portrait (scikit-image's ``data.astronaut()``, public domain)."""
    from skimage import data

    path = tmp_path_factory.mktemp("samples") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="session")
def cat_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 451x300 RGB PNG of a cat (scikit-image's ``data.chelsea()``): a non-human face."""
    from skimage import data

    path = tmp_path_factory.mktemp("samples") / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    return path
