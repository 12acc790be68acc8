"""Media in and out: strict image/audio loading and MP4 writing.

Inputs from users are untrusted: loaders check format by magic bytes, size and integrity, and raise
``talkie.errors.InvalidInputError`` with a one-line message saying what is wrong and what to do.
"""

from talkie.media.audio import is_silent, load_audio, save_wav
from talkie.media.image import decode_image_bytes, load_image
from talkie.media.video import EncodeStats, Mp4Writer, probe_video, read_frames

__all__ = [
    "EncodeStats",
    "Mp4Writer",
    "decode_image_bytes",
    "is_silent",
    "load_audio",
    "load_image",
    "probe_video",
    "read_frames",
    "save_wav",
]
