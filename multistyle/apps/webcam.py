"""The webcam filter: key controls over the style-weight vector, the HUD, the display/record sink and the run loop
(``multistyle webcam`` and ``apps/webcam.py`` are argument parsers over :func:`run_webcam`)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import MultistyleError
from ..precision import set_threads
from ..styles import StyleSpec, style_weights
from ..stylizer import check_scale, get_stylizer
from ..video.frames import FrameSettings, FrameStylizer
from ..video.pipeline import RunStats, run_pipeline
from ..video.media import MediaReader, MediaWriter
from ..video.render import same_file
from ..video.sources import parse_source

SCALE_STEPS = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)  # stroke scales the , and . keys step through
MIX_STEP = 0.1  # how much weight [ and ] move per press


@dataclass
class Controls(FrameSettings):
    """The frame settings as the keyboard edits them. The state is the style-weight vector itself (a mix of any
    number of styles from ``-s a=0.5,b=0.3,c=0.2`` stays exactly that); ``anchor`` is the style n/p/digits pick and
    [ / ] move weight between it and the rest of the mix. ``handle_key`` returns False when the user quits."""

    names: list[str] = field(default_factory=list)
    anchor: int = 0
    recording: bool = False
    snapshots: int = 0  # snapshot requests not yet served

    @classmethod
    def for_style(cls, names: list[str], style: StyleSpec = 0, **settings) -> "Controls":
        """Controls starting at ``style`` (a name, index or mix), anchored at its largest weight."""
        weights = style_weights(style, names)
        return cls(weights=weights, names=list(names), anchor=int(weights[0].argmax()), **settings)

    def _pick(self, index: int) -> None:
        self.anchor = index % len(self.names)
        self.weights = style_weights(self.anchor, self.names)

    def _toggle_mix(self) -> None:
        if int((self.weights[0] > 0).sum()) > 1:
            self._pick(self.anchor)
        elif len(self.names) > 1:
            w = torch.zeros(1, len(self.names))
            w[0, self.anchor] = w[0, (self.anchor + 1) % len(self.names)] = 0.5
            self.weights = w

    def _move_weight(self, towards_anchor: bool) -> None:
        """Shift MIX_STEP of weight to the anchor (or away from it, to the others in their proportions)."""
        w = self.weights[0].clone()
        others = w.clone()
        others[self.anchor] = 0
        rest = float(others.sum())
        if rest <= 0 and towards_anchor is False:
            return  # a single style: nothing to move the weight to
        target = min(1.0, float(w[self.anchor]) + MIX_STEP) if towards_anchor else \
            max(0.0, float(w[self.anchor]) - MIX_STEP)
        if rest > 0:
            w = others * ((1.0 - target) / rest)
        w[self.anchor] = target
        self.weights = (w / w.sum())[None]

    def handle_key(self, key: int) -> bool:
        if key < 0:
            return True
        ch = chr(key & 0xFF) if (key & 0xFF) < 128 else ""
        if key == 27 or ch == "q":
            return False
        actions = {
            "n": lambda: self._pick(self.anchor + 1), "p": lambda: self._pick(self.anchor - 1),
            "m": self._toggle_mix, "[": lambda: self._move_weight(True), "]": lambda: self._move_weight(False),
            "+": lambda: self._set("strength", min(1.0, round(self.strength + 0.1, 2))),
            "-": lambda: self._set("strength", max(0.0, round(self.strength - 0.1, 2))),
            "c": lambda: self._set("preserve_color", not self.preserve_color),
            ",": lambda: self._set("scale", max([s for s in SCALE_STEPS if s < self.scale], default=SCALE_STEPS[0])),
            ".": lambda: self._set("scale", min([s for s in SCALE_STEPS if s > self.scale], default=SCALE_STEPS[-1])),
            "f": lambda: self._set("flicker", not self.flicker),
            " ": lambda: self._set("snapshots", self.snapshots + 1),
            "r": lambda: self._set("recording", not self.recording),
        }
        aliases = {"=": "+", "_": "-", "<": ",", ">": "."}
        ch = aliases.get(ch, ch)
        if ch.isdigit():
            if int(ch) < len(self.names):
                self._pick(int(ch))
        elif ch in actions:
            actions[ch]()
        return True

    def _set(self, name: str, value: object) -> None:
        setattr(self, name, value)

    def label(self) -> str:
        """The style or mix in words: ``starry_night`` or ``starry_night 0.5 + udnie 0.3 + great_wave 0.2``."""
        w = self.weights[0].tolist()
        used = sorted((i for i, v in enumerate(w) if v > 0), key=lambda i: -w[i])
        if len(used) == 1:
            return self.names[used[0]]
        return " + ".join(f"{self.names[i]} {w[i]:.1f}" for i in used)


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


@dataclass
class WebcamOptions:
    """What ``multistyle webcam`` was asked for (see its ``--help``)."""

    source: str = "0"
    style: StyleSpec = 0
    size: int = 480
    display_size: int = 960
    flicker: bool = True
    headless: bool = False
    output: str | None = None
    max_frames: int | None = None
    scale: float = 1.0
    compile: bool = False
    save_dir: str = "."
    model: str | None = None
    device: str = "auto"
    virtual_camera: bool = False
    engine: str = "auto"  # what runs the network (multistyle.engine.CHOICES)
    verbose: bool = False  # print the engine, precision and reason
    realtime: bool = False  # a file source read at its frame rate, stale frames dropped (as a camera)


class WebcamSink:
    """Where each stylized frame goes: the output file, recordings and snapshots the keys ask for, a virtual camera,
    and (unless headless) the window with the HUD. Returns False from :meth:`__call__` when the user quits.
    Recordings are H.264 MP4 (:class:`~multistyle.video.media.MediaWriter`, its live preset) at the frames' own
    times."""

    def __init__(self, options: WebcamOptions, controls: Controls, device: str, camera=None) -> None:
        self.options, self.controls, self.device = options, controls, device
        self.output = MediaWriter(options.output, live=True) if options.output else None
        self.save_dir = Path(options.save_dir)
        self.recording: MediaWriter | None = None
        self.recording_start = 0.0  # the frame time a key-started recording counts from
        self.camera = camera  # a multistyle.apps.virtualcam.VirtualCamera, or None
        self.fps, self._last = 0.0, time.perf_counter()

    def _record(self, stylized: np.ndarray, t: float | None) -> None:
        if self.output is not None:
            self.output.write(stylized, t)
        if self.controls.recording and self.recording is None:
            stamp = time.strftime("%Y%m%d_%H%M%S")
            self.recording = MediaWriter(self.save_dir / f"multistyle_{stamp}.mp4", live=True)
            self.recording_start = t or 0.0
        if self.recording is not None:
            if self.controls.recording:
                self.recording.write(stylized, None if t is None else t - self.recording_start)
            else:
                self.recording.close()
                self.recording = None
        while self.controls.snapshots:
            self.controls.snapshots -= 1
            self.save_dir.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%d_%H%M%S")
            cv2.imwrite(str(self.save_dir / f"snapshot_{stamp}_{self.controls.snapshots}.png"), stylized)

    def __call__(self, _small: np.ndarray, stylized: np.ndarray, t: float | None = None) -> bool:
        """Show/record one frame (``t``: its time in seconds, the source's own for a file)."""
        now = time.perf_counter()
        self.fps = 0.9 * self.fps + 0.1 / max(now - self._last, 1e-6)
        self._last = now
        self._record(stylized, t)
        if self.camera is not None:
            self.camera.send(stylized)
        if self.options.headless:
            return True
        h, w = stylized.shape[:2]
        zoom = self.options.display_size / max(h, w)
        shown = cv2.resize(stylized, (int(w * zoom), int(h * zoom)), interpolation=cv2.INTER_LINEAR)
        cv2.imshow("multistyle", draw_hud(shown, self.controls, self.fps, self.device))
        return self.controls.handle_key(cv2.waitKey(1))

    def close(self) -> None:
        for recorder in (self.output, self.recording):
            if recorder is not None:
                recorder.close()
        if self.camera is not None:
            self.camera.close()
        if not self.options.headless:
            cv2.destroyAllWindows()


def run_webcam(options: WebcamOptions) -> RunStats:
    """The live filter (or, headless, a video file through the same threaded pipeline) until the source ends,
    ``max_frames`` is reached or the user quits."""
    if options.headless and not options.output and not options.virtual_camera:
        raise MultistyleError("--headless needs --output FILE.mp4 (or --virtual-camera)")
    if options.output and not str(options.source).isdigit() and same_file(str(options.source), options.output):
        raise MultistyleError(f"{options.output} is the input video; refusing to overwrite it (pick another --output)")
    scale = check_scale(options.scale)
    set_threads(None)  # $MULTISTYLE_THREADS if set; else torch's one per core (fastest measured at 640 px)
    stylizer = get_stylizer(options.model, options.device, options.engine)
    if options.verbose:
        print(f"engine: {stylizer.choice.name} ({stylizer.choice.reason})", file=sys.stderr)
    controls = Controls.for_style(stylizer.names, options.style, flicker=options.flicker, scale=scale)
    process = FrameStylizer(stylizer, controls, options.size, compile=options.compile)
    source = parse_source(options.source)
    camera = None
    if options.virtual_camera:
        from .virtualcam import VirtualCamera

        camera = VirtualCamera.open()
    sink = WebcamSink(options, controls, str(stylizer.device), camera)

    def on_open(cap) -> None:  # the pipeline's own capture: no second open of the source
        if sink.output is not None and isinstance(cap, MediaReader):  # a file: its rate, rotation and sound
            info = cap.info
            sink.output = MediaWriter(options.output, info.fps, audio=info, rotation=info.rotation,
                                      time_base=info.time_base, live=True)

    try:
        return run_pipeline(source, process.stages(), sink, options.max_frames, on_open=on_open,
                            realtime=options.realtime, timed=True)
    finally:
        sink.close()
