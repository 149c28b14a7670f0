"""``multistyle sweep``: the Gatys module over a grid of one or two parameters (:mod:`multistyle.sweep`)."""

from __future__ import annotations

import argparse

from ..errors import MultistyleError
from .common import tqdm_progress


def add_sweep(sub) -> None:
    """Register the ``sweep`` subcommand."""
    from ..sweep import PARAMS

    p = sub.add_parser("sweep", help="run Gatys over a grid of one or two parameters",
                       description="Run the Gatys module over a grid and write a labelled contact sheet (sheet.png), "
                                   "loss curves (losses.png) and the final losses and times (results.json/.csv). "
                                   f"Parameters: {', '.join(PARAMS)}. Layer lists use +, e.g. "
                                   "style-layers=relu1_1+relu2_1. Finished cells are skipped when run again.")
    p.add_argument("content", help="content photo")
    p.add_argument("style", nargs="?", help="style painting file; or use -s")
    p.add_argument("-s", "--style-name", dest="style_name", metavar="STYLE",
                   help="instead of a file: a style of --model by name or index (its stored painting)")
    p.add_argument("--model", help="model file whose stored paintings -s picks from (default: as for stylize)")
    p.add_argument("--param", action="append", required=True, metavar="NAME=V1,V2,...",
                   help="a parameter and its values (give one or two --param)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a fixed setting for every cell, e.g. --set tv-weight=0 (same names as --param)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--size", type=int, default=256, help="default size of every cell (default 256)")
    p.add_argument("--steps", type=int, default=100, help="default iterations of every cell (default 100)")
    p.add_argument("--device", default="auto")
    p.set_defaults(run=run_sweep_cli)


def run_sweep_cli(args: argparse.Namespace) -> int:
    from ..gatys import GatysConfig
    from ..sweep import apply_cell, parse_param, run_sweep

    params = [parse_param(t) for t in args.param]
    if len({p for p, _ in params}) != len(params):
        raise MultistyleError("each --param name may appear once")
    base = GatysConfig(size=args.size, steps=args.steps)
    fixed = {}
    for text in args.set:
        name, values = parse_param(text)
        if len(values) != 1:
            raise MultistyleError(f"--set {name} takes one value")
        fixed[name] = values[0]
    if fixed:
        base = apply_cell(base, fixed)
    cells = 1
    for _, values in params:
        cells *= len(values)
    bar, step_progress = tqdm_progress(cells * args.steps, "sweep")
    count = {"runs": 0, "last": 0}

    def progress(i: int, n: int, label: str) -> None:
        if i < count["last"]:
            count["runs"] += count["last"]
        count["last"] = i
        step_progress(count["runs"] + i, cells * args.steps, {})

    if bool(args.style) == bool(args.style_name):
        raise MultistyleError("give the style as a painting file or as -s STYLE (a style stored in the model), "
                              "not both")
    style = args.style
    if args.style_name:
        from ..refine import stored_paintings

        paintings, _ = stored_paintings(args.style_name, args.model)
        if len(paintings) != 1:
            raise MultistyleError("sweep takes one style; a mix is for gatys and stylize")
        style = paintings[0]
    records = run_sweep(args.content, style, params, args.output, base, args.device, progress, log=bar.write)
    bar.close()
    print(f"{len(records)} cells -> {args.output}/sheet.png, losses.png, results.json, results.csv")
    return 0
