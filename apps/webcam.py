"""Real-time style transfer filter for a webcam, a video file or a stream: the same as ``multistyle webcam``. ``python apps/webcam.py --help`` lists the options."""

import sys

from multistyle.cli import main

if __name__ == "__main__":
    sys.exit(main(["webcam", *sys.argv[1:]]))
