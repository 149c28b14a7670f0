"""The app subcommands ``multistyle demo`` and ``multistyle webcam``; ``apps/demo.py`` and ``apps/webcam.py`` are
thin shells over the same parsers and run functions. Heavy imports (Gradio, OpenCV, torch) happen only when a
command runs, so ``multistyle --help`` stays fast."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .cliutil import Parser, model_options, run_guarded

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


def add_app_commands(sub) -> None:
    """Register ``demo`` (and ``webcam``) on the ``multistyle`` command line."""
    demo_options(sub.add_parser("demo", help="the Gradio demo page in your browser", description=DEMO_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter))


def script_main(options, prog: str, description: str, argv: Sequence[str] | None = None) -> int:
    """Entry point of an ``apps/`` script: same options and behaviour as the ``multistyle`` subcommand."""
    parser = options(Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    return run_guarded(lambda: args.run(args))


def demo_main(argv: Sequence[str] | None = None) -> int:
    """``python apps/demo.py``."""
    return script_main(demo_options, "demo.py", DEMO_DESCRIPTION, argv)


if __name__ == "__main__":
    sys.exit(demo_main())
