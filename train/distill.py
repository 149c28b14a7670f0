"""Distil a v1 model into the fast v2 network: the same as ``multistyle distill``. ``python train/distill.py --help`` lists the options."""

import sys

from multistyle.cli import main

if __name__ == "__main__":
    sys.exit(main(["distill", *sys.argv[1:]]))
