"""Real-time video stylization: a threaded capture → stylize → display/encode pipeline, key controls, a HUD and
flow-based flicker reduction (OpenCV DIS optical flow with a forward-backward consistency mask)."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from .errors import MultistyleError

# ---- flicker reduction -----------------------------------------------------------------------------------------


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``x + flow(x)`` (bilinear, border replicated)."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


class FlowEstimator:
    """Dense optical flow with OpenCV's DIS (fast preset)."""

    def __init__(self) -> None:
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow f with ``source(x) ≈ target(x + f(x))``."""
        return self.dis.calc(_gray(source), _gray(target), None)


def consistency_mask(backward: np.ndarray, forward: np.ndarray, current: np.ndarray, warped_prev: np.ndarray,
                     flow_tol: float = 1.0, color_tol: float = 30.0) -> np.ndarray:
    """1 where the previous frame's pixel is trustworthy: forward-backward flow agrees (not occluded) and the
    warped previous input looks like the current input; 0 elsewhere. Float32 [H, W] softened by a blur."""
    round_trip = backward + warp(forward, backward)
    bad_flow = np.linalg.norm(round_trip, axis=2) > flow_tol + 0.05 * (np.linalg.norm(backward, axis=2)
                                                                        + np.linalg.norm(forward, axis=2))
    diff = np.abs(current.astype(np.int16) - warped_prev.astype(np.int16)).max(axis=2) > color_tol
    mask = (~(bad_flow | diff)).astype(np.float32)
    return cv2.GaussianBlur(mask, (5, 5), 0)


class FlickerReducer:
    """Blend each stylized frame with the previous stylized frame warped onto it by optical flow of the input
    frames, where the flow is consistent; new or occluded pixels keep the fresh stylization."""

    def __init__(self, keep: float = 0.7) -> None:
        self.keep = keep
        self.flow = FlowEstimator()
        self.prev_input: np.ndarray | None = None
        self.prev_output: np.ndarray | None = None

    def reset(self) -> None:
        self.prev_input = self.prev_output = None

    def __call__(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """``frame`` and ``stylized``: uint8 [H, W, 3] of the same size → the temporally smoothed stylization."""
        if self.prev_input is None or self.prev_input.shape != frame.shape:
            out = stylized
        else:
            backward = self.flow(frame, self.prev_input)
            forward = self.flow(self.prev_input, frame)
            mask = consistency_mask(backward, forward, frame, warp(self.prev_input, backward))
            warped = warp(self.prev_output, backward).astype(np.float32)
            alpha = (self.keep * mask)[..., None]
            out = (alpha * warped + (1 - alpha) * stylized.astype(np.float32) + 0.5).astype(np.uint8)
        self.prev_input, self.prev_output = frame, out
        return out


def flicker_metric(frames: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    """Mean absolute difference (0–255) between consecutive stylized frames after warping the earlier one onto
    the later by the input frames' flow, over pixels where that flow is consistent."""
    flow = FlowEstimator()
    total, count = 0.0, 0
    for t in range(1, len(frames)):
        backward = flow(frames[t], frames[t - 1])
        forward = flow(frames[t - 1], frames[t])
        mask = consistency_mask(backward, forward, frames[t], warp(frames[t - 1], backward)) > 0.99
        diff = np.abs(outputs[t].astype(np.float32) - warp(outputs[t - 1], backward).astype(np.float32)).mean(2)
        total += float(diff[mask].sum())
        count += int(mask.sum())
    return total / max(count, 1)


# ---- key controls ------------------------------------------------------------------------------------------------

