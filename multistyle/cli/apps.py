"""The app subcommands ``multistyle demo`` and ``multistyle webcam``; ``apps/demo.py`` and ``apps/webcam.py`` are
thin shells over the same parsers; the apps themselves live in :mod:`multistyle.apps`. Heavy imports (Gradio,
OpenCV, torch) happen only when a command runs, so ``multistyle --help`` stays fast."""

from __future__ import annotations

import argparse
import os

from .common import add_engine_argument, fail, model_options, positive_int, style_option

DEMO_DESCRIPTION = """Gradio demo page: a Live tab (your webcam, stylized continuously), Stylize (upload a photo or
pick a bundled one; the result follows the controls), Best quality (Gatys) and Add your style. Runs on
http://127.0.0.1:7860 by default; --share makes a public Gradio link.

Safe to share (README, "The demo page"): a style a visitor adds stays in that visitor's session unless you run with
--save-styles (refused on a public address or with --share unless --save-styles-public).{policy}
Slow jobs stop at their time budget; uploads are checked by their header before decoding; sessions are ours
(--max-sessions) and their files go when they end. With --share, visitors are told apart by the address Gradio's
tunnel reports (it connects from loopback); behind a reverse proxy of your own, name it with --trusted-proxy. There
is no login unless you give --auth USER:PASSWORD (for a private page)."""


def demo_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The demo's options (shared by ``multistyle demo`` and ``apps/demo.py``): where it listens, the login, the
    model, and every limit that has a flag in :class:`multistyle.apps.demo.DemoOptions` (its reason is the help)."""
    import textwrap

    from ..apps.demo.clients import POLICY
    from ..apps.demo.options import add_arguments

    if p.description and "{policy}" in p.description:  # the fair-share policy, as the demo's clients module says it
        policy = textwrap.fill(POLICY, 116, break_on_hyphens=False)
        p.description = p.description.replace("{policy}", f"\n{policy}\n")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for your network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="create a public gradio.live link")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help="ask every visitor for this user name and password (Gradio's login page); default: none, "
                        "anyone with the link may use the page (or set MULTISTYLE_DEMO_AUTH)")
    add_arguments(p)
    model_options(p)
    p.set_defaults(run=run_demo)
    return p


def run_demo(args: argparse.Namespace) -> int:
    """Build the Gradio page and serve it until interrupted (Ctrl-C or SIGTERM: the server's temp folder goes)."""
    import signal

    from ..apps.demo import build_app, check_launch, launch
    from ..apps.demo.options import from_arguments

    try:
        options = from_arguments(args, model=args.model, device=args.device)
    except ValueError as exc:
        return fail(str(exc))
    check_launch(options, args.host, args.share)  # before loading anything
    auth = args.auth or os.environ.get("MULTISTYLE_DEMO_AUTH")
    if auth is not None and (":" not in auth or not auth.split(":", 1)[0] or not auth.split(":", 1)[1]):
        return fail("--auth takes USER:PASSWORD (both non-empty)")

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # stop as Ctrl-C does (atexit then removes the temp folder)
    app = build_app(options=options)
    try:
        launch(app, args.host, args.port, args.share, auth=tuple(auth.split(":", 1)) if auth else None)
    finally:
        app.multistyle_host.close()
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
    p.add_argument("--virtual-camera", action="store_true",
                   help="also send the stylized frames to the system's virtual camera (OBS Virtual Camera on "
                        "Windows/macOS, v4l2loopback on Linux) so Zoom, Meet or OBS can pick the filter; needs "
                        "pip install \"multistyle[virtualcam]\"")
    p.add_argument("--realtime", action="store_true",
                   help="read a video file at its own frame rate, dropping frames the filter cannot keep up with, "
                        "as from a camera (default for files: every frame, as fast as possible)")
    model_options(p)
    add_engine_argument(p)
    p.set_defaults(run=run_webcam)
    return p


def run_webcam(args: argparse.Namespace) -> int:
    """The live filter (or, headless, a video file through the same threaded pipeline)."""
    from ..apps.webcam import WebcamOptions
    from ..apps.webcam import run_webcam as run
    from ..styles import parse_style_arg

    options = WebcamOptions(source=args.source, style=parse_style_arg(args.style), size=args.size,
                            display_size=args.display_size, flicker=not args.no_flicker_reduction,
                            headless=args.headless, output=args.output, max_frames=args.max_frames, scale=args.scale,
                            compile=args.compile, save_dir=args.save_dir, model=args.model, device=args.device,
                            virtual_camera=args.virtual_camera, engine=args.engine, verbose=args.verbose,
                            realtime=args.realtime)
    stats = run(options)
    print(f"{stats.frames_out} frames in {stats.seconds:.1f}s ({stats.fps:.1f} fps, {stats.dropped} dropped, "
          f"latency {stats.latency_ms:.0f} ms)"
          + (f" -> {args.output}" if args.output else ""))
    return 0


def add_app_commands(sub) -> None:
    """Register ``demo`` (and ``webcam``) on the ``multistyle`` command line."""
    demo_options(sub.add_parser("demo", help="the Gradio demo page in your browser", description=DEMO_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter))
    webcam_options(sub.add_parser("webcam", help="real-time filter for a webcam, video file or stream",
                                  description=WEBCAM_DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter))
