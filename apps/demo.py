"""Gradio demo page: upload a photo or take a webcam snapshot, pick and mix styles, try Gatys, add your own style.

Runs on http://127.0.0.1:7860 by default; --share makes a public Gradio link.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from multistyle.cliutil import Parser, run_guarded  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="demo.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for your network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="create a public gradio.live link")
    p.add_argument("--model", help="model file (default: your extended model, else the packaged one)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def job() -> int:
        from multistyle.webapp import build_app, launch

        launch(build_app(args.model, args.device), args.host, args.port, args.share)
        return 0

    return run_guarded(job)


if __name__ == "__main__":
    sys.exit(main())
