"""Transports: carry a live conversation's media and events to a client (WebRTC via aiortc).

A transport never reaches into the session's stages: it pulls paced frames from a
``talkie.session.contract.LiveConversation``, pushes the user's audio into it and relays events.
"""

from talkie.transport.webrtc import WebRtcOptions, WebRtcPeer

__all__ = ["WebRtcOptions", "WebRtcPeer"]
