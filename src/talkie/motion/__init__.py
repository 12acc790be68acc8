"""Motion: speech (phoneme timeline and/or audio) + idle/listening behaviour -> FaceParams.

The entry point is :class:`MotionGenerator`, which produces :class:`~talkie.messages.FaceFrame`
objects four at a time, each step continuing the last. The parts are usable on their own:
``visemes`` (phoneme -> viseme -> mouth shape, reference openness track), ``lipsync`` (mouth
track of a clip), ``prosody`` (speech gestures) and ``idle`` (blinks, breathing, drift, gaze).
"""

from talkie.motion.generator import MotionGenerator, MotionOptions
from talkie.motion.idle import IdleMotion, IdleOptions
from talkie.motion.lipsync import RENDERED_LIP_LEAD, LipSyncOptions, MouthTrack, mouth_track
from talkie.motion.prosody import ProsodyOptions, ProsodyTrack, prosody_track
from talkie.motion.visemes import OPENNESS, VISEMES, phoneme_openness_track, viseme_for

__all__ = [
    "OPENNESS",
    "RENDERED_LIP_LEAD",
    "VISEMES",
    "IdleMotion",
    "IdleOptions",
    "LipSyncOptions",
    "MotionGenerator",
    "MotionOptions",
    "MouthTrack",
    "ProsodyOptions",
    "ProsodyTrack",
    "mouth_track",
    "phoneme_openness_track",
    "prosody_track",
    "viseme_for",
    "product_motion_options",
]


def product_motion_options() -> MotionOptions:
    """Motion options for what people watch (offline renders and live sessions): the mouth
    leads the sound by ``RENDERED_LIP_LEAD``, as measured on rendered frames."""
    return MotionOptions(lip_lead=RENDERED_LIP_LEAD)
