"""A video file stylized into a video file with its sound (``multistyle video``, the demo's Video tab, the video
benchmark): :func:`render_file` runs the threaded pipeline (:func:`~.pipeline.run_pipeline` with a
:class:`~.frames.FrameStylizer`) from a :class:`~.media.MediaReader` into a :class:`~.media.MediaWriter`, at the
source's size, rotation and frame times. Ctrl-C leaves a playable file of what was done (or none); any other
failure leaves the output path as it was."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import MultistyleError
from .frames import FrameStylizer
from .media import MediaInfo, MediaWriter, probe
from .pipeline import RunStats, run_pipeline


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`render_file`: :attr:`result` says what was kept (its ``path`` is None when nothing)."""

    def __init__(self, result: "RenderResult") -> None:
        super().__init__("interrupted")
        self.result = result


@dataclass
class RenderResult:
    """What :func:`render_file` wrote: ``path`` (None: nothing), frames, the seconds of picture, whether the whole
    source was stylized, the wall time and the pipeline's stats."""

    path: Path | None
    info: MediaInfo
    frames: int
    duration: float
    complete: bool
    seconds: float
    stats: RunStats | None = None

    @property
    def fps(self) -> float:
        """Frames per second end to end (reading, the network, flicker reduction, encoding, the sound)."""
        return self.frames / self.seconds if self.seconds else 0.0


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (also through links); a missing ``b`` is never the same."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def render_file(source: str | os.PathLike, output: str | os.PathLike, process: FrameStylizer,
                max_frames: int | None = None, keep_size: bool = True,
                progress: Callable[[int, int], None] | None = None, seconds: float | None = None,
                info: MediaInfo | None = None) -> RenderResult:
    """Stylize ``source`` into ``output`` (an MP4: H.264 + the source's sound) with ``process``.

    ``keep_size``: frames are written at the source's size (else at the processing size). ``progress(done,
    total)`` after each frame (it may raise to stop: the output is then left as it was). ``seconds``: a wall-clock
    budget; when it runs out the clip so far is kept, its sound cut to match (``complete`` False). ``max_frames``
    does the same by count. The output never overwrites the source."""
    if same_file(source, output):
        raise MultistyleError(f"{output} is the input video; refusing to overwrite it (pick another output)")
    info = info or probe(source)
    total = min(info.frames, max_frames) if max_frames else info.frames
    writer = MediaWriter(output, info.fps, audio=info, rotation=info.rotation, time_base=info.time_base,
                         size=(info.width, info.height) if keep_size else None)
    start = time.perf_counter()
    state = {"stopped": False}

    def sink(_small, stylized, t: float) -> bool:
        writer.write(stylized, t)
        if progress is not None:
            progress(writer.frames, total)
        if seconds is not None and time.perf_counter() - start > seconds:
            state["stopped"] = True
            return False
        return True

    def result(path: Path | None, complete: bool, stats: RunStats | None = None) -> RenderResult:
        return RenderResult(path, info, writer.frames if path else 0, writer.end if path else 0.0, complete,
                            time.perf_counter() - start, stats)

    try:
        stats = run_pipeline(str(source), process.stages(), sink, max_frames, log=lambda _m: None, timed=True)
    except KeyboardInterrupt:
        try:
            path = writer.close(audio_to_end=False)  # what was done, playable, with its sound cut to match
        except BaseException:
            writer.abort()  # a second Ctrl-C while finishing: nothing rather than a broken file
            path = None
        raise Interrupted(result(path, False)) from None
    except BaseException:
        writer.abort()
        raise
    complete = not state["stopped"] and not (max_frames and stats.frames_in >= max_frames)
    if writer.frames == 0:
        writer.abort()
        raise MultistyleError(f"{source}: no frame could be decoded")
    path = writer.close(audio_to_end=complete)
    return result(path, complete, stats)
