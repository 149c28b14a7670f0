"""The threaded video pipeline: capture → stages (e.g. network, flicker reduction) → sink, each in its own thread
with bounded queues. Live sources drop stale frames (latency never builds up) and are reopened when lost; files
process every frame."""

from __future__ import annotations

import queue
import threading
import time
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from .frames import StageTimer
from .sources import is_live, open_source, source_fps

Stage = Callable[[Any], Any]
Sink = Callable[..., bool]  # sink(*item) → False to stop; item is what the last stage returned
_DONE = object()  # end-of-stream marker passed down the queues
LATENCY_WINDOW = 900  # frames whose latency the stats keep (30 s at 30 fps)


@dataclass
class RunStats:
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    reconnects: int = 0
    seconds: float = 0.0
    first_out: float | None = None  # seconds from the start to the first frame out (model load, warm-up, queues)
    last_out: float | None = None  # ... to the last frame out (``seconds`` also counts the teardown)
    # seconds from capture to the sink call of the last LATENCY_WINDOW frames (bounded: a webcam runs for hours)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    @property
    def latency_ms(self) -> float:
        """Median capture-to-output latency in ms over the window (the first two frames, warm-up, left out)."""
        kept = list(self.latencies)
        if self.frames_out <= len(kept):  # the warm-up frames are still in the window
            kept = kept[2:] or kept
        return 1000 * statistics.median(kept) if kept else float("nan")

    @property
    def fps(self) -> float:
        """Steady frame rate: frames after the first over the time after the first (what a viewer sees; the
        warm-up of the first frame would otherwise weigh on short runs, the more the faster the model)."""
        if self.frames_out >= 2 and self.first_out is not None and self.last_out > self.first_out:
            return (self.frames_out - 1) / (self.last_out - self.first_out)
        return self.frames_out / self.seconds if self.seconds else 0.0


def put_latest(q: queue.Queue, item: Any, drop_stale: bool) -> None:
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


class _Pipeline:
    """The threads and queues of one :func:`run_pipeline` call."""

    def __init__(self, source: int | str, stages: Sequence[Stage], max_frames: int | None, reconnect_tries: int,
                 log: Callable[[str], None], timer: StageTimer | None, realtime: bool = False) -> None:
        self.source, self.stages, self.max_frames = source, list(stages), max_frames
        self.clock_start: float | None = None  # a live source's frame times count from its first frame
        self.reconnect_tries, self.log, self.timer = reconnect_tries, log, timer
        self.live = is_live(source) or realtime
        self.paced = realtime and not is_live(source)  # a file read at its frame rate, as a camera delivers
        self.cap = open_source(source)
        self.period = 1.0 / source_fps(self.cap) if self.paced else 0.0
        self.next_read = 0.0
        self.stats = RunStats()
        self.stop = threading.Event()
        self.queues = [queue.Queue(maxsize=1 if self.live else 4) for _ in range(len(self.stages) + 1)]
        self.errors: list[BaseException] = []

    def _read(self) -> np.ndarray | None:
        """The next frame; on a lost live source, reconnect with back-off; None at the end."""
        tries = 0
        while not self.stop.is_set():
            if self.paced:
                self.next_read = max(self.next_read + self.period, time.perf_counter())
                time.sleep(max(0.0, self.next_read - time.perf_counter()))
            start = time.perf_counter()
            ok, frame = self.cap.read()
            if ok:
                if self.timer is not None:
                    self.timer.add("capture", time.perf_counter() - start)
                return frame
            if not self.live or self.paced:
                return None
            tries += 1
            if tries > self.reconnect_tries:
                self.log(f"video source {self.source} lost; gave up after {self.reconnect_tries} reconnect attempts")
                return None
            self.log(f"video source {self.source} lost; reconnecting ({tries}/{self.reconnect_tries})")
            self.cap.release()
            time.sleep(min(2.0, 0.2 * 2 ** tries))
            self.cap = cv2.VideoCapture(self.source)
            self.stats.reconnects += 1
        return None

    def _time(self) -> float:
        """The frame just read's time in seconds: a file's own (:class:`~.media.MediaReader`), else the clock's."""
        stamp = getattr(self.cap, "time", None)
        if stamp is not None:
            return stamp
        now = time.perf_counter()
        self.clock_start = now if self.clock_start is None else self.clock_start
        return now - self.clock_start

    def capture(self) -> None:
        try:
            while not self.stop.is_set():
                if self.max_frames is not None and self.stats.frames_in >= self.max_frames:
                    break
                frame = self._read()
                if frame is None:
                    break
                self.stats.frames_in += 1
                if self.live and self.queues[0].full():
                    self.stats.dropped += 1
                put_latest(self.queues[0], ((time.perf_counter(), self._time()), frame), self.live)
        except BaseException as exc:  # a damaged file: surfaced in the main thread
            self.errors.append(exc)
            self.stop.set()
        finally:
            self._end(self.queues[0])

    def work(self, stage: Stage, inbox: queue.Queue, outbox: queue.Queue) -> None:
        try:
            while not self.stop.is_set():
                try:
                    item = inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _DONE:
                    break
                captured, item = item
                result = captured, stage(item)
                if self.live and outbox.full():
                    self.stats.dropped += 1
                put_latest(outbox, result, self.live)
        except BaseException as exc:  # surfaced in the main thread
            self.errors.append(exc)
            self.stop.set()
        finally:
            self._end(outbox)

    def _end(self, q: queue.Queue) -> None:
        """Deliver the end marker: replace stale items on live sources, else wait for room unless stopping."""
        if self.live:
            put_latest(q, _DONE, True)
            return
        while not self.stop.is_set():
            try:
                q.put(_DONE, timeout=0.1)
                return
            except queue.Full:
                continue

    def drain(self, sink: Sink, threads: list[threading.Thread], start: float, timed: bool = False) -> None:
        """Hand every finished item to ``sink`` (with the frame's time when ``timed``) until the end marker, an
        error, or ``sink`` says stop."""
        while True:
            try:
                item = self.queues[-1].get(timeout=0.1)
            except queue.Empty:
                if self.errors or not any(t.is_alive() for t in threads[1:]):
                    return
                continue
            if item is _DONE:
                return
            (captured, stamp), item = item
            stats = self.stats
            stats.frames_out += 1
            stats.seconds = stats.last_out = time.perf_counter() - start
            if stats.first_out is None:
                stats.first_out = stats.seconds
            t0 = time.perf_counter()
            keep_going = sink(*item, stamp) if timed else sink(*item)
            stats.latencies.append(time.perf_counter() - captured)
            if self.timer is not None:
                self.timer.add("sink", time.perf_counter() - t0)
            if not keep_going:
                return

    def shutdown(self, threads: list[threading.Thread]) -> None:
        self.stop.set()
        for q in self.queues:
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass
        for t in threads:
            t.join(timeout=5)
        self.cap.release()


