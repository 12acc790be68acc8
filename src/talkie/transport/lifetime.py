"""When a live session ends on its own: a dead client, a maximum length, an idle user.

- **Heartbeat.** A client that sends ``{"type": "ping"}`` on the data channel promises to keep
  doing so (the bundled page pings every second). From its first ping on, a session that hears
  nothing from it (no data-channel message, no microphone audio) for ``heartbeat_timeout``
  seconds is closed: a crashed tab or a killed browser frees its slot within seconds instead of
  the ~30 s WebRTC takes to notice. Clients that never ping are left to WebRTC's own checks.
- **Maximum length** and **idle timeout** (no user speech and no typed message): the character
  says a short goodbye, then the session ends. The client is told first (a ``session_end``
  event with the ``reason`` and a ``message`` for the user), so the page does not reconnect.

``SessionLimits.ending`` is the decision (pure, for tests); ``WebRtcPeer`` runs the timers.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECK_INTERVAL = 0.25  # seconds between checks of the timers


@dataclass(frozen=True)
class Ending:
    """Why a session is ending on its own, what the character says, what the page shows."""

    reason: str  # "max_duration" | "idle"
    farewell: str
    message: str

    @property
    def close_reason(self) -> str:
        return {"max_duration": "maximum length reached", "idle": "idle timeout"}[self.reason]


@dataclass(frozen=True)
class SessionLimits:
    """How long sessions may last. ``None`` switches a limit off."""

    max_duration: float | None = 3600.0  # seconds from connection to goodbye
    idle_timeout: float | None = 300.0  # seconds without user speech or a typed message
    heartbeat_timeout: float = 4.0  # silence from a pinging client that ends the session
    farewell_timeout: float = 20.0  # the goodbye may take this long before the line is cut
    max_duration_farewell: str = "We've been talking for a long time, so I have to go now. Goodbye!"
    idle_farewell: str = "It's gone quiet, so I'll say goodbye for now. Talk to you later!"

    def __post_init__(self) -> None:
        for name in ("max_duration", "idle_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None for no limit)")
        if self.heartbeat_timeout <= 0 or self.farewell_timeout <= 0:
            raise ValueError("heartbeat_timeout and farewell_timeout must be positive")

    def ending(self, *, elapsed: float, idle: float) -> Ending | None:
        """The reason to end now, after ``elapsed`` seconds of which the last ``idle`` had no
        user activity (``None``: carry on). The maximum length wins over idleness."""
        if self.max_duration is not None and elapsed >= self.max_duration:
            minutes = _minutes(self.max_duration)
            return Ending(
                "max_duration", self.max_duration_farewell,
                f"The session reached its maximum length ({minutes}).",
            )  # fmt: skip
        if self.idle_timeout is not None and idle >= self.idle_timeout:
            minutes = _minutes(self.idle_timeout)
            return Ending(
                "idle", self.idle_farewell,
                f"The session ended after {minutes} without a word from you.",
            )  # fmt: skip
        return None


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
