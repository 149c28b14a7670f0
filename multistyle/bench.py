"""Benchmarks: ``python -m multistyle.bench NAME|all [--quick] [--json OUT]`` (``--help`` lists the names).

Each prints a markdown table with the machine it ran on; ratios are against a baseline measured in the same run.
The benchmarks live in ``bench_training`` and ``bench_inference`` and register into :mod:`multistyle.benchkit`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import bench_arch, bench_inference, bench_training  # noqa: F401  (importing registers their benchmarks)
from .benchkit import BENCHES, machine


def main(argv: list[str] | None = None) -> int:
    benches = BENCHES

    parser = argparse.ArgumentParser(prog="python -m multistyle.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=[*benches, "all"], help="benchmark to run")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and steps")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and 1-2 steps: only proves every bench runs (the tests use it)")
    parser.add_argument("--device", default="all",
                        help="all (every device present: the CPU, and CUDA when there is one), cpu or cuda")
    parser.add_argument("--style", default="the_scream", help="style for add-style")
    parser.add_argument("--model", help="model file for the stylize, webcam and quality benches (default: the "
                                        "packaged model)")
    parser.add_argument("--pastiche", action="store_true", help="with --quick: still run the pastiche baseline")
    parser.add_argument("--out-dir", default="bench-out", help="where images, JSON and plots go")
    parser.add_argument("--json", help="write the results as JSON here (default: OUT_DIR/bench.json for all)")
    args = parser.parse_args(argv)
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores ({info['threads']} torch threads), "
          f"GPU: {info['gpu'] or 'none'}, torch {info['torch']}\n")
    names = list(benches) if args.which == "all" else [args.which]
    results: dict = {"machine": info}
    for name in names:
        results.update(benches[name](args))
    target = args.json or (str(Path(args.out_dir) / "bench.json") if args.which == "all" else None)
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps(results, indent=2))
        print(f"results written to {target}")
    if args.which == "all":
        bench_inference.plot_results(results, Path(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
