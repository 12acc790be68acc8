"""Fixtures for the client tests: one real server (uvicorn in a thread, real app and database,
``TinyConversation`` sessions) for the whole run, its admin key, and a character made from the
bundled astronaut photo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# Helper modules sit next to this file (pytest puts this folder on sys.path).
from client_harness import ASTRONAUT, ThreadedServer

from talkie.client import Character, TalkieClient


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key or URL from the developer's shell, and an empty data folder: a test never reads
    the real ~/.talkie/admin.key."""
    monkeypatch.delenv("TALKIE_API_KEY", raising=False)
    monkeypatch.delenv("TALKIE_URL", raising=False)
    empty = tmp_path / "no-server-here"
    empty.mkdir()
    monkeypatch.setenv("TALKIE_DATA_DIR", str(empty))


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    with ThreadedServer(tmp_path_factory.mktemp("talkie-data")) as running:
        yield running


@pytest.fixture(scope="session")
def admin_key(server: ThreadedServer) -> str:
    return (server.data_dir / "admin.key").read_text().strip()


@pytest.fixture()
def client(server: ThreadedServer, admin_key: str) -> Iterator[TalkieClient]:
    with TalkieClient(server.url, api_key=admin_key) as talkie:
        yield talkie


@pytest.fixture(scope="session")
def character(server: ThreadedServer, admin_key: str) -> Character:
    """A character shared by the tests that only read it (nobody changes or deletes it)."""
    with TalkieClient(server.url, api_key=admin_key) as talkie:
        return talkie.characters.create(ASTRONAUT, name="Shared")
