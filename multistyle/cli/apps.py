"""The app subcommands ``multistyle demo`` and ``multistyle webcam``; ``apps/demo.py`` and ``apps/webcam.py`` are
thin shells over the same parsers; the apps themselves live in :mod:`multistyle.apps`. Heavy imports (Gradio,
OpenCV, torch) happen only when a command runs, so ``multistyle --help`` stays fast."""

from __future__ import annotations

import argparse
import os

from .common import fail, model_options, positive_float, positive_int, style_option

DEMO_DESCRIPTION = """Gradio demo page: a Live tab (your webcam, stylized continuously), Stylize (upload a photo or
pick a bundled one; the result follows the controls), Best quality (Gatys) and Add your style. Runs on
http://127.0.0.1:7860 by default; --share makes a public Gradio link.

Safe to share (README, "The demo page"): a style a visitor adds stays in that visitor's session unless you run with
--save-styles (refused on a public address or with --share unless --save-styles-public); each visitor has at most
one slow job (Gatys, refine, add-style) and one live stream; slow jobs stop at their time budget; uploads are
checked by their header before decoding; sessions are ours (--max-sessions) and their files go when they end.
There is no login unless you give --auth USER:PASSWORD (for a private page)."""


def demo_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The demo's options (shared by ``multistyle demo`` and ``apps/demo.py``); every limit's default and reason
    is in :class:`multistyle.apps.demo_options.DemoOptions`."""
    from ..apps.demo_options import DemoOptions

    d = DemoOptions()
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for your network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="create a public gradio.live link")
    p.add_argument("--save-styles", action="store_true",
                   help="styles visitors add are saved to your user model file (and then used by every visitor and "
                        "every command); without it they stay in the visitor's session and nothing is written")
    p.add_argument("--save-styles-public", action="store_true",
                   help="allow --save-styles together with --share or a non-loopback --host (any visitor can then "
                        "add up to --max-saved-styles styles to your model file)")
    p.add_argument("--max-saved-styles", type=positive_int, default=d.max_saved_styles,
                   help=f"with --save-styles: styles this server run may add to your model file in all "
                        f"(default {d.max_saved_styles})")
    p.add_argument("--max-added-styles", type=positive_int, default=d.max_added_styles,
                   help=f"styles one visitor may add per visit (default {d.max_added_styles})")
    p.add_argument("--max-sessions", type=positive_int, default=d.max_sessions,
                   help=f"visitors holding added styles or a live stream at once (default {d.max_sessions}); a "
                        f"session idle for {d.session_protect:.0f} s may be dropped to make room, a busier one never")
    p.add_argument("--gatys-seconds", type=positive_float, default=d.gatys_seconds,
                   help=f"time budget of one Best quality (Gatys) job; it returns the best image reached by then "
                        f"(default {d.gatys_seconds:g})")
    p.add_argument("--refine-seconds", type=positive_float, default=d.refine_seconds,
                   help=f"time budget of one Stylize-tab refine (default {d.refine_seconds:g})")
    p.add_argument("--live-size", type=positive_int, default=d.live_size,
                   help=f"Live tab: long side in px the camera frames are stylized at, whatever the browser sends "
                        f"(default {d.live_size})")
    p.add_argument("--live-fps", type=positive_float, default=d.live_fps,
                   help=f"Live tab: frames per second the browser sends at most (default {d.live_fps:g})")
    p.add_argument("--live-seconds", type=positive_int, default=d.live_seconds,
                   help=f"Live tab: a stream stops after this many seconds (default {d.live_seconds})")
    p.add_argument("--live-visitors", type=positive_int, default=d.live_visitors,
                   help=f"Live tab: streams served at once; more visitors wait in the queue, and while they wait a "
                        f"stream older than {d.live_fair_seconds:.0f} s is ended for them (default "
                        f"{d.live_visitors})")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help="ask every visitor for this user name and password (Gradio's login page); default: none, "
                        "anyone with the link may use the page (or set MULTISTYLE_DEMO_AUTH)")
    p.add_argument("--threads", type=positive_int, default=d.threads,
                   help="CPU threads for torch per request (default 1: each live visitor's frames then run on a core "
                        "of their own, and a browser on the same machine does not stall the network; see README, "
                        "Performance)")
    model_options(p)
    p.set_defaults(run=run_demo)
    return p


def run_demo(args: argparse.Namespace) -> int:
    """Build the Gradio page and serve it until interrupted (Ctrl-C or SIGTERM: the server's temp folder goes)."""
    import signal

    from ..apps.demo import build_app, check_launch, launch
    from ..apps.demo_options import DemoOptions

    try:
        options = DemoOptions(model=args.model, device=args.device, save_styles=args.save_styles,
                              save_styles_public=args.save_styles_public, max_saved_styles=args.max_saved_styles,
                              max_added_styles=args.max_added_styles, max_sessions=args.max_sessions,
                              gatys_seconds=args.gatys_seconds, refine_seconds=args.refine_seconds,
                              live_size=args.live_size, live_fps=args.live_fps, live_seconds=args.live_seconds,
                              live_visitors=args.live_visitors, threads=args.threads)
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
    model_options(p)
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
                            virtual_camera=args.virtual_camera)
    stats = run(options)
    print(f"{stats.frames_out} frames in {stats.seconds:.1f}s ({stats.fps:.1f} fps, {stats.dropped} dropped)"
          + (f" -> {args.output}" if args.output else ""))
    return 0


def add_app_commands(sub) -> None:
    """Register ``demo`` (and ``webcam``) on the ``multistyle`` command line."""
    demo_options(sub.add_parser("demo", help="the Gradio demo page in your browser", description=DEMO_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter))
    webcam_options(sub.add_parser("webcam", help="real-time filter for a webcam, video file or stream",
                                  description=WEBCAM_DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter))