@dataclass
class Controls:
    """What the user has chosen with the keyboard. ``handle_key`` returns False when the user wants to quit."""

    names: list[str]
    style: int = 0
    mix_with: int | None = None
    mix: float = 0.5  # weight of ``mix_with`` when mixing
    strength: float = 1.0
    preserve_color: bool = False
    flicker: bool = True
    recording: bool = False
    snapshots: int = 0  # snapshot requests not yet served
    log: list[str] = field(default_factory=list)

    def handle_key(self, key: int) -> bool:
        if key < 0:
            return True
        ch = chr(key & 0xFF) if (key & 0xFF) < 128 else ""
        n = len(self.names)
        if key == 27 or ch == "q":
            return False
        if ch == "n":
            self.style = (self.style + 1) % n
        elif ch == "p":
            self.style = (self.style - 1) % n
        elif ch.isdigit():
            if int(ch) < n:
                self.style = int(ch)
        elif ch == "m":
            self.mix_with = None if self.mix_with is not None else (self.style + 1) % n
        elif ch == "[" and self.mix_with is not None:
            self.mix = max(0.0, round(self.mix - 0.1, 2))
        elif ch == "]" and self.mix_with is not None:
            self.mix = min(1.0, round(self.mix + 0.1, 2))
        elif ch in "+=":
            self.strength = min(1.0, round(self.strength + 0.1, 2))
        elif ch in "-_":
            self.strength = max(0.0, round(self.strength - 0.1, 2))
        elif ch == "c":
            self.preserve_color = not self.preserve_color
        elif ch == "f":
            self.flicker = not self.flicker
        elif ch == " ":
            self.snapshots += 1
        elif ch == "r":
            self.recording = not self.recording
        return True

    def weights(self) -> torch.Tensor:
        """[1, S] style weights of the current choice."""
        w = torch.zeros(1, len(self.names))
        if self.mix_with is None or self.mix_with == self.style:
            w[0, self.style] = 1.0
        else:
            w[0, self.style] = 1.0 - self.mix
            w[0, self.mix_with] = self.mix
        return w

    def label(self) -> str:
        if self.mix_with is None or self.mix_with == self.style:
            return self.names[self.style]
        return f"{self.names[self.style]} {1 - self.mix:.1f} + {self.names[self.mix_with]} {self.mix:.1f}"


