"""The video file benchmark (``python -m benchmarks video``): the shared clip (bunny.mp4, H.264 + AAC) scaled to
640×480 and 1280×720 (10 s each, made at run time) through :func:`multistyle.video.render.render_file`, as
``multistyle video`` runs it → frames per second end to end (decoding, the network, flicker reduction, H.264
encoding, the sound), the sound kept (its codec, sample rate and length against the input's), the output's codec,
the drift between sound and picture at the end, whether headless Chromium plays it, and what flicker reduction
costs and gives (fps and the flicker metric, on against off)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from .clips import CHROMIUM, play_in_chromium, scaled_clip
from .kit import CLIP, effort, register, table

SIZES = [(640, 480), (1280, 720)]
STYLE = "udnie"
METRIC_FRAMES = 48  # consecutive frames the flicker metric is computed over (at 320 px: the metric's flow is slow)


def _frames(path: Path, count: int, side: int = 320) -> list:
    """The first ``count`` frames of ``path``, resized to ``side`` px on the long side (PyAV)."""
    import cv2

    from multistyle.video.media import MediaReader

    reader, out = MediaReader(path), []
    try:
        while len(out) < count:
            ok, frame = reader.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            scale = side / max(h, w)
            out.append(cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA))
    finally:
        reader.release()
    return out


def drift_s(source, output) -> float:
    """How much the sound moved against the picture by the end: the gap between where the picture and the sound
    end in the output, less the same gap in the input (0: the same alignment as the input)."""
    return abs((output.duration - output.audio_duration) - (source.duration - source.audio_duration))


def run_size(stylizer, size: tuple[int, int], seconds: float, folder: Path, metric: bool) -> dict:
    """One clip size: a warm-up run (the engine compiles its frame graph for the size), then flicker reduction on
    and off, each stylizing the whole clip into an MP4."""
    from multistyle.styles import style_weights
    from multistyle.video.frames import FrameSettings, FrameStylizer
    from multistyle.video.media import probe
    from multistyle.video.render import render_file

    clip = scaled_clip(CLIP, folder / f"clip_{size[0]}x{size[1]}.mp4", size, seconds)
    src = probe(clip)
    weights = style_weights(STYLE, stylizer.names)

    def run(flicker: bool, name: str, max_frames: int | None = None):
        process = FrameStylizer(stylizer, FrameSettings(weights, flicker=flicker), 1 << 30)
        return render_file(clip, folder / f"{name}_{size[0]}x{size[1]}.mp4", process, max_frames=max_frames)

    run(True, "warmup", max_frames=4)
    on, off = run(True, "on"), run(False, "off")
    out = probe(on.path)
    with_chromium = os.path.exists(CHROMIUM)
    played = play_in_chromium(on.path) if with_chromium else {}
    row = {"size": f"{size[0]}x{size[1]}", "frames": on.frames, "clip_s": round(src.duration, 3),
           "fps": on.fps, "fps_no_flicker": off.fps, "flicker_cost": off.fps / on.fps if on.fps else float("nan"),
           "codec": out_codec(on.path), "audio_in": f"{src.audio} {src.sample_rate} Hz {src.audio_duration:.3f} s",
           "audio_out": f"{out.audio} {out.sample_rate} Hz {out.audio_duration:.3f} s",
           "audio_kept": out.audio == src.audio and out.sample_rate == src.sample_rate
           and abs(out.audio_duration - src.audio_duration) < 1e-3,
           "drift_ms": 1000 * drift_s(src, out), "frame_ms": 1000 / src.fps,
           "chromium": (played.get("ready", 0) >= 2 and not played.get("error")) if with_chromium else None,
           "mb": on.path.stat().st_size / 1e6}
    if metric:
        from multistyle.video.flicker import flicker_metric

        frames = _frames(clip, METRIC_FRAMES)
        row["flicker_on"] = flicker_metric(frames, _frames(on.path, METRIC_FRAMES))
        row["flicker_off"] = flicker_metric(frames, _frames(off.path, METRIC_FRAMES))
        row["flicker_ratio"] = row["flicker_on"] / row["flicker_off"]
    return row


def out_codec(path: Path) -> str:
    """``h264 High yuv420p + aac`` (what a browser is asked to play)."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0].codec_context
        audio = f" + {c.streams.audio[0].codec_context.name}" if c.streams.audio else ""
        return f"{v.name} {v.profile} {v.pix_fmt}{audio}"


@register("video", headline=False)
def bench_video(args: argparse.Namespace) -> dict:
    """A 10 s clip (bunny.mp4 scaled) at 640x480 and 1280x720 through ``multistyle video``'s path: fps end to end,
    the sound kept, the codec, the sound/picture drift at the end, Chromium playback, flicker reduction's cost
    and ratio."""
    from multistyle.stylizer import get_stylizer

    sizes = effort(args, SIZES, SIZES[:1], [(64, 48)])
    seconds = effort(args, 10.0, 3.0, 1.0)
    stylizer = get_stylizer(args.model, "cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            start = time.perf_counter()
            rows.append(run_size(stylizer, size, seconds, Path(tmp), metric=not getattr(args, "smoke", False)))
            rows[-1]["bench_s"] = round(time.perf_counter() - start, 1)
    print(table(f"Video files: {seconds:g} s of bunny.mp4 scaled, style {STYLE}, engine {stylizer.choice.name}, "
                "flicker reduction on",
                ["size", "fps end to end", "fps without flicker reduction", "codec", "sound in → out",
                 "drift at the end (ms; 1 frame)", "plays in Chromium", "flicker on/off", "MB"],
                [[r["size"], r["fps"], r["fps_no_flicker"], r["codec"], f"{r['audio_in']} → {r['audio_out']}",
                  f"{r['drift_ms']:.1f} ({r['frame_ms']:.1f})", {True: "yes", False: "NO", None: "-"}[r["chromium"]],
                  f"{r['flicker_ratio']:.2f}" if "flicker_ratio" in r else "-", r["mb"]] for r in rows]))
    result = {"video": rows}
    print(json.dumps(result, indent=1, default=str))
    return result
