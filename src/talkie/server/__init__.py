"""Talkie's web server: REST API, WebRTC signalling and the browser client."""

from talkie.server.app import ServerOptions, create_app

__all__ = ["ServerOptions", "create_app"]
