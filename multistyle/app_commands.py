"""The app subcommands ``multistyle demo`` and ``multistyle webcam``; ``apps/demo.py`` and ``apps/webcam.py`` are
thin shells over the same parsers and run functions. Heavy imports (Gradio, OpenCV, torch) happen only when a
command runs, so ``multistyle --help`` stays fast."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from .cliutil import Parser, model_options, positive_int, run_guarded, style_option
from .errors import MultistyleError

DEMO_DESCRIPTION = """Gradio demo page: upload a photo or take a webcam snapshot, pick and mix styles, try Gatys,
add your own style. Runs on http://127.0.0.1:7860 by default; --share makes a public Gradio link."""


def demo_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The demo's options (shared by ``multistyle demo`` and ``apps/demo.py``)."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for your network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="create a public gradio.live link")
    model_options(p)
    p.set_defaults(run=run_demo)
    return p


def run_demo(args: argparse.Namespace) -> int:
    """Build the Gradio page and serve it until interrupted."""
    from .webapp import build_app, launch

    launch(build_app(args.model, args.device), args.host, args.port, args.share)
    return 0


WEBCAM_DESCRIPTION = """Real-time style transfer filter for a webcam, a video file or a stream.

Keys: n/p next/previous style, 0-9 pick, m mix with the next style, [ ] move the blend, +/- strength,
, . smaller/larger stroke scale, c colour preservation, f flicker reduction, space snapshot,
r start/stop recording, q/Esc quit.
Headless (servers, tests): --headless --output out.mp4 [--max-frames N]."""


def webcam_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The webcam filter's options (shared by ``multistyle webcam`` and ``apps/webcam.py``)."""
    p.add_argument("--source", default="0", help="camera index (0, 1 ...), video file or stream URL (default 0)")
    style_option(p)
    p.add_argument("--size", type=positive_int, default=480,
                   help="processing resolution, long side in pixels (default 480); display is upscaled")
    p.add_argument("--display-size", type=positive_int, default=960, help="window long side (default 960)")
    p.add_argument("--no-flicker-reduction", action="store_true", help="start with flicker reduction off")
    p.add_argument("--headless", action="store_true", help="no window; needs --output")
    p.add_argument("-o", "--output", help="write the stylized video here (.mp4)")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--scale", type=float, default=1.0,
                   help="starting stroke scale 0.1..4: the network runs at scale x --size (0.5: bolder strokes, "
                        "~4x cheaper); keys , and . change it (default 1)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network for the fixed frame size (CUDA graphs on CUDA); the first frame "
                        "takes a while")
    p.add_argument("--save-dir", default=".", help="where snapshots and recordings go (default: current folder)")
    model_options(p)
    p.set_defaults(run=run_webcam)
    return p


def run_webcam(args: argparse.Namespace) -> int:
    """The live filter (or, headless, a video file through the same threaded pipeline)."""
    if args.headless and not args.output:
        raise MultistyleError("--headless needs --output FILE.mp4")
    import cv2

    from .inference import check_scale, get_stylizer, parse_style_arg, style_weights
    from .video import Controls, FrameStylizer, VideoRecorder, draw_hud, parse_source, run_pipeline, source_fps

    scale = check_scale(args.scale)
    stylizer = get_stylizer(args.model, args.device)
    controls = Controls(stylizer.names, flicker=not args.no_flicker_reduction, scale=scale)
    start_weights = style_weights(parse_style_arg(args.style), stylizer.names)[0]
    top = start_weights.argsort(descending=True).tolist()
    controls.style = top[0]
    if start_weights[top[1]] > 0 if len(top) > 1 else False:
        controls.mix_with, controls.mix = top[1], float(start_weights[top[1]])
    process = FrameStylizer(stylizer, controls, args.size, compile=args.compile)
    source = parse_source(args.source)
    output = VideoRecorder(args.output) if args.output else None

    def on_open(cap) -> None:  # the pipeline's own capture: no second open of the source
        if output is not None:
            output.fps = source_fps(cap) if isinstance(source, str) else 25.0

    save_dir = Path(args.save_dir)
    recording: list[VideoRecorder] = []
    fps = {"value": 0.0, "last": time.perf_counter()}

    def sink(small, stylized) -> bool:
        now = time.perf_counter()
        fps["value"] = 0.9 * fps["value"] + 0.1 / max(now - fps["last"], 1e-6)
        fps["last"] = now
        if output is not None:
            output.write(stylized)
        if controls.recording and not recording:
            recording.append(VideoRecorder(save_dir / f"multistyle_{time.strftime('%Y%m%d_%H%M%S')}.mp4"))
        if recording:
            if controls.recording:
                recording[0].write(stylized)
            else:
                recording.pop().close()
        while controls.snapshots:
            controls.snapshots -= 1
            save_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(save_dir / f"snapshot_{time.strftime('%Y%m%d_%H%M%S')}_{controls.snapshots}.png"),
                        stylized)
        if args.headless:
            return True
        h, w = stylized.shape[:2]
        scale = args.display_size / max(h, w)
        shown = cv2.resize(stylized, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_LINEAR)
        cv2.imshow("multistyle", draw_hud(shown, controls, fps["value"], str(stylizer.device)))
        return controls.handle_key(cv2.waitKey(1))

    try:
        stats = run_pipeline(source, process, sink, args.max_frames, on_open=on_open)
    finally:
        if output is not None:
            output.close()
        for r in recording:
            r.close()
        if not args.headless:
            cv2.destroyAllWindows()
    print(f"{stats.frames_out} frames in {stats.seconds:.1f}s ({stats.fps:.1f} fps, {stats.dropped} dropped, "
          f"{stylizer.device})" + (f" -> {args.output}" if args.output else ""))
    return 0


def add_app_commands(sub) -> None:
    """Register ``demo`` (and ``webcam``) on the ``multistyle`` command line."""
    demo_options(sub.add_parser("demo", help="the Gradio demo page in your browser", description=DEMO_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter))
    webcam_options(sub.add_parser("webcam", help="real-time filter for a webcam, video file or stream",
                                  description=WEBCAM_DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter))


def script_main(options, prog: str, description: str, argv: Sequence[str] | None = None) -> int:
    """Entry point of an ``apps/`` script: same options and behaviour as the ``multistyle`` subcommand."""
    parser = options(Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    return run_guarded(lambda: args.run(args))


def demo_main(argv: Sequence[str] | None = None) -> int:
    """``python apps/demo.py``."""
    return script_main(demo_options, "demo.py", DEMO_DESCRIPTION, argv)


def webcam_main(argv: Sequence[str] | None = None) -> int:
    """``python apps/webcam.py``."""
    return script_main(webcam_options, "webcam.py", WEBCAM_DESCRIPTION, argv)


if __name__ == "__main__":
    sys.exit(demo_main())
