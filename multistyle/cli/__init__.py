"""Command line: ``multistyle stylize|styles|sheet|export-onnx|video|gatys|sweep|webcam|demo|train|distill|add-style|
quantize``
(``multistyle CMD --help``). One module per command group; :mod:`.common` holds what they share."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import Parser, run_guarded


def build_parser() -> Parser:
    from .. import __version__

    parser = Parser(prog="multistyle", description="Fast multi-style neural style transfer.",
                    formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  multistyle styles
  multistyle stylize photo.jpg -s starry_night -o out.jpg
  multistyle stylize photos/ -s "starry_night=0.7,great_wave=0.3" --preserve-color -o out/
  multistyle gatys photo.jpg painting.jpg -o best.png --size 512

  multistyle video clip.mp4 -s udnie -o clip_udnie.mp4
  multistyle webcam --source 0 -s great_wave
  multistyle demo
  multistyle add-style my_painting.jpg

training: multistyle train --help, multistyle add-style --help, multistyle distill --help,
multistyle quantize --help""")
    parser.add_argument("--version", action="version", version=f"multistyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    from .apps import add_app_commands
    from .gatys import add_gatys
    from .images import add_image_commands
    from .quantize import add_quantize
    from .sweep import add_sweep
    from .train import add_train_commands
    from .video import add_video

    add_image_commands(sub)
    add_video(sub)
    add_gatys(sub)
    add_sweep(sub)
    add_app_commands(sub)
    add_train_commands(sub)
    add_quantize(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return run_guarded(lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())
