"""Fine-tune a model's convolutions for int8 and check every style on held-out photos: the same as
``multistyle quantize``. ``python train/quantize.py --help`` lists the options. Run it niced, on one core:
  nice -n 19 python train/quantize.py --content-dir ../shared/data/train --held-out ../shared/data/content"""

import sys

from multistyle.cli import main

if __name__ == "__main__":
    sys.exit(main(["quantize", *sys.argv[1:]]))
