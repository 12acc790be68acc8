"""Fixtures for the /v1 API: the real app in-process (FastAPI's TestClient), its own data folder.

``api`` is a client with no credentials; ``admin`` carries the admin key the server wrote at its
first start. Live media is not needed here (sessions that connect are in tests/live).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from api_testutil import png_bytes
from fastapi.testclient import TestClient

from talkie.server.app import ServerOptions, create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))  # live_fakes


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-data")


@pytest.fixture(scope="module")
def api(data_dir: Path) -> Iterator[TestClient]:
    from live_fakes import FakeConversation

    app = create_app(
        options=ServerOptions(data_dir=data_dir, request_burst=1000),
        conversation_factory=FakeConversation,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def admin_key(api: TestClient, data_dir: Path) -> str:
    return (data_dir / "admin.key").read_text().strip()


@pytest.fixture(scope="module")
def admin(api: TestClient, admin_key: str) -> Iterator[TestClient]:
    with TestClient(api.app, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        yield client


@pytest.fixture(scope="session")
def face_png() -> bytes:
    """A real portrait (scikit-image's astronaut), mirrored so it differs from the sample."""
    from skimage import data

    return png_bytes(np.ascontiguousarray(data.astronaut()[:, ::-1]))
