"""One error hierarchy for Talkie.

A ``TalkieError`` is a problem the user can fix (bad input, missing optional dependency): its
message is one line that says what is wrong and what to do. The CLI prints it without a traceback.
Anything else escaping is a bug.
"""

from __future__ import annotations


class TalkieError(Exception):
    """Base class: the message is shown to the user as-is."""


class InvalidInputError(TalkieError):
    """An input file or value cannot be used (not an image, truncated, too large, empty text...)."""


class NoFaceFoundError(InvalidInputError):
    """No usable face was found in the image: a person can place the face points by hand."""


class ImplausibleFaceError(NoFaceFoundError):
    """A face was detected, but its mesh fails the plausibility check (a misread drawing):
    animating it would break the character, so it needs hand-placed points too."""


class MissingDependencyError(TalkieError):
    """An optional dependency is not installed; the message names the extra to install."""


class EngineError(TalkieError):
    """A model or codec failed at run time."""
