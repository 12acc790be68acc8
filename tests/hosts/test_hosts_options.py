"""Choosing the session host: `talkie serve` flags, ServerOptions and ``make_host``."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import pytest

from talkie.brain.persona import Persona
from talkie.errors import InvalidInputError
from talkie.server.app import RealConversations, ServerOptions
from talkie.server.cli import add_serve_command, serve_options
from talkie.server.hosts import SessionSpec, make_host
from talkie.server.hosts.base import DocumentsAt, portable
from talkie.server.hosts.inprocess import InProcessHost
from talkie.server.hosts.process import ProcessHost
from talkie.server.hosts.ray_host import RayHost
from talkie.session.character import Character


def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_command(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_talkie_serve_runs_sessions_in_warm_worker_processes_by_default() -> None:
    options = serve_options(_serve_args(), {})
    assert (options.host_kind, options.warm, options.preload_models) == ("process", 1, True)
    assert ServerOptions().host_kind == "inprocess"  # the library default (tests, embedding)


def test_host_flags() -> None:
    options = serve_options(_serve_args("--host-kind", "ray", "--ray-address", "10.0.0.5:6379"), {})
    assert (options.host_kind, options.ray_address) == ("ray", "10.0.0.5:6379")
    from_env = serve_options(_serve_args("--host-kind", "ray"), {"RAY_ADDRESS": "head:6379"})
    assert from_env.ray_address == "head:6379"
    small = serve_options(_serve_args("--host-kind", "inprocess", "--warm", "0"), {})
    assert (small.host_kind, small.warm) == ("inprocess", 0)
    assert not serve_options(_serve_args("--no-preload-models"), {}).preload_models


@pytest.mark.parametrize("warm", ["-1", "65"])
def test_a_bad_pool_size_is_refused_naming_the_flag(warm: str) -> None:
    with pytest.raises(InvalidInputError, match="--warm"):
        serve_options(_serve_args("--warm", warm), {})


def test_an_unknown_host_kind_is_refused() -> None:
    with pytest.raises(SystemExit):
        _serve_args("--host-kind", "kubernetes")
    with pytest.raises(InvalidInputError, match="unknown session host"):
        make_host("kubernetes")


def test_make_host_builds_each_kind() -> None:
    assert isinstance(make_host("inprocess"), InProcessHost)
    process = make_host("process", warm=3)
    assert isinstance(process, ProcessHost) and process.warm == 3
    assert isinstance(make_host("ray", ray_address="10.0.0.5:6379"), RayHost)  # no connection yet


def test_the_real_conversation_factory_travels_to_workers() -> None:
    """The process and Ray hosts pickle the factory with the session's spec."""
    factory = RealConversations(ServerOptions().webhook)
    assert pickle.loads(pickle.dumps(factory)) == factory


class _OpenIndex:
    """Stands for the web process's open knowledge base: it cannot travel."""

    def __reduce__(self) -> object:
        raise TypeError("an open database cannot be pickled")

    def search(self, query: str, k: int = 3) -> list[object]:
        return []


def test_a_spec_travels_with_the_characters_documents_reached_by_path(tmp_path: Path) -> None:
    character = Character(
        id="ch_1", name="Ada", rig=None,  # type: ignore[arg-type] - the rig is not needed here
        persona=Persona(name="Ada", system_prompt="Be brief.", greeting="Hi"),
        knowledge=_OpenIndex(), recall="likes tea",
    )  # fmt: skip
    factory = RealConversations(ServerOptions().webhook)
    spec = SessionSpec(session_id="se_1", character=character, conversation_factory=factory)
    with pytest.raises(TypeError):
        pickle.dumps(spec)
    moved = pickle.loads(pickle.dumps(portable(spec, tmp_path / "knowledge.db")))
    assert moved.character.knowledge == DocumentsAt(tmp_path / "knowledge.db", "ch_1")
    assert moved.character.recall == "likes tea"  # the memory notes go with it
    assert moved.character.knowledge.search("opening hours") == []  # no documents: no model
