"""Benchmarks: ``python -m benchmarks NAME|all [--quick] [--json OUT]`` (``--help`` lists the names).

Each prints a markdown table with the machine it ran on; ratios are against a baseline measured in the same run.
The benchmarks live in the modules beside this one (training, inference, arch, knobs, peer, live) and register into
:mod:`benchmarks.kit`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

from . import add_style, arch, cpu_matrix, flicker, inference, knobs, live, peer, training  # noqa: F401  (registers)
from .kit import BENCHES, machine


def main(argv: list[str] | None = None) -> int:
    benches = BENCHES

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=[*benches, "all", "gpu"],
                        help="benchmark to run; all = every one on every device present; gpu = the lent-GPU "
                             "checklist (" + ", ".join(GPU_BENCHES) + " on CUDA, one markdown report)")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and steps")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and 1-2 steps: only proves every bench runs (the tests use it)")
    parser.add_argument("--device", default="all",
                        help="all (every device present: the CPU, and CUDA when there is one), cpu or cuda")
    parser.add_argument("--model", help="model file for the stylize, webcam and quality benches (default: the "
                                        "packaged model)")
    parser.add_argument("--compare", nargs="+", metavar="MODEL",
                        help="quality bench: more model files (same styles), each given its ratio against the "
                             "same Gatys runs")
    parser.add_argument("--pastiche", action="store_true", help="with --quick: still run the pastiche baseline")
    parser.add_argument("--out-dir", default="bench-out", help="where images, JSON and plots go")
    parser.add_argument("--json", help="write the results as JSON here (default: OUT_DIR/bench.json for all)")
    args = parser.parse_args(argv)
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores ({info['threads']} torch threads), "
          f"GPU: {info['gpu'] or 'none'}, torch {info['torch']}\n")
    if args.which == "gpu":
        return run_gpu(args, info)
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
        inference.plot_results(results, Path(args.out_dir))
    return 0


GPU_BENCHES = ("stylize", "webcam", "train", "add-style", "torchrun")  # webcam includes its stage table


class _Tee(io.TextIOBase):
    """Write to the terminal and keep a copy (for the markdown report)."""

    def __init__(self, stream) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.stream.write(text)
        return self.copy.write(text)

    def flush(self) -> None:
        self.stream.flush()


def run_gpu(args: argparse.Namespace, info: dict) -> int:
    """The benches a lent GPU session needs, in one process and one report (OUT_DIR/gpu_report.md): fp16
    latency up to 1920x1080, the webcam pipeline by stage up to 720p, AMP training throughput, add_style time
    and a 1-GPU torchrun run. ``--device cpu`` runs the same sequence on the CPU (to check it before a GPU)."""
    import torch

    if args.device == "all":
        if not torch.cuda.is_available():
            raise SystemExit("error: bench gpu needs a CUDA device (torch sees none); --device cpu runs the same "
                             "sequence on the CPU")
        args.device = "cuda"
    args.quick = True
    tee = _Tee(sys.stdout)
    results: dict = {"machine": info}
    started = time.perf_counter()
    with contextlib.redirect_stdout(tee):
        for name in GPU_BENCHES:
            results.update(BENCHES[name](args))
    minutes = (time.perf_counter() - started) / 60
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = (f"# multistyle GPU report\n\n{time.strftime('%Y-%m-%d %H:%M')}; {info['gpu'] or 'no GPU'}; CPU "
              f"{info['cpu']} ({info['cores']} cores); torch {info['torch']}; {minutes:.1f} min\n\n")
    (out / "gpu_report.md").write_text(header + tee.copy.getvalue())
    (out / "gpu_report.json").write_text(json.dumps(results, indent=2))
    print(f"report written to {out / 'gpu_report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
