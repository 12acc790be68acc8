"""A small object served by ``talkie.worker.serve_endpoint`` in the model-service tests
(importable by the spawned service process)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection

from talkie.errors import InvalidInputError
from talkie.worker import ServiceEndpoint, serve_endpoint


class Words:
    def __init__(self) -> None:
        self._secret = "not for callers"

    def pid(self) -> int:
        return os.getpid()

    def priority(self) -> int:
        return os.getpriority(os.PRIO_PROCESS, 0)

    def words(self, text: str, pause: float = 0.0) -> Iterator[str]:
        for word in text.split():
            time.sleep(pause)
            yield word

    def shout(self, text: str) -> str:
        if not text:
            raise InvalidInputError("nothing to shout")
        return text.upper()

    def serve_connection(self, conn: Connection, endpoint: ServiceEndpoint) -> None:
        serve_endpoint(self, conn, endpoint)


class StartProbe:
    """What a worker process had when its object was built (the fork-server test)."""

    def __init__(self) -> None:
        import sys

        self.preloaded = "aiortc" in sys.modules  # this module never imports it
        self.parent = os.getppid()
        self.marker = os.environ.get("TALKIE_TEST_START_MARKER")
        self.directory = os.getcwd()

    def seen(self) -> tuple[bool, int, str | None, str]:
        return self.preloaded, self.parent, self.marker, self.directory
