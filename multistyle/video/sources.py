"""Video sources: cameras, files and streams opened with clear errors, their frame rate, the processing size. Files
are read with PyAV (:class:`~.media.MediaReader`: their frames' own times, their sound); cameras and stream URLs
with OpenCV."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import MultistyleError
from .media import MediaReader


def parse_source(text: str) -> int | str:
    """``0`` → camera index 0; anything else is a file path or stream URL."""
    return int(text) if text.isdigit() else text


def is_live(source: int | str) -> bool:
    return isinstance(source, int) or "://" in str(source)


def open_source(source: int | str) -> cv2.VideoCapture | MediaReader:
    """Open a camera, file or stream, with an error that says how to pick another source. A file gives a
    :class:`~.media.MediaReader` (read like OpenCV's capture; a file it cannot read is a one-line error)."""
    if isinstance(source, str) and "://" not in source and not Path(source).is_file():
        raise MultistyleError(f"video file {source} not found; give --source 0 for the first camera, a file or a URL")
    if not is_live(source):
        return MediaReader(source)
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our own message says it better
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # and FFmpeg's own lines ("moov atom not found") too
    try:
        cap = cv2.VideoCapture(source)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not cap.isOpened():
        if isinstance(source, int):
            raise MultistyleError(f"cannot open camera {source}; try --source {source + 1}, a video file "
                                  "or a stream URL")
        raise MultistyleError(f"cannot open video source {source}; check the path/URL and that OpenCV can decode it")
    return cap


def processing_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """(h, w) of a frame brought to long side ``size`` (never up), rounded down to multiples of 4."""
    scale = min(1.0, size / max(h, w))
    return max(4, int(h * scale) // 4 * 4), max(4, int(w * scale) // 4 * 4)


def resize_for_processing(frame: np.ndarray, size: int) -> np.ndarray:
    """Downscale so the long side is ``size`` (never upscale); dimensions rounded to multiples of 4."""
    h, w = frame.shape[:2]
    nh, nw = processing_shape(h, w, size)
    return cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA) if (nh, nw) != (h, w) else frame


def source_fps(cap: cv2.VideoCapture | MediaReader, default: float = 25.0) -> float:
    """The frame rate a capture reports, or ``default`` when it reports nothing sensible (cameras, streams)."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if 1 <= fps <= 240 else default
