"""A model service: one process answering several processes of the machine on a Unix socket
(``talkie.worker.serve_endpoint``, called through ``RemoteWorker``), as the speech service is."""

from __future__ import annotations

import os
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_service_target import Words

from talkie.errors import EngineError, InvalidInputError
from talkie.worker import RemoteWorker, ServiceEndpoint, WorkerProcess


def _start(endpoint: ServiceEndpoint) -> tuple[object, object]:
    conn, proc = WorkerProcess(factory=Words, name="words", niceness=0).hand_over(endpoint)
    assert conn.poll(60) and conn.recv() == ("serving",)
    return conn, proc


@pytest.fixture()
def endpoint(tmp_path: Path) -> ServiceEndpoint:
    return ServiceEndpoint(str(tmp_path / "words.sock"), secrets.token_bytes(32))


@pytest.fixture()
def service(endpoint: ServiceEndpoint) -> Iterator[object]:
    conn, proc = _start(endpoint)
    yield proc
    conn.close()  # type: ignore[attr-defined]
    proc.join(5)  # type: ignore[attr-defined]


def test_several_callers_are_answered_at_once_and_streams_come_back_in_order(
    endpoint: ServiceEndpoint, service: object
) -> None:
    callers = [RemoteWorker(endpoint, name="words") for _ in range(3)]
    results: dict[int, list[str]] = {}

    def ask(i: int) -> None:
        results[i] = list(callers[i].call("words", f"caller {i} says hello", pause=0.05))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: ["caller", str(i), "says", "hello"] for i in range(3)}
    # one service process answered all of them
    assert {c.call_one("pid") for c in callers} == {service.pid}  # type: ignore[attr-defined]
    assert service.pid != os.getpid()  # type: ignore[attr-defined]


def test_errors_keep_their_type_and_private_methods_are_refused(
    endpoint: ServiceEndpoint, service: object
) -> None:
    caller = RemoteWorker(endpoint, name="words")
    with pytest.raises(InvalidInputError, match="nothing to shout"):
        caller.call_one("shout", "")
    with pytest.raises(InvalidInputError, match="not a public method"):
        caller.call_one("__getattribute__", "_secret")
    assert caller.call_one("shout", "still here") == "STILL HERE"


def test_a_caller_without_the_key_is_refused(endpoint: ServiceEndpoint, service: object) -> None:
    stranger = RemoteWorker(ServiceEndpoint(endpoint.address, b"guess"), name="words")
    with pytest.raises(EngineError, match="could not reach"):
        stranger.call_one("pid")


def test_a_caller_reconnects_when_the_service_comes_back(
    endpoint: ServiceEndpoint, service: object
) -> None:
    caller = RemoteWorker(endpoint, name="words", reconnect_wait=30)
    first = caller.call_one("pid")
    os.kill(first, signal.SIGKILL)
    service.join(5)  # type: ignore[attr-defined]
    os.unlink(endpoint.address)
    restarted: list[tuple[object, object]] = []
    timer = threading.Timer(1.0, lambda: restarted.append(_start(endpoint)))
    timer.start()  # the service comes back a second later, at the same address
    try:
        # the broken connection is dropped, the call waits for the service and is answered
        second = caller.call_one("pid")
    finally:
        timer.join()
        for conn, proc in restarted:
            conn.close()  # type: ignore[attr-defined]
            proc.join(5)  # type: ignore[attr-defined]
    assert second != first


def test_no_service_is_a_clear_error(tmp_path: Path) -> None:
    caller = RemoteWorker(
        ServiceEndpoint(str(tmp_path / "none.sock"), b"k"), name="words", reconnect_wait=0.3
    )
    with pytest.raises(EngineError, match="words service is not running"):
        caller.call_one("pid")


_PRIORITY_PROBE = """
import sys
from model_service_target import Words
from talkie.worker import WorkerProcess
worker = WorkerProcess(factory=Words, name="words", niceness=-3)
print(worker.call_one("priority"))
worker.close()
"""


def test_a_model_process_runs_above_normal_priority_where_it_may() -> None:
    # The speech models ask for a negative nice level (their bursts are the wait the user
    # feels). With CAP_SYS_NICE they get it; without it (setpriv drops the capability) the
    # process works at normal priority instead of failing to start.
    import shutil
    import subprocess
    import sys

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and util-linux's setpriv to run with and without CAP_SYS_NICE")
    here = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *sys.path])}
    without = [setpriv, "--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice"]
    for prefix, expected in (([], -3), (without, 0)):
        done = subprocess.run(
            [*prefix, sys.executable, "-c", _PRIORITY_PROBE], env=env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert int(done.stdout.split()[-1]) == expected, (prefix, done.stdout, done.stderr[-500:])
