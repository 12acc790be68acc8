"""Session workers forked from a fork server that imported their modules once
(``talkie.worker.preload_fork_server``), seen from inside the worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from model_service_target import StartProbe

from talkie.errors import InvalidInputError
from talkie.server.hosts.process import WORKER_IMPORTS, ProcessHost
from talkie.worker import WorkerProcess, preload_fork_server


def _seen(start_method: str) -> tuple[bool, int, str | None, str]:
    worker = WorkerProcess(
        factory=StartProbe, name=f"probe-{start_method}", niceness=0, start_method=start_method
    )
    try:
        return next(worker.call("seen"))
    finally:
        worker.close()


def test_a_forked_worker_starts_with_its_imports_done_and_the_parents_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preload_fork_server(WORKER_IMPORTS)  # as the process host does (the first call counts)
    # Set after the fork server started: a worker must still see them, as a spawned one would.
    monkeypatch.setenv("TALKIE_TEST_START_MARKER", "after the fork server")
    monkeypatch.chdir(tmp_path)

    preloaded, parent, marker, directory = _seen("forkserver")
    assert preloaded  # the WebRTC stack was imported before the worker existed
    assert parent != os.getpid()  # forked by the fork server, not by this process
    assert marker == "after the fork server"
    assert Path(directory) == tmp_path

    preloaded, parent, marker, directory = _seen("spawn")
    assert not preloaded and parent == os.getpid()
    assert marker == "after the fork server" and Path(directory) == tmp_path


def test_an_unknown_start_method_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="start_method"):
        WorkerProcess(factory=StartProbe, name="probe", start_method="fork")
    with pytest.raises(InvalidInputError, match="start_method"):
        ProcessHost(start_method="fork")
