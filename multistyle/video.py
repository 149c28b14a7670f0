"""Real-time video stylization: a threaded capture → stylize → display/encode pipeline, key controls, a HUD and
flow-based flicker reduction (OpenCV DIS optical flow with a forward-backward consistency mask)."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from .errors import MultistyleError

# ---- flicker reduction -----------------------------------------------------------------------------------------


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def _sampling_map(flow: np.ndarray) -> np.ndarray:
    """``x + flow(x)`` as one float32 [H, W, 2] map for ``cv2.remap`` (the pixel grid is built once per size)."""
    h, w = flow.shape[:2]
    grid = _GRIDS.get((h, w))
    if grid is None:
        if len(_GRIDS) > 8:  # a few sizes at a time (the webcam's, the metric's)
            _GRIDS.clear()
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        grid = _GRIDS[(h, w)] = np.dstack([xs, ys])
    return flow + grid


def _remap(image: np.ndarray, sampling_map: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``sampling_map`` (bilinear, border replicated): a warp along the map's flow."""
    return cv2.remap(image, sampling_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _norm(flow: np.ndarray) -> np.ndarray:
    return cv2.magnitude(*cv2.split(flow))


class FlowEstimator:
    """Dense optical flow with OpenCV's DIS (fast preset)."""

    def __init__(self) -> None:
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow f with ``source(x) ≈ target(x + f(x))``."""
        return self.dis.calc(_gray(source), _gray(target), None)


def consistency_mask(backward: np.ndarray, forward: np.ndarray, current: np.ndarray, warped_prev: np.ndarray,
                     flow_tol: float = 1.0, color_tol: float = 30.0,
                     sampling_map: np.ndarray | None = None) -> np.ndarray:
    """1 where the previous frame's pixel is trustworthy: forward-backward flow agrees (not occluded) and the
    warped previous input looks like the current input; 0 elsewhere. Float32 [H, W] softened by a blur.
    ``sampling_map``: ``_sampling_map(backward)`` when the caller has it (it warped ``warped_prev`` with it).
    (OpenCV primitives throughout: at 640x360 this was 28 ms in NumPy, the costliest part of the pipeline's
    flicker stage.)"""
    if sampling_map is None:
        sampling_map = _sampling_map(backward)
    round_trip = backward + _remap(forward, sampling_map)
    bad_flow = _norm(round_trip) > flow_tol + 0.05 * (_norm(backward) + _norm(forward))
    diff = cv2.absdiff(current, warped_prev)
    if diff.ndim == 3:
        channels = cv2.split(diff)
        diff = channels[0]
        for c in channels[1:]:
            diff = cv2.max(diff, c)
    mask = np.logical_not(bad_flow | (diff > color_tol)).astype(np.float32)
    return cv2.GaussianBlur(mask, (5, 5), 0)


class FlickerReducer:
    """Blend each stylized frame with the previous stylized frame warped onto it by optical flow of the input
    frames, where the flow is consistent; new or occluded pixels keep the fresh stylization."""

    def __init__(self, keep: float = 0.7, flow_side: int | None = 320) -> None:
        self.keep = keep
        self.flow_side = flow_side  # flows and mask at most this long side, then upsampled (None: full size)
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
            h, w = frame.shape[:2]
            scale = min(1.0, self.flow_side / max(h, w)) if self.flow_side else 1.0
            if scale < 1.0:  # flow and mask at low resolution: DIS and the mask cost scale with the pixels
                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                small, prev = (cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in (frame, self.prev_input))
            else:
                small, prev = frame, self.prev_input
            backward = self.flow(small, prev)
            forward = self.flow(prev, small)
            small_map = _sampling_map(backward)
            mask = consistency_mask(backward, forward, small, _remap(prev, small_map), sampling_map=small_map)
            if scale < 1.0:
                backward = cv2.resize(backward, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(1 / scale)
                mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
            sampling_map = _sampling_map(backward)
            alpha = self.keep * mask
            # per-pixel alpha * warped + (1 - alpha) * stylized, rounded, in one OpenCV call
            out = cv2.blendLinear(_remap(self.prev_output, sampling_map), stylized, alpha, 1.0 - alpha)
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
        sampling_map = _sampling_map(backward)  # shared by the three warps along the backward flow
        mask = consistency_mask(backward, forward, frames[t], _remap(frames[t - 1], sampling_map),
                                sampling_map=sampling_map) > 0.99
        diff = np.abs(outputs[t].astype(np.float32) - _remap(outputs[t - 1], sampling_map).astype(np.float32)).mean(2)
        total += float(diff[mask].sum())
        count += int(mask.sum())
    return total / max(count, 1)


# ---- key controls ------------------------------------------------------------------------------------------------

SCALE_STEPS = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)  # stroke scales the , and . keys step through

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
    scale: float = 1.0  # stroke scale: the network runs at scale × the processing size
    fixed: torch.Tensor | None = None  # a fixed [1, S] style mix (any number of styles) instead of style/mix_with
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
        elif ch in ",<":
            self.scale = max(SCALE_STEPS[0], max([s for s in SCALE_STEPS if s < self.scale], default=SCALE_STEPS[0]))
        elif ch in ".>":
            self.scale = min([s for s in SCALE_STEPS if s > self.scale], default=SCALE_STEPS[-1])
        elif ch == "f":
            self.flicker = not self.flicker
        elif ch == " ":
            self.snapshots += 1
        elif ch == "r":
            self.recording = not self.recording
        return True

    def weights(self) -> torch.Tensor:
        """[1, S] style weights of the current choice."""
        if self.fixed is not None:
            return self.fixed
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
    """Style, mix, strength, stroke scale, flags, FPS and device in the top-left corner (in place)."""
    flags = "".join(f for f, on in ((" color", controls.preserve_color), (" deflicker", controls.flicker),
                                     (" REC", controls.recording)) if on)
    lines = [controls.label(),
             f"{fps:.1f} fps  {device}  strength {controls.strength:.1f}  scale {controls.scale:g}{flags}"]
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


def resize_for_processing(frame: np.ndarray, size: int) -> np.ndarray:
    """Downscale so the long side is ``size`` (never upscale); dimensions rounded to multiples of 4."""
    h, w = frame.shape[:2]
    scale = min(1.0, size / max(h, w))
    nh, nw = max(4, int(h * scale) // 4 * 4), max(4, int(w * scale) // 4 * 4)
    return cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA) if (nh, nw) != (h, w) else frame


class StageTimer:
    """Per-stage wall times of the video pipeline (each stage runs in one thread; appends are thread-safe)."""

    def __init__(self, sync: bool = False) -> None:
        self.sync = sync  # wait for the GPU at each stage boundary so device work is charged to its stage
        self.times: dict[str, list[float]] = defaultdict(list)

    def add(self, stage: str, seconds: float) -> None:
        self.times[stage].append(seconds)

    def mean_ms(self, skip: int = 2) -> dict[str, float]:
        """Mean milliseconds per frame of each stage, after ``skip`` warm-up frames."""
        return {k: 1000 * float(np.mean(v[skip:] or v)) for k, v in self.times.items() if v}


class FrameStylizer:
    """BGR uint8 frame → stylized BGR uint8 frame at processing size, with optional flicker reduction.

    The frame goes to the device as uint8 and comes back as uint8 BGR (converted on the device: a quarter of the
    float traffic); the style weights stay on the device until the mix changes, so the network's γ/β cache holds.
    :meth:`infer` and :meth:`deflicker` are separate stages, run in separate threads by :func:`run_pipeline`.
    ``compile``: run the network through ``torch.compile`` (CUDA graphs on CUDA) for the fixed frame size.
    """

    def __init__(self, stylizer, controls: Controls, size: int, timer: StageTimer | None = None,
                 compile: bool = False) -> None:
        self.stylizer = stylizer
        self.controls = controls
        self.size = size
        self.flicker = FlickerReducer()
        self.timer = timer
        self.device = stylizer.device
        self._cuda = self.device.type == "cuda"
        self._weights: tuple[tuple[float, ...], torch.Tensor] | None = None
        self.net = None
        if self._cuda:
            torch.backends.cudnn.benchmark = True  # fixed frame size: let cuDNN pick the fastest kernels
        if compile:
            self.net = compile_net(stylizer.net, self.device)

    def weights(self) -> torch.Tensor:
        """The controls' style weights on the device; the same tensor until the mix changes."""
        w = self.controls.weights()
        key = tuple(w.reshape(-1).tolist())
        if self._weights is None or self._weights[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                self._weights = (key, w.to(self.device, copy=True))  # a plain tensor: the cache can key on it
        return self._weights[1]

    def _lap(self, stage: str, start: float) -> float:
        if self.timer is None:
            return start
        if self._cuda and self.timer.sync:
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.timer.add(stage, now - start)
        return now

    @torch.inference_mode()
    def infer(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resize to processing size, stylize → (small input, stylized) both uint8 BGR, without flicker reduction."""
        c = self.controls
        t = time.perf_counter()
        small = resize_for_processing(frame, self.size)
        host = torch.from_numpy(np.ascontiguousarray(small))
        if self._cuda:
            host = host.pin_memory()
        dev = host.to(self.device, non_blocking=True)
        t = self._lap("upload", t)
        x = dev.permute(2, 0, 1).flip(0)[None].to(self.stylizer.dtype).div_(255)  # BGR HWC uint8 → RGB NCHW
        out = self.stylizer.raw(x, self.weights(), c.scale, net=self.net)
        out = self.stylizer.finish(out, x, c.strength, c.preserve_color)
        bgr8 = out.mul_(255).add_(0.5).to(torch.uint8)[0].flip(0).permute(1, 2, 0).contiguous()
        t = self._lap("model", t)
        bgr = bgr8.cpu().numpy()
        self._lap("download", t)
        return small, bgr

    def deflicker(self, small: np.ndarray, stylized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flicker reduction (when on in the controls) → (small input, output)."""
        t = time.perf_counter()
        if self.controls.flicker:
            stylized = self.flicker(small, stylized)
        else:
            self.flicker.reset()
        self._lap("flow", t)
        return small, stylized

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.deflicker(*self.infer(frame))


def compile_net(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``torch.compile`` for a fixed frame size: CUDA graphs ("reduce-overhead") on CUDA, Inductor's C++ code on
    the CPU. Compilation happens on the first frame; a failure there becomes a clear :class:`MultistyleError`."""
    try:
        compiled = torch.compile(net, mode="reduce-overhead" if device.type == "cuda" else "default", dynamic=False)
    except Exception as exc:  # noqa: BLE001 - any backend problem becomes one clear line
        raise MultistyleError(f"--compile is not available here ({_first_line(exc)}); run without --compile") from None
    return _GuardedCompiled(compiled, device)


class _GuardedCompiled(torch.nn.Module):
    """Turns a compiler failure (missing C++ compiler, unsupported GPU ...) into a one-line MultistyleError."""

    def __init__(self, compiled, device: torch.device) -> None:
        super().__init__()
        self.compiled, self.device = compiled, device

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        try:
            out = self.compiled(x, style)
        except MultistyleError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise MultistyleError(f"--compile failed on {self.device} ({exc.__class__.__name__}: "
                                  f"{_first_line(exc)}); run without --compile") from None
        return out.clone() if self.device.type == "cuda" else out  # CUDA graph outputs are reused by the next call


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else exc.__class__.__name__


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
    first_out: float | None = None  # seconds from the start to the first frame out (model load, warm-up, queues)
    last_out: float | None = None  # ... to the last frame out (``seconds`` also counts the teardown)

    @property
    def fps(self) -> float:
        """Steady frame rate: frames after the first over the time after the first (what a viewer sees; the
        warm-up of the first frame would otherwise weigh on short runs, the more the faster the model)."""
        if self.frames_out >= 2 and self.first_out is not None and self.last_out > self.first_out:
            return (self.frames_out - 1) / (self.last_out - self.first_out)
        return self.frames_out / self.seconds if self.seconds else 0.0


def source_fps(cap: cv2.VideoCapture, default: float = 25.0) -> float:
    """The frame rate a capture reports, or ``default`` when it reports nothing sensible (cameras, streams)."""
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if 1 <= fps <= 240 else default


def run_pipeline(source: int | str, process: FrameStylizer, sink: Callable[[np.ndarray, np.ndarray], bool],
                 max_frames: int | None = None, reconnect_tries: int = 5,
                 log: Callable[[str], None] = print, on_open: Callable[[cv2.VideoCapture], None] | None = None,
                 timer: StageTimer | None = None) -> RunStats:
    """Capture → stylize → flicker reduction → ``sink(input_small, stylized)``, each in its own thread with bounded
    queues (the flicker stage only when ``process`` has ``infer``/``deflicker``, as :class:`FrameStylizer` does).

    Live sources drop stale frames (latency never builds up) and are reopened when lost; files process
    every frame. ``sink`` returns False to stop. ``on_open(capture)`` runs once the source is open (e.g. to read
    its frame rate, :func:`source_fps`); ``timer`` gets the capture and sink times per frame.
    """
    live = is_live(source)
    cap = open_source(source)
    if on_open is not None:
        on_open(cap)
    stats = RunStats()
    stop = threading.Event()
    stages: Sequence[Callable] = ([process.infer, lambda item: process.deflicker(*item)]
                                  if hasattr(process, "infer") and hasattr(process, "deflicker") else [process])
    queues = [queue.Queue(maxsize=1 if live else 4) for _ in range(len(stages) + 1)]
    errors: list[BaseException] = []
    done = object()

    def capture() -> None:
        nonlocal cap
        tries = 0
        try:
            while not stop.is_set():
                if max_frames is not None and stats.frames_in >= max_frames:
                    break
                start = time.perf_counter()
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
                if timer is not None:
                    timer.add("capture", time.perf_counter() - start)
                tries = 0
                stats.frames_in += 1
                if live and queues[0].full():
                    stats.dropped += 1
                _put_latest(queues[0], frame, live)
        finally:
            _put_until(queues[0], done, stop, live)

    def worker(stage: Callable, inbox: queue.Queue, outbox: queue.Queue) -> None:
        try:
            while not stop.is_set():
                try:
                    item = inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is done:
                    break
                result = stage(item)
                if live and outbox.full():
                    stats.dropped += 1
                _put_latest(outbox, result, live)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
            stop.set()
        finally:
            _put_until(outbox, done, stop, live)

    threads = [threading.Thread(target=capture, daemon=True)]
    threads += [threading.Thread(target=worker, args=(stage, queues[i], queues[i + 1]), daemon=True)
                for i, stage in enumerate(stages)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    try:
        while True:
            try:
                item = queues[-1].get(timeout=0.1)
            except queue.Empty:
                if errors or not any(t.is_alive() for t in threads[1:]):
                    break
                continue
            if item is done:
                break
            stats.frames_out += 1
            stats.seconds = stats.last_out = time.perf_counter() - start
            if stats.first_out is None:
                stats.first_out = stats.seconds
            t0 = time.perf_counter()
            keep_going = sink(*item)
            if timer is not None:
                timer.add("sink", time.perf_counter() - t0)
            if not keep_going:
                break
    finally:
        stop.set()
        for q in queues:
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
