"""User-facing errors.

Every failure a user can cause or fix (bad file, missing weights, cancelled run) is one of these, so
front ends (CLI, web app, GIMP bridge) can print ``str(err)`` instead of a traceback.
"""

from __future__ import annotations


class OldPhotoError(Exception):
    """Base class: the message is written for the end user and says what to do."""


class InputError(OldPhotoError):
    """The image or mask given cannot be used (corrupt, unsupported, wrong size, too large)."""


class WeightsError(OldPhotoError):
    """Model weights are missing, corrupt or do not match the expected manifest."""


class OutputError(OldPhotoError):
    """A result cannot be written (disk full, no permission, the folder gone); nothing half-written stays."""


class Cancelled(OldPhotoError):
    """The user cancelled the run through the progress callback or a cancel event."""

    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message)
