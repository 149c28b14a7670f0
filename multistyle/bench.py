"""Benchmarks: ``python -m multistyle.bench gatys|train|add-style|stylize|all [--quick] [--json OUT]``.

Each prints a markdown table with the machine it ran on; ratios are against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MULTISTYLE_DATA", ROOT.parent / "shared" / "data"))


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


# ---- gatys -----------------------------------------------------------------------------------------------------

def bench_gatys(args: argparse.Namespace) -> dict:
    """Our Gatys (default settings, via the CLI) at 256 and 512 px vs the pastiche CLI, 200 steps at 256 px."""
    results = []
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = [256] if args.quick else [256, 512]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for size in sizes:
        out = out_dir / f"gatys_{size}.png"
        cmd = [sys.executable, "-m", "multistyle", "gatys", str(content_path()), str(style_path()), "-o", str(out),
               "--size", str(size), "--device", args.device]
        start = time.perf_counter()
        done = subprocess.run(cmd, check=True, capture_output=True, env=env)
        seconds = time.perf_counter() - start
        summary = done.stdout.decode().strip().splitlines()[-1]
        results.append({"tool": "multistyle gatys (defaults)", "size": size, "seconds": seconds, "output": str(out),
                        "summary": summary})
    if not args.quick or args.pastiche:
        out = out_dir / "pastiche_256.png"
        cmd = [sys.executable, "-m", "pastiche", "--size", "256", "--num-steps", "200", "--device",
               "cuda" if args.device == "cuda" else "cpu", str(content_path()), str(style_path()), str(out)]
        seconds = timed(lambda: subprocess.run(cmd, check=True, capture_output=True))
        results.append({"tool": "pastiche 0.1.5, 200 steps", "size": 256, "seconds": seconds, "output": str(out)})
    base = next((r["seconds"] for r in results if r["tool"].startswith("pastiche")), None)
    rows = [[r["tool"], r["size"], r["seconds"], (r["seconds"] / base) if base else "-", r.get("summary", "")]
            for r in results]
    print(table("Gatys: wall time of one stylization, whole command (tubingen.jpg + starry_night.jpg)",
                ["tool", "size (px)", "seconds", "ratio vs pastiche 256", "our summary line"], rows))
    return {"gatys": results}


# ---- training ----------------------------------------------------------------------------------------------------

def bench_train(args: argparse.Namespace) -> dict:
    """Training steps/s and images/s by size on each available device (width 0.25 and 1.0)."""
    from .losses import LossConfig, PerceptualLoss
    from .network import StyleNet

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sizes = [128, 256] if args.quick else [128, 256, 512]
    results = []
    for device in devices:
        loss = PerceptualLoss(LossConfig()).to(device)
        styles = [torch.rand(1, 3, 256, 256, device=device)]
        targets = loss.style_targets(styles, cache=False)
        for width in (0.25, 1.0):
            for size in sizes:
                batch = 4 if device == "cpu" else 16
                net = StyleNet(13, width).to(device)
                opt = torch.optim.Adam(net.parameters(), 1e-3)
                x = torch.rand(batch, 3, size, size, device=device)
                labels = torch.zeros(batch, dtype=torch.long, device=device)

                def step() -> None:
                    terms = loss(net(x, labels), loss.content_targets(x), targets.select(labels))
                    opt.zero_grad()
                    terms.total.backward()
                    opt.step()
                    if device == "cuda":
                        torch.cuda.synchronize()

                step()
                n = 2 if device == "cpu" else 10
                seconds = timed(step, n)
                results.append({"device": device, "width": width, "size": size, "batch": batch,
                                "steps_per_s": 1 / seconds, "images_per_s": batch / seconds})
    print(table("Training throughput (Adam step incl. VGG19 loss)", ["device", "width", "size", "batch", "steps/s",
                                                                       "images/s"],
                [[r["device"], r["width"], r["size"], r["batch"], r["steps_per_s"], r["images_per_s"]] for r in results]))
    curves = short_training_curves(args)
    return {"train": results, "train_curves": curves}


def short_training_curves(args: argparse.Namespace) -> dict[str, list[float]]:
    """Loss curves of short real training runs (packaged photos, two styles, 64 px) per width, for the plot."""
    from .gatys import pick_device
    from .models import PACKAGED_CONTENT
    from .training import TrainConfig, list_images, train

    curves = {}
    with tempfile.TemporaryDirectory() as tmp:
        for width in (0.25, 1.0):
            totals: list[float] = []
            config = TrainConfig(size=64, batch=4, steps=20 if args.quick else 60, lr=3e-3, width=width,
                                 workers=0, checkpoint_every=10_000, sample_every=10_000)
            train(list_images([PACKAGED_CONTENT]), [style_path("starry_night"), style_path("great_wave")],
                  Path(tmp) / f"w{width}.safetensors", config, pick_device(args.device),
                  progress=lambda i, n, rec: totals.append(rec["total"]), log=lambda s: None)
            curves[f"width {width}"] = totals
    return curves


# ---- add_style ------------------------------------------------------------------------------------------------------

def bench_add_style(args: argparse.Namespace) -> dict:
    """add_style on the default model for a painting it already knows (the_scream unless told otherwise): wall
    time, and the new row's style loss over the jointly trained row's, on the same photos with the same loss."""
    from .extend import AddStyleConfig, add_style
    from .gatys import pick_device
    from .imageio import load_image
    from .inference import pad_to_multiple
    from .losses import LossConfig, PerceptualLoss
    from .models import PACKAGED_CONTENT, default_model_path
    from .training import list_images

    device = pick_device(args.device)
    config = AddStyleConfig(steps=40 if args.quick else 200, size=128 if args.quick else 256)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        model = add_style(style_path(args.style), default_model_path(), Path(tmp) / "m.safetensors",
                          [PACKAGED_CONTENT], name=f"new_{args.style}", config=config, device=device)
        seconds = time.perf_counter() - start
    final = model.styles[-1].training["final"]
    row = {"device": str(device), "steps": config.steps, "size": config.size, "seconds": seconds, **final}
    names = model.style_names
    if args.style in names:
        loss = PerceptualLoss(LossConfig.from_dict(model.loss)).to(device)
        style_size = int(model.styles[0].training.get("style_size", 256))
        grams = loss.style_targets([load_image(style_path(args.style), max_size=style_size).to(device)]).blend()
        totals = {"joint": 0.0, "added": 0.0}
        net = model.net.to(device)
        for photo_file in list_images([DATA / "content"]):
            photo = load_image(photo_file, max_size=config.size).to(device)
            feats = loss.content_targets(photo)
            with torch.no_grad():
                for key, index in (("joint", names.index(args.style)), ("added", len(names) - 1)):
                    out = net(pad_to_multiple(photo)[0], torch.tensor([index], device=device))
                    totals[key] += float(loss(out[..., : photo.shape[-2], : photo.shape[-1]], feats, grams).style)
        row["style_ratio_vs_joint"] = totals["added"] / totals["joint"]
    print(table(f"add_style ({args.style}) on the default model; style loss ratio on held-out photos",
                ["device", "steps", "size", "seconds", "final content", "final style", "style loss / joint row"],
                [[row["device"], row["steps"], row["size"], row["seconds"], row["content"], row["style"],
                  row.get("style_ratio_vs_joint", "-")]]))
    return {"add_style": [row]}


BENCHES: dict[str, Callable[[argparse.Namespace], dict]] = {
    "gatys": bench_gatys,
    "train": bench_train,
    "add-style": bench_add_style,
}


def register(name: str, fn: Callable[[argparse.Namespace], dict]) -> None:
    BENCHES[name] = fn


def main(argv: list[str] | None = None) -> int:
    from multistyle import bench as registry  # under `python -m`, this file is __main__: use the module's table
    from multistyle import bench_inference  # noqa: F401  (registers the inference benches)

    benches = registry.BENCHES

    parser = argparse.ArgumentParser(prog="python -m multistyle.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=[*benches, "all"], help="benchmark to run")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and steps")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--style", default="the_scream", help="style for add-style")
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
        from .bench_inference import plot_results

        plot_results(results, Path(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
