"""Gradio demo page (same as ``multistyle demo``): upload a photo or take a webcam snapshot, pick and mix styles,
try Gatys, add your own style. ``python apps/demo.py --help`` lists the options."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from multistyle.app_commands import demo_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(demo_main())
