"""The Gradio demo page: the same as ``multistyle demo``. ``python apps/demo.py --help`` lists the options."""

import sys

from multistyle.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
