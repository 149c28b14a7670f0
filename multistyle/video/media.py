"""Video files in and out with PyAV (FFmpeg in its wheels; no system FFmpeg): :func:`probe` (what a file holds, or
one clear error), :class:`MediaReader` (decoded frames with their presentation times) and :class:`MediaWriter`
(H.264 in MP4 with the moov atom first, the source's sound copied in, written to a temporary file beside the
output and renamed into place, so the output path never holds a broken file).

Why H.264: libx264 is in PyAV's wheels, and H.264 (yuv420p, High profile) in MP4 is what every browser's
``<video>`` and every phone plays. Audio that every browser and phone plays in MP4 (AAC, MP3) is copied as it is
(no re-encoding); any other sound (PCM, Opus, Vorbis, AC-3 ...) is re-encoded to AAC."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..errors import MultistyleError
from ..paths import publish, temp_beside

VIDEO_CODEC = "libx264"
COPY_AUDIO = ("aac", "mp3")  # copied packet for packet; anything else becomes AAC
AUDIO_CODEC = "aac"
X264 = {"crf": "20", "preset": "veryfast"}  # visually clean at a few Mbit/s; veryfast: the network is the cost
# a live recording (the webcam) must keep pace beside the network on the same cores: ultrafast, 2.8 against 7.0 ms
# of CPU a 640x480 frame (2.4 against 0.8 Mbit/s at 30 fps; 2026-12-07, the 2-core Xeon)
X264_LIVE = {"crf": "20", "preset": "ultrafast"}
CAMERA_TIME_BASE = Fraction(1, 90000)  # frame times of a source without its own (a camera's wall clock)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _open(path: str | os.PathLike):
    """An input container, or a one-line :class:`MultistyleError` naming the file."""
    import av

    if not Path(path).is_file():
        raise MultistyleError(f"{path}: no such video file")
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise MultistyleError(f"{path}: not a video file this tool can read ({_reason(exc)})") from None


@dataclass
class MediaInfo:
    """What a video file holds: its picture (size as stored, frame rate, length, display rotation) and its sound."""

    path: Path
    width: int
    height: int
    fps: float
    duration: float  # seconds of picture
    frames: int  # as the file declares them (estimated from the length when it does not)
    rotation: int  # display rotation in degrees, counter-clockwise (phones store upright clips sideways)
    time_base: Fraction  # of the picture's timestamps
    origin: float  # the file's start time in seconds: frame and sound times count from here
    audio: str | None = None  # the sound's codec, None without sound
    sample_rate: int = 0
    audio_duration: float = 0.0


def probe(path: str | os.PathLike) -> MediaInfo:
    """Open ``path`` and decode its first frame: what it holds, or a one-line error (missing, not a video, no
    picture, a codec FFmpeg cannot decode)."""
    import av

    with _open(path) as container:
        if not container.streams.video:
            raise MultistyleError(f"{path}: has no video track")
        v = container.streams.video[0]
        try:
            first = next(container.decode(v), None)
        except av.FFmpegError as exc:
            raise MultistyleError(f"{path}: its video cannot be decoded ({_reason(exc)})") from None
        if first is None:
            raise MultistyleError(f"{path}: its video holds no frame")
        rate = v.average_rate or v.guessed_rate or v.base_rate
        fps = float(rate) if rate and 1 <= float(rate) <= 240 else 25.0
        origin = container.start_time / 1e6 if container.start_time is not None else 0.0
        duration = float(v.duration * v.time_base) if v.duration else (container.duration or 0) / 1e6
        info = MediaInfo(Path(path), v.width, v.height, fps, duration, v.frames or round(duration * fps),
                         int(first.rotation or 0), v.time_base or CAMERA_TIME_BASE, origin)
        if container.streams.audio:
            a = container.streams.audio[0]
            info.audio, info.sample_rate = a.codec_context.name, a.sample_rate or 0
            info.audio_duration = float(a.duration * a.time_base) if a.duration else duration
        return info


class MediaReader:
    """The frames of a video file in order: :meth:`read` gives ``(ok, BGR uint8 frame)`` like OpenCV's capture (the
    threaded pipeline reads files through it) and :attr:`time` the frame's presentation time in seconds from the
    file's start (variable-frame-rate clips keep theirs). A damaged or truncated file is a one-line error."""

    def __init__(self, path: str | os.PathLike, info: MediaInfo | None = None) -> None:
        self.info = info or probe(path)
        self.container = _open(path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame + slice threads in the decoder
        self._frames = self.container.decode(self.stream)
        self.time, self.count = 0.0, 0

    def read(self) -> tuple[bool, np.ndarray | None]:
        """The next frame (and :attr:`time`), or ``(False, None)`` at the end."""
        import av

        try:
            frame = next(self._frames)
        except StopIteration:
            self._check_end()
            return False, None
        except av.FFmpegError as exc:
            raise MultistyleError(f"{self.info.path}: the video is damaged after {self.time:.1f} s "
                                  f"({_reason(exc)})") from None
        self.time = frame.time - self.info.origin if frame.time is not None else self.count / self.info.fps
        self.count += 1
        return True, frame.to_ndarray(format="bgr24")

    def _check_end(self) -> None:
        """A file whose picture stops well before its declared length is truncated: say so rather than write a
        clip that silently ends early."""
        info, period = self.info, 1.0 / self.info.fps
        if self.count < 0.9 * info.frames and info.duration - self.time > max(0.5, 3 * period):
            raise MultistyleError(f"{info.path}: the video stops at {self.time:.1f} s of its {info.duration:.1f} s; "
                                  "the file is truncated or damaged")

    def get(self, prop: int) -> float:
        """OpenCV's ``cap.get`` for what the pipeline asks a file: its frame rate and frame count."""
        return {cv2.CAP_PROP_FPS: self.info.fps, cv2.CAP_PROP_FRAME_COUNT: float(self.info.frames),
                cv2.CAP_PROP_FRAME_WIDTH: float(self.info.width),
                cv2.CAP_PROP_FRAME_HEIGHT: float(self.info.height)}.get(prop, 0.0)

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.container is not None

    def release(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


class MediaWriter:
    """Frames (BGR uint8, each with its time in seconds) → an H.264 MP4 at ``path``, with the sound of ``audio``
    (the source's :class:`MediaInfo`) copied in alongside (interleaved as the frames come). The file is opened on
    the first frame, at ``size`` (w, h; default the first frame's, made even for yuv420p), in a temporary file
    beside ``path``; :meth:`close` finishes it and renames it into place, :meth:`abort` removes it. ``live``: a
    recording made as the frames come (the webcam), encoded with :data:`X264_LIVE`'s faster preset."""

    def __init__(self, path: str | os.PathLike, fps: float = 25.0, audio: MediaInfo | None = None,
                 rotation: int = 0, size: tuple[int, int] | None = None,
                 time_base: Fraction = CAMERA_TIME_BASE, live: bool = False) -> None:
        self.path, self.fps, self.rotation, self.size = Path(path), fps, rotation, size
        self.options = X264_LIVE if live else X264
        self.audio = audio if audio is not None and audio.audio else None
        self.time_base = time_base
        self.container = self.stream = self.tmp = None
        self.frames, self.end, self._last_pts = 0, 0.0, -1
        self._audio_in = self._audio_out = self._packets = self._pending = None
        self._copy = False  # the sound is copied packet for packet (else encoded to AAC)

    def _open(self, frame: np.ndarray) -> None:
        import av

        w, h = self.size or (frame.shape[1], frame.shape[0])
        self.size = (max(2, w - w % 2), max(2, h - h % 2))
        self.tmp = temp_beside(self.path)
        try:
            self.container = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
        except (av.FFmpegError, OSError) as exc:
            raise MultistyleError(f"cannot write video {self.path} ({_reason(exc)})") from None
        rate = Fraction(self.fps).limit_denominator(1001)
        self.stream = self.container.add_stream(VIDEO_CODEC, rate=rate, options=dict(self.options))
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = self.stream.codec_context.time_base = self.time_base
        if self.rotation:
            self.stream.set_display_rotation(self.rotation)
        if self.audio is not None:
            self._open_audio()

    def _open_audio(self) -> None:
        self._audio_in = _open(self.audio.path)
        source = self._audio_in.streams.audio[0]
        self._copy = source.codec_context.name in COPY_AUDIO
        if self._copy:
            self._audio_out = self.container.add_stream_from_template(source)
        else:
            self._audio_out = self.container.add_stream(AUDIO_CODEC, rate=source.sample_rate or 48000)
            self._audio_out.layout = "stereo" if source.channels > 2 else source.layout.name
        self._packets = self._audio_in.demux(source)

    def write(self, frame: np.ndarray, t: float | None = None) -> None:
        """Add ``frame`` shown at ``t`` seconds (default: the next frame at ``fps``); the sound up to ``t`` goes
        in with it."""
        import av

        if self.container is None:
            self._open(frame)
        w, h = self.size
        if frame.shape[:2] != (h, w):
            frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if frame.shape[1] > w else
                               cv2.INTER_LINEAR) if abs(frame.shape[1] - w) > 1 or abs(frame.shape[0] - h) > 1 \
                else frame[:h, :w]
        t = self.frames / self.fps if t is None else t
        pts = max(round(t / self.time_base), self._last_pts + 1)  # strictly increasing, as the encoder needs
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        picture.pts, picture.time_base = pts, self.time_base
        # shown as long as the frame before it was (the last frame's length is the only one the file keeps)
        step = pts - self._last_pts if self.frames else max(1, round(1 / (self.fps * self.time_base)))
        picture.duration = step
        for packet in self.stream.encode(picture):
            self.container.mux(packet)
        self._last_pts, self.frames = pts, self.frames + 1
        self.end = float((pts + step) * self.time_base)
        self._mux_audio(float(pts * self.time_base))

    def _mux_audio(self, until: float) -> None:
        """Copy (or encode) the source's sound up to ``until`` seconds."""
        if self._packets is None:
            return
        origin = self.audio.origin
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    self._packets = None
                    break
            packet = self._pending
            if packet.dts is None:  # the demuxer's end marker
                self._pending = None
                continue
            if float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base) - origin >= until:
                break
            self._pending = None
            if self._copy:
                shift = round(origin / packet.time_base)
                packet.pts = None if packet.pts is None else packet.pts - shift
                packet.dts -= shift
                packet.stream = self._audio_out
                self.container.mux(packet)
            else:
                for decoded in packet.decode():
                    decoded.pts = None  # the encoder counts samples from the start
                    for out in self._audio_out.encode(decoded):
                        self.container.mux(out)

    def close(self, audio_to_end: bool = False) -> Path | None:
        """Finish the file and move it to :attr:`path` → the path, or None when no frame came (nothing written).
        The sound runs to its end with ``audio_to_end`` (the whole clip was stylized), else to the last frame's."""
        if self.container is None:
            self.abort()
            return None
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            if self._audio_out is not None:
                self._mux_audio(math.inf if audio_to_end else self.end)
                if not self._copy:
                    for packet in self._audio_out.encode(None):
                        self.container.mux(packet)
            self.container.close()
            self.container = None
            publish(self.tmp, self.path)
            self.tmp = None
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Drop what was written (idempotent): the output path is left as it was."""
        for container in (self.container, self._audio_in):
            if container is not None:
                try:
                    container.close()
                except Exception:  # noqa: BLE001 - a half-written file is removed anyway
                    pass
        self.container = self._audio_in = None
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None
