"""``multistyle video IN -s STYLE -o OUT.mp4``: stylize a video file through the same threaded pipeline as the
webcam app into an H.264 MP4 with the input's sound (:func:`multistyle.video.render.render_file`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_engine_argument, fail, model_options, nonneg_float, positive_int, say_engine, style_option


def add_video(sub) -> None:
    """Register the ``video`` subcommand."""
    p = sub.add_parser("video", help="stylize a video file (sound kept, H.264 MP4, flicker reduction on)",
                       description="Stylize every frame of a video file with the fast network and write an H.264 MP4 "
                                   "(plays in browsers and on phones) at the source's size, rotation and frame "
                                   "times, with its sound copied in. Flicker reduction (optical-flow blending) is on "
                                   "by default. Ctrl-C keeps a playable file of what was done.")
    p.add_argument("input", help="video file to read (never overwritten)")
    style_option(p)
    p.add_argument("-o", "--output", required=True, help="the .mp4 file to write (H.264 + the input's sound)")
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


def run_video(args: argparse.Namespace) -> int:
    """Stylize ``args.input`` into ``args.output`` (H.264 MP4 with the input's sound) with a progress bar (frames,
    fps, time left); Ctrl-C keeps a playable file of what was done."""
    import sys

    from tqdm import tqdm

    from ..precision import set_threads
    from ..styles import parse_style_arg, style_weights
    from ..stylizer import check_scale, check_strength, get_stylizer
    from ..video.frames import FrameSettings, FrameStylizer
    from ..video.media import probe
    from ..video.render import Interrupted, render_file, same_file

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
    info = probe(source)  # a file that is no video fails here, before the model loads
    stylizer = get_stylizer(args.model, args.device, args.engine)
    say_engine(args, stylizer)
    weights = style_weights(parse_style_arg(args.style), stylizer.names)
    settings = FrameSettings(weights, strength=strength, preserve_color=args.preserve_color,
                             flicker=not args.no_flicker_reduction, scale=scale)
    process = FrameStylizer(stylizer, settings, args.max_size or 1 << 30)
    total = min(info.frames, args.max_frames or info.frames)
    bar = tqdm(total=total or None, unit="frame", desc="video", dynamic_ncols=True, disable=None)

    def progress(done: int, now_total: int) -> None:
        bar.update(done - bar.n)

    try:
        result = render_file(source, out, process, args.max_frames, keep_size=args.max_size is None,
                             progress=progress, info=info)
    except Interrupted as stop:
        bar.close()
        kept = stop.result
        where = f"the first {kept.duration:.1f} s ({kept.frames} frames) are in {out}" if kept.path else \
            f"nothing was written to {out}"
        sys.stderr.write(f"interrupted: {where}\n")
        return 130
    finally:
        bar.close()
    sound = f"sound {info.audio} kept" if info.audio else "no sound in the input"
    print(f"{result.frames} frames in {result.seconds:.1f}s ({result.fps:.1f} fps, {info.fps:g} fps kept, {sound}, "
          f"H.264, {stylizer.device}) -> {out}")
    return 0
