"""Benchmarks of optimisation and training: Gatys wall time (vs pastiche), training throughput, add_style."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from .benchkit import DATA, ROOT, content_path, register, style_path, table, timed


# ---- gatys -----------------------------------------------------------------------------------------------------

@register("gatys")
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

@register("train")
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

@register("add-style")
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
