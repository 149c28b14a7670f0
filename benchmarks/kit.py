"""The benchmark kit: one registry that every benchmark module registers into, and the helpers they share
(machine description, markdown tables, timing, data paths). It imports no benchmark module, so registering never
creates an import cycle; ``python -m benchmarks`` imports the benchmark modules and runs them."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MULTISTYLE_DATA", ROOT.parent / "shared" / "data"))
HELD_OUT = ("tubingen.jpg", "kodak_lighthouse.jpg")  # DATA/content photos the quality benches judge on

BenchFn = Callable[[argparse.Namespace], dict]
BENCHES: dict[str, BenchFn] = {}


def register(name: str, fn: BenchFn | None = None):
    """Add a benchmark under ``name`` (usable as a decorator)."""
    def add(f: BenchFn) -> BenchFn:
        BENCHES[name] = f
        return f
    return add(fn) if fn is not None else add

def devices(args: argparse.Namespace) -> list[str]:
    """Devices a benchmark runs on: every one present for ``--device all`` (the default), else the one named."""
    if args.device in ("all", "auto"):
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {args.device}, but torch sees no CUDA device here")
    return [args.device]


def compared_model(args: argparse.Namespace) -> Path:
    """The model the v2 benches compare with the packaged v1: ``--model``, else the packaged default (v2)."""
    from multistyle.modelfile import resolve_model_path

    return resolve_model_path(args.model or "v2")


def interleaved_ms(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 2) -> dict[str, float]:
    """Median ms per call of each function, timed round-robin (``warmup`` untimed rounds first)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append((time.perf_counter() - start) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def effort(args: argparse.Namespace, full, quick, smoke):
    """The setting for this run's effort: ``--smoke`` (tiny, only proves it runs), ``--quick`` or full."""
    return smoke if getattr(args, "smoke", False) else quick if args.quick else full


def cpu_flags() -> str:
    """The AVX flags of this CPU (``lscpu | grep -o 'avx[^ ]*' | sort -u``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    flags = sorted({w for w in out.split() if w.startswith("avx")})
    return " ".join(flags) or "no AVX"


def machine() -> dict:
    """CPU, cores, GPU and torch version, for the header of every table."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version()}


def table(title: str, headers: list[str], rows: list[list]) -> str:
    """Markdown table; floats get 3 significant digits."""
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def content_path() -> Path:
    return ROOT / "examples" / "tubingen.jpg"


def style_path(name: str = "starry_night") -> Path:
    path = DATA / "styles" / f"{name}.jpg"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; set MULTISTYLE_DATA to the folder holding styles/")
    return path


@torch.no_grad()
def render(net, index: int, photo: torch.Tensor) -> torch.Tensor:
    """Style ``index`` of ``net`` on ``photo`` [1, 3, H, W]: padded to the net's multiple, run, cropped back."""
    from multistyle.stylizer import pad_to_multiple

    out = net(pad_to_multiple(photo)[0], torch.tensor([index], device=photo.device))
    return out[..., : photo.shape[-2], : photo.shape[-1]]