def draw_hud(frame: np.ndarray, controls: Controls, fps: float, device: str) -> np.ndarray:
    """Style, mix, strength, flags, FPS and device in the top-left corner (in place)."""
    flags = "".join(f for f, on in ((" color", controls.preserve_color), (" deflicker", controls.flicker),
                                     (" REC", controls.recording)) if on)
    lines = [controls.label(), f"{fps:.1f} fps  {device}  strength {controls.strength:.1f}{flags}"]
    for i, text in enumerate(lines):
        y = 20 + 20 * i
        cv2.putText(frame, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frame, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


# ---- sources and the pipeline ------------------------------------------------------------------------------------

def parse_source(text: str) -> int | str:
    """``0`` → camera index 0; anything else is a file path or stream URL."""
    return int(text) if text.isdigit() else text


def is_live(source: int | str) -> bool:
    return isinstance(source, int) or "://" in str(source)


def open_source(source: int | str) -> cv2.VideoCapture:
    """Open a camera, file or stream, with an error that says how to pick another source."""
    if isinstance(source, str) and "://" not in source and not Path(source).is_file():
        raise MultistyleError(f"video file {source} not found; give --source 0 for the first camera, a file or a URL")
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our own message says it better
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


def resize_for_processing(frame: np.ndarray, size: int) -> np.ndarray:
    """Downscale so the long side is ``size`` (never upscale); dimensions rounded to multiples of 4."""
    h, w = frame.shape[:2]
    scale = min(1.0, size / max(h, w))
    nh, nw = max(4, int(h * scale) // 4 * 4), max(4, int(w * scale) // 4 * 4)
    return cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA) if (nh, nw) != (h, w) else frame


class FrameStylizer:
    """BGR uint8 frame → stylized BGR uint8 frame at processing size, with optional flicker reduction."""

    def __init__(self, stylizer, controls: Controls, size: int) -> None:
        self.stylizer = stylizer
        self.controls = controls
        self.size = size
        self.flicker = FlickerReducer()
        self._pin = stylizer.device.type == "cuda"

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        small = resize_for_processing(frame, self.size)
        rgb = torch.from_numpy(np.ascontiguousarray(small[:, :, ::-1]))
        if self._pin:
            rgb = rgb.pin_memory()
        x = rgb.to(self.stylizer.device, non_blocking=True).permute(2, 0, 1)[None].float().div_(255)
        c = self.controls
        out = self.stylizer(x, c.weights(), c.strength, c.preserve_color)
        bgr = np.ascontiguousarray((out[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255 + 0.5).astype(np.uint8))
        if c.flicker:
            bgr = self.flicker(small, bgr)
        else:
            self.flicker.reset()
        return small, bgr


def _put_latest(q: queue.Queue, item, drop_stale: bool) -> None:
    """Put ``item``; with ``drop_stale`` replace whatever is waiting instead of blocking."""
    if not drop_stale:
        q.put(item)
        return
    while True:
        try:
            q.put_nowait(item)
            return
        except queue.Full:
            try:
                q.get_nowait()
            except queue.Empty:
                pass


@dataclass
class RunStats:
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    reconnects: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds else 0.0


def run_pipeline(source: int | str, process: FrameStylizer, sink: Callable[[np.ndarray, np.ndarray], bool],
                 max_frames: int | None = None, reconnect_tries: int = 5,
                 log: Callable[[str], None] = print) -> RunStats:
    """Capture → stylize → ``sink(input_small, stylized)`` in three threads with bounded queues.

    Live sources drop stale frames (latency never builds up) and are reopened when lost; files process
    every frame. ``sink`` returns False to stop.
    """
    live = is_live(source)
    cap = open_source(source)
    stats = RunStats()
    stop = threading.Event()
    frames: queue.Queue = queue.Queue(maxsize=1 if live else 4)
    results: queue.Queue = queue.Queue(maxsize=1 if live else 4)
    errors: list[BaseException] = []
    done = object()

    def capture() -> None:
        nonlocal cap
        tries = 0
        try:
            while not stop.is_set():
                if max_frames is not None and stats.frames_in >= max_frames:
                    break
                ok, frame = cap.read()
                if not ok:
                    if not live:
                        break
                    tries += 1
                    if tries > reconnect_tries:
                        log(f"video source {source} lost; gave up after {reconnect_tries} reconnect attempts")
                        break
                    log(f"video source {source} lost; reconnecting ({tries}/{reconnect_tries})")
                    cap.release()
                    time.sleep(min(2.0, 0.2 * 2 ** tries))
                    cap = cv2.VideoCapture(source)
                    stats.reconnects += 1
                    continue
                tries = 0
                stats.frames_in += 1
                if live and frames.full():
                    stats.dropped += 1
                _put_latest(frames, frame, live)
        finally:
            _put_until(frames, done, stop, live)

    def infer() -> None:
        try:
            while not stop.is_set():
                frame = frames.get()
                if frame is done:
                    break
                item = process(frame)
                if live and results.full():
                    stats.dropped += 1
                _put_latest(results, item, live)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            _put_until(results, done, stop, live)

    threads = [threading.Thread(target=capture, daemon=True), threading.Thread(target=infer, daemon=True)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    try:
        while True:
            item = results.get()
            if item is done:
                break
            stats.frames_out += 1
            stats.seconds = time.perf_counter() - start
            if not sink(*item):
                break
    finally:
        stop.set()
        for q in (frames, results):
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass
        for t in threads:
            t.join(timeout=5)
        cap.release()
    stats.seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return stats


def _put_until(q: queue.Queue, item, stop: threading.Event, drop_stale: bool) -> None:
    """Deliver an end marker: replace stale items on live sources, else wait for room unless stopping."""
    if drop_stale:
        _put_latest(q, item, True)
        return
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


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
