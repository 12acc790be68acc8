"""Talkie: one image becomes a live, lip-synced talking character, on a CPU."""

__version__ = "0.1.0"
