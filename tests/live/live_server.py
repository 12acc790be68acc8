"""Run the real Talkie server (uvicorn) in a background thread on a free 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from talkie.server.app import ServerOptions
from talkie.server.cli import make_server

T = TypeVar("T")


class LiveServer:
    """``with LiveServer(...) as server:`` -> ``server.url``; ``server.call(coro_fn)`` runs a
    coroutine on the server's event loop (to inspect the registry, asyncio tasks...)."""

    def __init__(self, **app_kwargs: Any) -> None:
        # Each server gets its own data folder: a second server on the same database would end
        # the first one's sessions at startup (it takes them for leftovers of a crashed run).
        options = app_kwargs.pop("options", None) or ServerOptions()
        if options.data_dir is None:
            options = dataclasses.replace(
                options, data_dir=Path(tempfile.mkdtemp(prefix="talkie-live-data-"))
            )
        self.data_dir: Path = options.data_dir
        self._server = make_server(
            host="127.0.0.1", port=0, announce=False, options=options, **app_kwargs
        )
        self._thread = threading.Thread(target=self._run, name="talkie-live-server", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self.url = ""

    @property
    def app(self) -> Any:
        return self._server.config.app

    @property
    def registry(self) -> Any:
        return self.app.state.registry

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve()

    def start(self, timeout: float = 20.0) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        # uvicorn says "started" a moment before the real port (0 was asked) is known.
        while not (self._server.started and self._server.port):
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the server did not start: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start in time")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self._server.port}"
        httpx.get(self.url + "/v1/health", timeout=5).raise_for_status()
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """Stop (graceful: the app's shutdown closes live sessions). Idempotent."""
        if not self._thread.is_alive():
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the server did not stop in time")

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the server's loop and return its result."""
        assert self._loop is not None
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(fn(), self._loop)
        return future.result(timeout)

    def task_count(self) -> int:
        async def count() -> int:
            return len(asyncio.all_tasks())

        return self.call(count)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def admin_key(self) -> str:
        """The admin key the server created at its first start."""
        return (self.data_dir / "admin.key").read_text().strip()

    def admin(self) -> httpx.Client:
        """An HTTP client for this server authenticated with the admin key."""
        return httpx.Client(
            base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {self.admin_key}"}
        )

    def end_reason(self, session_id: str) -> str | None:
        """Why the session ended, as the API reports it."""
        with self.admin() as admin:
            reason: str | None = admin.get(f"/v1/sessions/{session_id}").json()["end_reason"]
            return reason
