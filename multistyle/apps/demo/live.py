"""The demo's Live tab: the visitor's webcam, stylized frame by frame inside a Gradio stream.

The browser sends a JPEG of its camera every ``1 / live_fps`` seconds (Gradio's streaming ``gr.Image``); Gradio
keeps only the newest frame of a stream that is still busy, so stale frames are dropped, never queued. Each
visitor's frames go through their own :class:`~multistyle.video.frames.FrameStylizer` (its own flicker-reduction
state) at most ``live_size`` px on the long side (``multistyle demo`` runs torch on one thread per request, so
visitors' frames run side by side, a core each). The result goes back inline as a JPEG data URL
(:func:`live_output`): no file per frame in Gradio's cache, no second HTTP request per frame (see README,
Performance, for where the time goes)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from ...errors import MultistyleError
from ...stylizer import Stylizer
from ...video.frames import FrameSettings, FrameStylizer
from ...video.sources import processing_shape

JPEG_QUALITY = 80
FPS_EVERY = 1.0  # seconds between updates of the frame-rate line
NEW_STREAM_GAP = 3.0  # seconds without a frame after which the next frame starts a new stream
MIN_FACTOR = 0.5  # ... down to half the live size at most
ADAPT_EVERY = 1.0  # seconds between size changes


def encode_jpeg_data_url(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    """RGB uint8 [H, W, 3] → ``data:image/jpeg;base64,...`` (OpenCV's encoder: ~4x PIL's speed)."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MultistyleError("could not JPEG-encode a live frame")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def live_output(**kwargs):
    """A ``gr.Image`` output for video-rate updates: an RGB array becomes an inline JPEG data URL (the browser
    shows it without fetching a file, and nothing accumulates in Gradio's cache); other values as ``gr.Image``.
    (The instance's ``postprocess`` is replaced rather than the class subclassed: Gradio writes a ``.pyi`` stub
    next to the source of every Component subclass.)"""
    import gradio as gr
    from gradio.data_classes import ImageData

    image = gr.Image(**kwargs)
    default = image.postprocess

    def postprocess(value):
        if isinstance(value, np.ndarray):
            return ImageData(url=encode_jpeg_data_url(value), mime_type="image/jpeg")
        return default(value)

    image.postprocess = postprocess
    return image


@dataclass
class FrameRate:
    """Frames delivered per second (exponential moving average of the intervals) and server time per frame."""

    fps: float = 0.0
    server_ms: float = 0.0
    frames: int = 0
    _last: float | None = None
    _shown: float = field(default=0.0)

    def tick(self, started: float) -> None:
        now = time.perf_counter()
        if self._last is not None:
            interval = max(now - self._last, 1e-6)
            self.fps = 1 / interval if self.frames < 3 else 0.8 * self.fps + 0.2 / interval
        self.server_ms = 1000 * (now - started) if self.frames == 0 else \
            0.8 * self.server_ms + 200 * (now - started)
        self._last, self.frames = now, self.frames + 1

    def due(self) -> bool:
        """True about once a second: when the frame-rate line is worth re-sending."""
        now = time.perf_counter()
        if now - self._shown >= FPS_EVERY:
            self._shown = now
            return True
        return False


@dataclass
class AdaptiveSize:
    """The processing size of one stream: lowered (×0.85) when the server's time per frame leaves no room for
    ``target_fps`` on this host, raised again (×1.15, up to the live size) when it leaves plenty. The shown size
    never changes (the result is brought back to it) and the visitor's stroke scale is kept as they set it."""

    size: int
    target_fps: float
    factor: float = 1.0
    _changed: float = 0.0

    def current(self) -> int:
        return max(16, round(self.size * self.factor / 4) * 4)

    def update(self, server_ms: float, frames: int) -> None:
        now = time.perf_counter()
        if frames < 5 or now - self._changed < ADAPT_EVERY:
            return
        budget = 1000.0 / self.target_fps
        if server_ms > 0.9 * budget and self.factor > MIN_FACTOR:
            self.factor, self._changed = max(MIN_FACTOR, self.factor * 0.85), now
        elif server_ms < 0.55 * budget and self.factor < 1.0:
            self.factor, self._changed = min(1.0, self.factor * 1.15), now


class LiveStream:
    """One visitor's live state: a FrameStylizer on their network (own flicker reducer), their frame rate and
    their adaptive processing size."""

    def __init__(self, stylizer: Stylizer, size: int, settings: FrameSettings, target_fps: float | None = None
                 ) -> None:
        self.stylizer = stylizer
        self.frames = FrameStylizer(stylizer, settings, size)  # the settings are replaced frame by frame
        self.size = size
        self.adaptive = AdaptiveSize(size, target_fps) if target_fps else None
        self.rate = FrameRate()
        self.shape: tuple[int, int] | None = None
        self.began: float | None = None  # when the current stream's first frame came
        self.last: float | None = None  # when its latest frame came

    def streamed(self) -> float:
        """Seconds the current stream has run (0 when the last frame is older than :data:`NEW_STREAM_GAP`)."""
        now = time.perf_counter()
        if self.began is None or self.last is None or now - self.last > NEW_STREAM_GAP:
            return 0.0
        return now - self.began

    def restart(self) -> None:
        """The next frame starts a new stream (after this one was ended to let others in)."""
        self.began = self.last = None

    def __call__(self, rgb: np.ndarray, settings: FrameSettings) -> np.ndarray:
        """One browser frame (RGB uint8, any size) → the stylized frame (RGB uint8, at most the live size)."""
        started = time.perf_counter()
        if self.streamed() == 0.0:
            self.began = started
        self.last = started
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise MultistyleError("the camera sent something that is not a colour frame")
        self.frames.settings = settings
        self.frames.size = self.adaptive.current() if self.adaptive else self.size
        bgr = np.ascontiguousarray(rgb[:, :, 2::-1])  # RGB(A) → BGR
        _, out = self.frames(bgr)  # the network, then flicker reduction
        self.shape = out.shape[:2]
        shown = processing_shape(*bgr.shape[:2], self.size)
        if out.shape[:2] != shown:
            out = cv2.resize(out, shown[::-1], interpolation=cv2.INTER_LINEAR)
        self.rate.tick(started)
        if self.adaptive:
            self.adaptive.update(self.rate.server_ms, self.rate.frames)
        return out[:, :, ::-1]

    def status(self) -> str:
        """The frame-rate line under the live image."""
        h, w = self.shape or (0, 0)
        reduced = " (lowered to keep the frame rate)" if self.adaptive and self.adaptive.factor < 1 else ""
        return (f"**{self.rate.fps:.1f} fps** served · {w}×{h} px{reduced} · {self.rate.server_ms:.0f} ms per "
                f"frame on the server ({self.stylizer.device})")
