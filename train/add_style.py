"""Teach a model a new painting (only its γ/β rows train): the same as ``multistyle add-style``.
``python train/add_style.py --help`` lists the options."""

import sys

from multistyle.cli import main

if __name__ == "__main__":
    sys.exit(main(["add-style", *sys.argv[1:]]))
