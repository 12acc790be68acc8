"""Meetings: the character joins a browser video call as a participant (``bot``), a small WebRTC
room to test it against (``room``), WHIP egress (``whip``) and virtual devices for desktop
meeting apps (``devices``)."""
