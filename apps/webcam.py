"""Real-time style transfer filter (same as ``multistyle webcam``) for a webcam, a video file or a stream.
``python apps/webcam.py --help`` lists the options and keys."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from multistyle.app_commands import webcam_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(webcam_main())
