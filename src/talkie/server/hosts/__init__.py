"""Where live sessions run: the ``SessionHost`` boundary and its three hosts (see ``base``).

- ``inprocess``: in the web server's process (tests, tiny installs)
- ``process``: one worker process per session on this machine, with a warm pool (the default
  of ``talkie serve``)
- ``ray``: Ray actors on a Ray cluster (optional extra ``talkie[ray]``)
"""

from __future__ import annotations

from pathlib import Path

from talkie.errors import InvalidInputError
from talkie.server.hosts.base import (
    HOST_KINDS,
    HostedSession,
    HostKind,
    SessionAnswer,
    SessionHost,
    SessionHostError,
    SessionListener,
    SessionSpec,
)

__all__ = [
    "HOST_KINDS",
    "HostKind",
    "HostedSession",
    "SessionAnswer",
    "SessionHost",
    "SessionHostError",
    "SessionListener",
    "SessionSpec",
    "make_host",
]


def make_host(
    kind: str, *, warm: int = 1, ray_address: str | None = None,
    knowledge_path: Path | None = None, preload_models: bool = False,
) -> SessionHost:  # fmt: skip
    """The session host of ``kind`` (``inprocess``, ``process`` or ``ray``)."""
    if kind == "inprocess":
        from talkie.server.hosts.inprocess import InProcessHost

        return InProcessHost()
    if kind == "process":
        from talkie.server.hosts.process import ProcessHost
        from talkie.server.hosts.session_worker import WarmUp

        return ProcessHost(
            warm=warm, knowledge_path=knowledge_path, warm_up=WarmUp(models=preload_models)
        )
    if kind == "ray":
        from talkie.server.hosts.ray_host import RayHost

        return RayHost(address=ray_address, knowledge_path=knowledge_path, models=preload_models)
    raise InvalidInputError(f"unknown session host {kind!r}: use one of {', '.join(HOST_KINDS)}")
