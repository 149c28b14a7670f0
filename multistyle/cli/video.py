"""``multistyle video IN -s STYLE -o OUT.mp4``: stylize a video file through the same threaded pipeline as the
webcam app (:func:`multistyle.video.pipeline.run_pipeline` + :class:`~multistyle.video.frames.FrameStylizer`)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .common import add_engine_argument, fail, model_options, nonneg_float, positive_int, say_engine, style_option


def add_video(sub) -> None:
    """Register the ``video`` subcommand."""
    p = sub.add_parser("video", help="stylize a video file (flicker reduction on, frame rate kept)",
                       description="Stylize every frame of a video file with the fast network and write an MP4 at the "
                                   "source's frame rate. Flicker reduction (optical-flow blending) is on by default.")
    p.add_argument("input", help="video file to read (never overwritten)")
    style_option(p)
    p.add_argument("-o", "--output", required=True, help="the .mp4 file to write")
    p.add_argument("--strength", type=float, default=1.0, help="0 = the video, 1 = fully stylized (default 1)")
    p.add_argument("--preserve-color", action="store_true", help="keep the video's colours")
    p.add_argument("--max-size", type=positive_int,
                   help="process (and write) frames with this long side at most (default: the source's size)")
    p.add_argument("--scale", type=nonneg_float, default=1.0,
                   help="stroke scale 0.1..4 (network size / frame size; 0.5: bolder strokes, ~4x cheaper)")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--no-flicker-reduction", action="store_true", help="stylize each frame on its own")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for torch (default: $MULTISTYLE_THREADS, else one per core: the fastest "
                        "measured for the video pipeline; README, Performance)")
    model_options(p)
    add_engine_argument(p)
    p.set_defaults(run=run_video)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (also through links); a missing ``b`` is never the same."""
    if a.resolve() == b.resolve():
        return True
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def run_video(args: argparse.Namespace) -> int:
    """Stylize ``args.input`` into ``args.output`` with a progress bar (frames and fps)."""
    from tqdm import tqdm

    from ..precision import set_threads
    from ..styles import parse_style_arg, style_weights
    from ..stylizer import check_scale, check_strength, get_stylizer
    from ..video.frames import FrameSettings, FrameStylizer
    from ..video.pipeline import run_pipeline
    from ..video.recorder import VideoRecorder
    from ..video.sources import source_fps

    strength = check_strength(args.strength)
    scale = check_scale(args.scale)
    set_threads(args.threads)
    source, out = Path(args.input), Path(args.output)
    if not source.is_file():
        return fail(f"{source}: no such video file")
    if out.suffix.lower() != ".mp4":
        return fail(f"{out}: the output must be an .mp4 file")
    if same_file(source, out):
        return fail(f"{out} is the input video; refusing to overwrite it (pick another -o)")
    stylizer = get_stylizer(args.model, args.device, args.engine)
    say_engine(args, stylizer)
    weights = style_weights(parse_style_arg(args.style), stylizer.names)
    settings = FrameSettings(weights, strength=strength, preserve_color=args.preserve_color,
                             flicker=not args.no_flicker_reduction, scale=scale)
    process = FrameStylizer(stylizer, settings, args.max_size or 1 << 30)
    partial = out.with_name(f".{out.stem}.partial.mp4")
    recorder = VideoRecorder(partial)
    bar = tqdm(unit="frame", desc="video", dynamic_ncols=True, disable=None)

    def on_open(cap) -> None:
        recorder.fps = source_fps(cap)
        frames = int(cap.get(7))  # CAP_PROP_FRAME_COUNT; 0 or less when unknown
        if frames > 0:
            bar.total = min(frames, args.max_frames or frames)
            bar.refresh()

    def sink(_small, stylized) -> bool:
        recorder.write(stylized)
        bar.update(1)
        return True

    start = time.perf_counter()
    try:
        stats = run_pipeline(str(source), process.stages(), sink, args.max_frames, log=lambda _m: None, on_open=on_open)
        recorder.close()
        if recorder.frames == 0:
            return fail(f"{source}: no frame could be decoded; is it a video file OpenCV can read?")
        partial.replace(out)
    finally:
        bar.close()
        recorder.close()
        partial.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    print(f"{recorder.frames} frames in {seconds:.1f}s ({stats.fps:.1f} fps, {recorder.fps:g} fps kept, "
          f"{stylizer.device}) -> {out}")
    return 0
