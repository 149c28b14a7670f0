"""Video clips for the video benchmark and the tests, made with PyAV at run time (never committed): the shared
clip scaled to a benchmark size (:func:`scaled_clip`), and a tiny synthetic clip with a tone, any frame times
(variable frame rate), rotation and sound codec (:func:`synthetic_clip`)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


def scaled_clip(source: Path, path: Path, size: tuple[int, int], seconds: float | None = None) -> Path:
    """``source`` resized to ``size`` (w, h) with its frame times and its sound (copied), the first ``seconds``
    (default: all of it)."""
    from multistyle.video.media import MediaReader, MediaWriter, probe

    info = probe(source)
    reader = MediaReader(source, info)
    writer = MediaWriter(path, info.fps, audio=info, time_base=info.time_base, size=size)
    try:
        while True:
            ok, frame = reader.read()
            if not ok or (seconds is not None and reader.time >= seconds - 1e-6):
                break
            writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), reader.time)
    finally:
        reader.release()
    writer.close(audio_to_end=seconds is None)
    return path


def _picture(i: int, w: int, h: int) -> np.ndarray:
    """A moving gradient with a square: something the network and optical flow can work on."""
    ys, xs = np.mgrid[0:h, 0:w]
    frame = np.dstack([(xs * 255 // max(w - 1, 1) + 7 * i) % 256, (ys * 255 // max(h - 1, 1)) % 256,
                       np.full((h, w), (40 * i) % 256)]).astype(np.uint8)
    x = (3 * i) % max(w - h // 3, 1)
    frame[h // 3: 2 * h // 3, x: x + h // 3] = 255
    return frame


def synthetic_clip(path: Path, size: tuple[int, int] = (64, 48), seconds: float = 1.0, fps: int = 24,
                   audio: str | None = "aac", times: Sequence[float] | None = None, rotation: int = 0,
                   sample_rate: int = 44100, container: str | None = None) -> Path:
    """A clip of ``size`` with a 440 Hz tone in ``audio`` (None: silent, no audio track) and frames at ``times``
    seconds (default: every 1/fps over ``seconds``), H.264 in ``path`` (its format from the extension unless
    ``container``), with ``rotation`` as display metadata."""
    import av

    times = list(times) if times is not None else [i / fps for i in range(round(seconds * fps))]
    tb = Fraction(1, 90000)
    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.time_base = video.codec_context.time_base = tb
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream(audio, rate=sample_rate, layout="stereo") if audio else None
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(_picture(i, *size), format="rgb24")
            frame.pts, frame.time_base = round(t / tb), tb
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            end = times[-1] + 1 / fps if times else seconds
            n = round(end * sample_rate)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / sample_rate)).astype(np.float32)
            step = 1024
            for start in range(0, n, step):
                chunk = np.ascontiguousarray(np.tile(tone[start:start + step], (2, 1)))
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = sample_rate, start
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return Path(path)


CHROMIUM = "/usr/bin/chromium"


def play_in_chromium(path: Path, timeout_ms: int = 30_000, chromium: str = CHROMIUM) -> dict:
    """Load ``path`` in a ``<video>`` element of headless Chromium (Debian's, via Playwright) → its readyState,
    duration, size and any media error once it can show the first frame (readyState ≥ 2) or fails."""
    from playwright.sync_api import sync_playwright

    from .demo_browser import BROWSER_ARGS

    path = Path(path).resolve()
    page_file = path.with_name(f".{path.stem}.play.html")
    page_file.write_text(f'<video id="v" muted preload="auto" src="{path.as_uri()}"></video>')
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
            page = browser.new_page()
            page.goto(page_file.as_uri())
            page.wait_for_function("(() => { const v = document.getElementById('v');"
                                   " return v.readyState >= 2 || v.error; })()", timeout=timeout_ms)
            state = page.evaluate("(() => { const v = document.getElementById('v'); return {ready: v.readyState,"
                                  " duration: v.duration, width: v.videoWidth, height: v.videoHeight,"
                                  " error: v.error && v.error.message}; })()")
            browser.close()
    finally:
        page_file.unlink(missing_ok=True)
    return state
