"""Sessions in worker processes (``ProcessHost``): real spawned workers running the WebRTC peer
and a ``FakeConversation``, driven by Python aiortc clients through the real server.

- a session runs in a process of its own, its turns come back to the web process's store, and
  hanging up ends the worker;
- chaos: killing one session's worker mid-answer ends that session cleanly (ended, with a reason,
  transcript kept) while another session keeps streaming;
- the warm pool refills after a session takes its worker; shutting the server down drains it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from live_browser import make_question_wav
from live_client import ClientSession, SpeechTrack, connect
from live_fakes import FakeConversation
from live_server import LiveServer

from talkie.brain.local.brain import node_engine
from talkie.server.app import ServerOptions
from talkie.server.hosts.process import POOL_NICENESS, can_raise_priority
from talkie.server.ops import registry_sessions


@pytest.fixture(scope="module")
def process_server() -> Iterator[LiveServer]:
    options = ServerOptions(max_sessions=3, host_kind="process", warm=1)
    server = LiveServer(options=options, conversation_factory=FakeConversation).start()
    try:
        yield server
    finally:
        server.stop(timeout=60)


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


async def _await(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # reap it if it is our finished child
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _nice_levels(pid: int) -> set[int]:
    """The nice levels of every thread of ``pid`` and of its child processes."""
    levels, todo = set(), [pid]
    while todo:
        current = todo.pop()
        for task in os.listdir(f"/proc/{current}/task"):
            levels.add(os.getpriority(os.PRIO_PROCESS, int(task)))
            children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            todo.extend(int(c) for c in children)
    return levels


def _transcript(server: LiveServer, session: ClientSession) -> list[dict[str, object]]:
    with server.admin() as admin:
        r = admin.get(f"/v1/sessions/{session.session_id}/transcript")
        r.raise_for_status()
        lines: list[dict[str, object]] = r.json()["lines"]
        return lines


async def _say(session: ClientSession, text: str) -> None:
    """Type a message and wait until the character (in the worker) answers it."""
    await session.channel_open.wait()
    session.send({"type": "text", "text": text})
    await session.wait_event(
        lambda e: e.get("type") == "reply" and text in str(e.get("text")), timeout=20
    )


def test_a_session_runs_in_its_own_worker_and_its_turns_reach_the_store(
    process_server: LiveServer,
) -> None:
    async def scenario() -> tuple[ClientSession, int]:
        session = await connect(process_server.url, "astronaut")
        try:
            await session.wait_video(5, timeout=30)
            hosted = process_server.registry.get(session.session_id)
            assert hosted is not None and hosted.pid is not None
            await _say(session, "hello worker")
            # no conversation was built in this (the web server's) process
            assert FakeConversation.instances == []
            # ... yet the metrics and admission see its frames: the worker reports its counters
            await _await(
                lambda: any(
                    s.session_id == session.session_id and s.frames > 0
                    for s in registry_sessions(process_server.registry, lambda _: False)
                ),
                15, "the worker's frame counters",
            )  # fmt: skip

            # ... and its CPU, which the web process's own CPU time does not include
            def worker_cpu() -> float:
                samples = registry_sessions(process_server.registry, lambda _: False)
                cpu = [s.cpu_seconds for s in samples if s.session_id == session.session_id]
                return cpu[0] if cpu and cpu[0] is not None else -1.0

            await _await(lambda: worker_cpu() > 0, 15, "the worker's CPU time")
            first = worker_cpu()
            await _await(lambda: worker_cpu() > first, 15, "the worker's CPU time to grow")
            return session, hosted.pid
        finally:
            await session.close()

    session, pid = asyncio.run(scenario())
    assert pid != os.getpid()
    # the finished turn came back from the worker and was written by the web process
    _wait(lambda: len(_transcript(process_server, session)) >= 2, 10, "the transcript")
    lines = _transcript(process_server, session)
    assert [line["speaker"] for line in lines[:2]] == ["user", "character"]
    assert lines[0]["text"] == "hello worker"
    # the client hung up: the session ends and its worker process exits
    _wait(lambda: process_server.end_reason(session.session_id) is not None, 30, "the end")
    _wait(lambda: not _alive(pid), 30, "the worker to exit")


def test_ending_a_session_through_the_api_stops_its_worker(process_server: LiveServer) -> None:
    async def scenario() -> None:
        session = await connect(process_server.url, "astronaut")
        try:
            await session.wait_video(3, timeout=30)
            pid = process_server.registry.get(session.session_id).pid
            with process_server.admin() as admin:
                r = await asyncio.to_thread(admin.delete, f"/v1/sessions/{session.session_id}")
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "ended"
            assert r.json()["end_reason"].startswith("ended by API key")
            await _await(lambda: not _alive(pid), 30, "the worker to exit")
            assert process_server.registry.get(session.session_id) is None
        finally:
            await session.close()

    asyncio.run(scenario())


def test_killing_a_worker_mid_answer_ends_only_its_session(process_server: LiveServer) -> None:
    async def scenario() -> str:
        victim = await connect(process_server.url, "astronaut")
        bystander = await connect(process_server.url, "astronaut")
        try:
            await victim.wait_video(3, timeout=30)
            await bystander.wait_video(3, timeout=30)
            await _say(victim, "first question")
            victim_pid = process_server.registry.get(victim.session_id).pid
            bystander_pid = process_server.registry.get(bystander.session_id).pid
            assert victim_pid != bystander_pid
            # mid-answer: the character has started its one-second reply when its worker dies
            await _say(victim, "second question")
            os.kill(victim_pid, signal.SIGKILL)
            await _await(
                lambda: process_server.registry.get(victim.session_id) is None, 30, "the victim"
            )
            # the other session keeps streaming: well more frames arrive after the kill
            frames = bystander.video_count
            await bystander.wait_video(frames + 24, timeout=30)
            assert process_server.registry.get(bystander.session_id) is not None
            assert _alive(bystander_pid)
            return victim.session_id
        finally:
            await victim.close()
            await bystander.close()

    victim_id = asyncio.run(scenario())
    with process_server.admin() as admin:
        victim_record = admin.get(f"/v1/sessions/{victim_id}").json()
    assert victim_record["status"] == "ended"
    assert "worker process stopped" in victim_record["end_reason"]
    # the transcript keeps the turns that finished before the crash
    with process_server.admin() as admin:
        lines = admin.get(f"/v1/sessions/{victim_record['id']}/transcript").json()["lines"]
    said = [line["text"] for line in lines if line["speaker"] == "user"]
    assert said[0] == "first question"


def test_the_warm_pool_refills_after_a_session_takes_a_worker(process_server: LiveServer) -> None:
    host = process_server.app.state.host
    _wait(lambda: host.ready_workers == 1, 120, "the warm worker")

    async def scenario() -> None:
        session = await connect(process_server.url, "astronaut")
        try:
            hosted = process_server.registry.get(session.session_id)
            assert hosted.warm  # it got the pooled worker...
            await _await(lambda: host.ready_workers == 1, 120, "a fresh warm worker")
            assert hosted.stats()["pid"] != os.getpid()
            # ...and the fresh one has the astronaut's images ready for the next session
            fresh = host._pool[0]
            state = await asyncio.to_thread(fresh.call_one, "warm_state")
            assert state["prepared_stages"] == 1
            # one session per process: OpenCV's per-core pool only adds hand-offs there
            assert state["opencv_threads"] == 1
            if can_raise_priority():  # the pool loads niced; a session runs at normal priority
                assert _nice_levels(fresh.pid) == {POOL_NICENESS}
                assert _nice_levels(hosted.stats()["pid"]) == {0}
        finally:
            await session.close()

    asyncio.run(scenario())


def test_a_session_arriving_while_the_pool_loads_takes_the_loading_worker(
    process_server: LiveServer,
) -> None:
    """Two visitors seconds apart: the second takes the replacement the pool is loading
    (further along, and then at normal priority) instead of starting a second worker cold."""
    host = process_server.app.state.host
    _wait(lambda: host.ready_workers == 1, 120, "the warm worker")

    async def scenario() -> None:
        first = await connect(process_server.url, "astronaut")
        second = None
        try:
            await _await(lambda: bool(host._loading), 30, "the pool to load a replacement")
            (loading,) = list(host._loading)
            created = host._count
            second = await connect(process_server.url, "astronaut")
            hosted = process_server.registry.get(second.session_id)
            # the pool's worker (taken while loading, or just ready if that took under a second)
            assert hosted.stats()["worker"] == loading.name
            await second.wait_video(3, timeout=60)
            await _await(lambda: host.ready_workers == 1, 120, "the pool refilled")
            assert host._count == created + 1  # the one replacement; no cold worker
            if can_raise_priority():
                assert _nice_levels(hosted.stats()["pid"]) == {0}
        finally:
            for session in (first, second):
                if session is not None:
                    await session.close()

    asyncio.run(scenario())


def test_shutting_down_drains_the_sessions_and_stops_the_workers() -> None:
    options = ServerOptions(max_sessions=2, host_kind="process", warm=1)
    server = LiveServer(options=options, conversation_factory=FakeConversation).start()
    stopped = False
    try:
        host = server.app.state.host

        async def scenario() -> tuple[str, int]:
            session = await connect(server.url, "astronaut")
            try:
                await session.wait_video(3, timeout=30)
                await _await(lambda: host.ready_workers == 1, 120, "the warm pool")
                return session.session_id, server.registry.get(session.session_id).pid
            finally:
                server.stop(timeout=60)  # with the client still connected
                await session.close()

        session_id, pid = asyncio.run(scenario())
        stopped = True
        assert not _alive(pid)
        assert host.ready_workers == 0
        # the session was ended by the drain, with its reason, before the database closed
        from talkie.store import Store

        store = Store.in_folder(server.data_dir)
        try:
            record = store.get_session(session_id)
        finally:
            store.close()
        assert record is not None and record.status == "ended"
        assert record.end_reason == "server shutdown"
    finally:
        if not stopped:
            server.stop(timeout=60)


def test_an_offer_the_worker_cannot_answer_is_refused_cleanly(process_server: LiveServer) -> None:
    """An offer without media passes the cheap check but fails in the worker: 4xx/5xx problem
    JSON, the slot is released, the session ends."""
    with httpx.Client(base_url=process_server.url, timeout=60) as http:
        headers = {"Authorization": f"Bearer {process_server.admin_key}"}
        created = http.post("/v1/sessions", json={"character_id": "astronaut"}, headers=headers)
        assert created.status_code == 201, created.text
        body = created.json()
        sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        r = http.post(
            body["offer_url"], json={"sdp": sdp, "type": "offer"},
            headers={"Authorization": f"Bearer {body['token']}"},
        )  # fmt: skip
    assert r.status_code in (400, 503), r.text
    assert "error" in r.json()
    _wait(lambda: process_server.registry.get(body["session"]["id"]) is None, 30, "the slot")


def _spawned_descendants(pid: int) -> list[int]:
    """Processes below ``pid`` started by multiprocessing (model or session workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in os.listdir(f"/proc/{current}/task"):
            for child in Path(f"/proc/{current}/task/{task}/children").read_text().split():
                todo.append(int(child))
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


def test_the_real_conversation_runs_in_a_warm_worker_on_the_machines_speech_service(
    tmp_path: Path,
) -> None:
    """The product's default path: pooled workers load no speech model of their own; the
    real conversation hears and speaks through the machine's speech service (one process of
    the web process), and when that service dies, it is restarted and the session goes on."""
    from talkie.session import voices

    options = ServerOptions(max_sessions=2, host_kind="process", warm=1, preload_models=True)
    with LiveServer(options=options) as server:
        host = server.app.state.host
        _wait(lambda: host.ready_workers == 1, 300, "the warm worker to load")
        # the local LLM is the web process's, reached over its socket, not loaded again
        expected = "attached" if node_engine() is not None else None
        assert host._pool[0].call_one("warm_state")["llm"] == expected
        worker_pid = host._pool[0].pid
        assert worker_pid is not None
        assert _spawned_descendants(worker_pid) == [], "the worker started model processes"
        service = voices._service[0]._proc
        assert service.is_alive() and service.pid in _spawned_descendants(os.getpid())
        question = make_question_wav(tmp_path / "question.wav", before=1.0)
        with wave.open(str(question), "rb") as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)

        async def scenario() -> None:
            session = await connect(server.url, "astronaut", microphone=SpeechTrack(pcm))
            try:
                assert server.registry.get(session.session_id).warm
                await session.wait_video(24, timeout=120)
                greeting = await session.wait_event(lambda e: e.get("type") == "reply", 120)
                assert greeting["text"]
                # heard through the service's recognizer
                heard = await session.wait_event(
                    lambda e: e.get("type") == "transcript" and e.get("final"), 120
                )
                assert "name" in str(heard["text"]).lower(), heard
                # chaos: the service dies; it is restarted and the next answer is spoken
                os.kill(service.pid, signal.SIGKILL)
                await _await(
                    lambda: voices._service[0]._proc not in (None, service), 60,
                    "the speech service to restart",
                )  # fmt: skip
                session.send({"type": "text", "text": "How far away is the Moon?"})
                answer = await session.wait_event(
                    lambda e: e.get("type") == "reply" and "kilometres" in str(e.get("text")),
                    120,
                )
                assert answer["text"]
                assert not [e for e in session.events if e.get("type") == "error"]
            finally:
                await session.close()

        asyncio.run(scenario())
