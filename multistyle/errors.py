"""Typed exceptions. Every user-facing failure is one of these, with a one-line message that says what to do."""

from __future__ import annotations


class MultistyleError(Exception):
    """Base class of all errors this package raises on purpose."""


class WeightsNotFoundError(MultistyleError):
    """No usable VGG19 weights were found (or the ones found are corrupt)."""


class ImageError(MultistyleError):
    """An input image is missing, unreadable, too large or otherwise unusable."""


class ModelFileError(MultistyleError):
    """A model file is missing, corrupt, of another architecture or of a newer format."""


class StyleError(MultistyleError):
    """An unknown style name or invalid style mix weights."""
