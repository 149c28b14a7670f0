"""Train the multi-style network from scratch: the same as ``multistyle train``. ``python train/train.py --help`` lists the options."""

import sys

from multistyle.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
