"""Sessions as Ray actors on a real two-node local Ray cluster (``ray.cluster_utils.Cluster``).

Each node offers one CPU and each session needs one, so two sessions must land on two nodes;
the web server (stateless about media) proxies their signalling, the browsers' media flows to
the actors (aiortc in the actor's process), and their turns come back to the store.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import wave
from collections.abc import Iterator
from typing import Any

import live_fakes
import numpy as np
import pytest
import ray
from live_browser import make_question_wav
from live_client import SpeechTrack, connect
from live_fakes import FakeConversation
from live_server import LiveServer
from ray.cluster_utils import Cluster

from talkie.server.app import ServerOptions

MB = 1024 * 1024


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Cluster]:
    node = {"num_cpus": 1, "object_store_memory": 80 * MB}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes()
        # The tests turn the local LLM off (tests/conftest.py); the nodes' sessions may use it
        # (only the real-conversation test starts it, through NodeModels).
        ray.init(
            address=cluster.address, logging_level="WARNING", log_to_driver=False,
            runtime_env={"env_vars": {"TALKIE_LOCAL_LLM": "1"}},
        )  # fmt: skip
        # The fake conversation lives in the tests folder, which Ray's workers cannot import:
        # ship its code with the session spec.
        ray.cloudpickle.register_pickle_by_value(live_fakes)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_sessions_are_placed_on_two_nodes_and_their_turns_come_back(ray_cluster: Cluster) -> None:
    options = ServerOptions(max_sessions=2, host_kind="ray", ray_address=ray_cluster.address)
    with LiveServer(options=options, conversation_factory=FakeConversation) as server:

        async def scenario() -> tuple[list[dict[str, Any]], str]:
            sessions = [await connect(server.url, "astronaut") for _ in range(2)]
            try:
                for s in sessions:
                    await s.wait_video(10, timeout=60)
                nodes = [server.registry.get(s.session_id).stats() for s in sessions]
                first = sessions[0]
                await first.channel_open.wait()
                first.send({"type": "text", "text": "hello cluster"})
                await first.wait_event(
                    lambda e: e.get("type") == "reply" and "hello cluster" in str(e.get("text")),
                    timeout=30,
                )
                return nodes, first.session_id
            finally:
                for s in sessions:
                    await s.close()

        nodes, first_id = asyncio.run(scenario())
        print(f"\nray placement: {[(n['node_id'][:8], n['pid']) for n in nodes]}")
        assert all(n["host"] == "ray" for n in nodes)
        assert len({n["node_id"] for n in nodes}) == 2  # one session per node
        assert {n["node_id"] for n in nodes} <= {n["NodeID"] for n in ray.nodes()}
        with server.admin() as admin:
            deadline = time.monotonic() + 30
            lines: list[dict[str, Any]] = []
            while time.monotonic() < deadline and len(lines) < 2:
                lines = admin.get(f"/v1/sessions/{first_id}/transcript").json()["lines"]
                time.sleep(0.1)
        assert lines[0]["text"] == "hello cluster"
        assert lines[1]["speaker"] == "character"
        # the clients hung up: both sessions end and their actors are released
        deadline = time.monotonic() + 60
        while len(server.registry) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(server.registry) == 0
        assert server.end_reason(first_id) is not None


def test_a_dead_actor_ends_its_session_with_a_reason(ray_cluster: Cluster) -> None:
    options = ServerOptions(max_sessions=2, host_kind="ray", ray_address=ray_cluster.address)
    with LiveServer(options=options, conversation_factory=FakeConversation) as server:

        async def scenario() -> str:
            session = await connect(server.url, "astronaut")
            try:
                await session.wait_video(3, timeout=60)
                os.kill(server.registry.get(session.session_id).stats()["pid"], signal.SIGKILL)
                deadline = time.monotonic() + 60
                while server.registry.get(session.session_id) is not None:
                    assert time.monotonic() < deadline, "the session did not end"
                    await asyncio.sleep(0.1)
                return session.session_id
            finally:
                await session.close()

        session_id = asyncio.run(scenario())
        reason = server.end_reason(session_id)
        assert reason is not None and "Ray actor stopped" in reason


def _node_sockets(node_id: str) -> tuple[str, str]:
    """The sockets of the local LLM and of the speech service of ``node_id``'s NodeModels."""
    models = ray.get_actor(f"talkie-models-{node_id}")
    shared = ray.get(models.shared.remote(0.0), timeout=30)
    assert shared.llm is not None, f"node {node_id[:8]} has no ready local LLM"
    assert shared.speech is not None, f"node {node_id[:8]} has no speech service"
    return str(shared.llm.socket_path), str(shared.speech.address)


@pytest.fixture(scope="module")
def question_pcm(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """ "What is your name?" (espeak-ng), after 1 s of silence, as 48 kHz int16."""
    path = make_question_wav(tmp_path_factory.mktemp("ray") / "question.wav", before=1.0)
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def test_real_sessions_use_their_nodes_shared_models(
    ray_cluster: Cluster, question_pcm: np.ndarray
) -> None:
    """The real conversation on Ray: each node loads the local LLM and the speech models once
    (NodeModels) and its sessions use them through the node's sockets; a later session on a
    node finds them loaded.
    Every session is asked by voice: the microphone's audio reaches the actor on either node
    (over WebRTC, not through the web server) and is heard and answered there."""
    options = ServerOptions(
        max_sessions=2, host_kind="ray", ray_address=ray_cluster.address, preload_models=True
    )
    with LiveServer(options=options) as server:

        async def talk(count: int, *, ask: bool = True) -> list[dict[str, Any]]:
            sessions = [
                await connect(
                    server.url, "astronaut", microphone=SpeechTrack(question_pcm) if ask else True
                )
                for _ in range(count)
            ]
            try:
                placed = []
                for s in sessions:
                    await s.wait_video(5, timeout=120)
                    turn = None
                    if ask:
                        turn = await s.wait_event(
                            lambda e: e.get("type") == "turn" and bool(e.get("user_text")),
                            timeout=90,
                        )
                        assert "name" in turn["user_text"].lower() and turn["said"], turn
                    placed.append({**server.registry.get(s.session_id).stats(), "turn": turn})
                return placed
            finally:
                for s in sessions:
                    await s.close()

        placed = asyncio.run(talk(2))
        print(f"\nray placement: {[(n['node_id'][:8], n['llm']) for n in placed]}; "
              f"heard {[n['turn']['user_text'] for n in placed]}")  # fmt: skip
        assert len({n["node_id"] for n in placed}) == 2
        assert all(n["llm"] == "attached" for n in placed), placed
        # ...and heard the question, and spoke, through their node's speech service
        assert all(n["speech"] == "node" for n in placed), placed
        sockets = {n["node_id"]: _node_sockets(n["node_id"]) for n in placed}
        assert len(set(sockets.values())) == 2  # one LLM and one speech service per node

        deadline = time.monotonic() + 60
        while len(server.registry) and time.monotonic() < deadline:
            time.sleep(0.1)
        (again,) = asyncio.run(talk(1, ask=False))  # only where its model comes from
        assert again["llm"] == "attached" and again["speech"] == "node"
        assert _node_sockets(again["node_id"]) == sockets[again["node_id"]]  # not reloaded
