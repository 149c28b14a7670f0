"""Writing stylized frames to an MP4 file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import MultistyleError


class VideoRecorder:
    """Writes frames to an MP4 (mp4v) file, opened on the first frame with its size."""

    def __init__(self, path: str | Path, fps: float = 25.0) -> None:
        self.path = Path(path)
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise MultistyleError(f"cannot write video {self.path}; check the folder and the extension (.mp4)")
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