def run_pipeline(source: int | str, stages: Sequence[Stage], sink: Sink, max_frames: int | None = None,
                 reconnect_tries: int = 5, log: Callable[[str], None] = print,
                 on_open: Callable[[cv2.VideoCapture], None] | None = None,
                 timer: StageTimer | None = None, realtime: bool = False, timed: bool = False) -> RunStats:
    """Capture → ``stages[0]`` → ``stages[1]`` … → ``sink(*item)``, each in its own thread with bounded queues
    (e.g. ``FrameStylizer.stages()``: the network, then flicker reduction; each stage gets the previous one's
    result, the first a BGR frame, and the last returns the tuple the sink is called with).

    ``sink`` returns False to stop. Each item carries its capture time, so the stats hold every frame's
    capture-to-output latency (:attr:`RunStats.latency_ms`). ``on_open(capture)`` runs once the source is open
    (e.g. to read its frame rate, :func:`~multistyle.video.sources.source_fps`); ``timer`` gets the capture and
    sink times per frame. An error in a stage stops the pipeline and is raised here. ``realtime``: a file is read
    at its own frame rate and stale frames are dropped, as from a camera (latency then means what it means live).
    ``timed``: the sink is called ``sink(*item, t)`` with the frame's time in seconds (a file's own timestamps,
    variable frame rates included; a camera's or stream's clock from its first frame), as a video writer needs.
    """
    run = _Pipeline(source, stages, max_frames, reconnect_tries, log, timer, realtime)
    if on_open is not None:
        on_open(run.cap)
    threads = [threading.Thread(target=run.capture, daemon=True)]
    threads += [threading.Thread(target=run.work, args=(stage, run.queues[i], run.queues[i + 1]), daemon=True)
                for i, stage in enumerate(run.stages)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    try:
        run.drain(sink, threads, start, timed)
    finally:
        run.shutdown(threads)
    run.stats.seconds = time.perf_counter() - start
    if run.errors:
        raise run.errors[0]
    return run.stats
