"""The recorder's old name: frames are written by :class:`~.media.MediaWriter` (H.264 MP4, the moov atom first,
atomic), which takes ``VideoRecorder(path, fps)``, ``write(frame)`` and ``close()`` as before."""

from __future__ import annotations

from .media import MediaWriter as VideoRecorder

__all__ = ["VideoRecorder"]
