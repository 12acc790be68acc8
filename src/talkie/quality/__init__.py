"""Closed-loop quality measurement of RENDERED frames.

Tests and benchmarks judge the output by re-detecting the face on it (mediapipe FaceMesh), never
by trusting the parameters the renderer was given:

- ``FaceMeasurer``: per-frame mouth aperture / width, eye openness, head roll, landmarks.
- ``best_lag`` / ``lag_curve`` / ``correlation``: A/V offset and lip-sync quality
  (positive lag = the first signal is LATE relative to the reference).
- ``blink_events``: blink onsets from an eye-openness track.
- ``face_ssim`` / ``align_face``: likeness over the face region.
"""

from talkie.quality.face import (
    INNER_LIP_PAIRS,
    LEFT_EYE_CORNERS,
    LEFT_EYE_LIDS,
    MOUTH_CORNERS,
    OUTER_EYE_CORNERS,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LIDS,
    TRACK_KEYS,
    FaceMeasure,
    FaceMeasurer,
    landmark_box,
    measure_landmarks,
    tracks_from,
)
from talkie.quality.signals import best_lag, blink_events, correlation, lag_curve
from talkie.quality.similarity import RIGID_LANDMARKS, align_face, face_box, face_ssim

__all__ = [
    "INNER_LIP_PAIRS",
    "LEFT_EYE_CORNERS",
    "LEFT_EYE_LIDS",
    "MOUTH_CORNERS",
    "OUTER_EYE_CORNERS",
    "RIGHT_EYE_CORNERS",
    "RIGHT_EYE_LIDS",
    "RIGID_LANDMARKS",
    "TRACK_KEYS",
    "FaceMeasure",
    "FaceMeasurer",
    "align_face",
    "best_lag",
    "blink_events",
    "correlation",
    "face_box",
    "face_ssim",
    "lag_curve",
    "landmark_box",
    "measure_landmarks",
    "tracks_from",
]
