"""Inference benchmarks (registered into ``python -m benchmarks``): network latency by resolution, width and
device, and the quality ratio of the network's loss to the Gatys teacher's loss on held-out photos."""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from multistyle.nets import StyleNet

from .kit import DATA, HELD_OUT, devices, effort, register, render, table

RESOLUTIONS = [(320, 240), (640, 480), (1280, 720)]


def latency_ms(net: StyleNet, device: str, size: tuple[int, int], half: bool, repeat: int) -> float:
    """Median milliseconds of one forward pass on a [1, 3, H, W] frame after warm-up. Runs on a copy of ``net``
    (the caller's network, often the process-wide cached model, is never converted in place)."""
    w, h = size
    x = torch.rand(1, 3, h, w, device=device)
    style = torch.tensor([0], device=device)
    net = copy.deepcopy(net).to(device).eval()
    if half:
        net, x = net.half(), x.half()
    net = net.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for i in range(repeat + 2):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            net(x, style)
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def bench_stylize(args: argparse.Namespace) -> dict:
    """Latency of the fast network: the model (``--model``, default the packaged v2) and v1 at width 1.0 (the
    wide quality variant)."""
    from multistyle.modelfile import get_model

    shipped = get_model(args.model).net
    label = f"{type(shipped).__name__} w{shipped.width:g} (model)"
    nets = [(label, shipped), ("StyleNet w1 (v1 wide)", StyleNet(shipped.num_styles, 1.0))]  # wide: untrained
    rows = []
    for device in devices(args):
        for name, net in nets:
            sizes = effort(args, RESOLUTIONS, RESOLUTIONS[:2], [(64, 48)])
            if device.startswith("cuda") and not getattr(args, "smoke", False):
                sizes = [*RESOLUTIONS, (1920, 1080)]  # cheap on a GPU: always up to full HD
            for size in sizes:
                for half in ([False, True] if device.startswith("cuda") else [False]):
                    repeat = effort(args, 5, 5, 1) if device == "cpu" else 50
                    ms = latency_ms(net, device, size, half, repeat)
                    rows.append({"device": device, "network": name, "width": net.width,
                                 "resolution": f"{size[0]}x{size[1]}", "pixels": size[0] * size[1],
                                 "dtype": "fp16" if half else "fp32", "ms": ms, "fps": 1000 / ms})
    base_device = "cpu" if any(r["device"] == "cpu" for r in rows) else rows[0]["device"]
    base = {r["resolution"]: r["ms"] for r in rows
            if r["device"] == base_device and r["network"] == label and r["dtype"] == "fp32"}
    print(table("Fast network latency (one frame, after warm-up, median)",
                ["device", "network", "resolution", "dtype", "ms", "frames/s", f"vs {base_device} model fp32"],
                [[r["device"], r["network"], r["resolution"], r["dtype"], r["ms"], r["fps"],
                  r["ms"] / base[r["resolution"]]] for r in rows]))
    return {"stylize": rows}


def bench_quality(args: argparse.Namespace) -> dict:
    """Per style: the network's perceptual loss over the Gatys teacher's, same weights and size, held-out photos.
    ``args.compare`` (model files with the same styles) adds a ratio per model against the same Gatys runs."""
    from multistyle.gatys import GatysConfig, stylize_gatys
    from multistyle.images import load_image
    from multistyle.loss import LossConfig, PerceptualLoss
    from multistyle.modelfile import get_model

    model = get_model(args.model)
    others = [(Path(f).stem, get_model(f)) for f in getattr(args, "compare", None) or []]
    for name, other in others:
        if other.style_names != model.style_names or other.loss != model.loss:
            raise SystemExit(f"error: {name} has other styles or loss settings than the compared model")
    device = torch.device(devices(args)[-1])  # a quality figure: measured once, on the fastest device
    nets = [copy.deepcopy(m.net).to(device).eval() for m in [model] + [o for _, o in others]]
    labels = [model.net.__class__.__name__] + [name for name, _ in others]
    loss_cfg = LossConfig.from_dict(model.loss)
    loss = PerceptualLoss(loss_cfg).to(device)
    size = effort(args, 256, 128, 32)
    photos = [DATA / "content" / n for n in HELD_OUT[: effort(args, 2, 1, 1)]]
    styles = model.styles[: effort(args, None, 3, 1)]
    rows = []
    for index, style in enumerate(styles):
        style_file = DATA / "styles" / style.source
        if not style_file.is_file():
            continue
        style_size = int(style.training.get("style_size", 256) * size / style.training.get("photo_size", 256))
        style_image = load_image(style_file, max_size=style_size).to(device)
        grams = loss.style_targets([style_image]).blend()
        net_totals, teacher_total = [0.0] * len(nets), 0.0
        for photo_file in photos:
            photo = load_image(photo_file, max_size=size).to(device)
            with torch.no_grad():
                feats = loss.content_targets(photo)
                for i, net in enumerate(nets):
                    net_totals[i] += float(loss(render(net, index, photo), feats, grams).total)
            config = GatysConfig(size=size, steps=effort(args, 100, 20, 2), style_scale=style_size / size,
                                 loss=loss_cfg)
            result = stylize_gatys(photo, [style_image], config, loss=loss, device=device)
            with torch.no_grad():
                teacher_total += float(loss(result.image.to(device), feats, grams).total)
        row = {"style": style.name, "network_loss": net_totals[0] / len(photos),
               "gatys_loss": teacher_total / len(photos), "ratio": net_totals[0] / teacher_total}
        for (name, _), total in zip(others, net_totals[1:]):
            row[f"ratio {name}"] = total / teacher_total
        rows.append(row)
    extra = [f"ratio {name}" for name, _ in others]
    print(table(f"Quality: network loss / Gatys teacher loss ({len(photos)} held-out photos, {size} px)",
                ["style", "network loss", "Gatys loss", "ratio", *extra],
                [[r["style"], r["network_loss"], r["gatys_loss"], r["ratio"], *(r[k] for k in extra)] for r in rows]))
    if rows:
        for label, key in zip(labels, ["ratio", *extra]):
            median = statistics.median(r[key] for r in rows)
            print(f"median ratio {median:.3g} ({label}, {len(rows)} styles, {device})")
        print()
    return {"quality": rows}


def plot_results(results: dict, out_dir: Path) -> None:
    """latency.png (ms per frame vs megapixels per device/width/dtype, 30 and 10 fps lines) and
    training_loss.png (short training runs per width)."""
    from multistyle.plots import latency_plot, line_plot

    if results.get("stylize"):
        print(f"plot written to {latency_plot(results['stylize'], out_dir / 'latency.png')}")
    curves = results.get("train_curves", {})
    if curves:
        steps = list(range(1, max(len(c) for c in curves.values()) + 1))
        path = line_plot(steps, curves, out_dir / "training_loss.png", title="short training runs: total loss",
                         log_y=True, x_label="step", y_label="loss")
        print(f"plot written to {path}")


def bench_webcam(args: argparse.Namespace) -> dict:
    """Webcam pipeline FPS (model only, and end to end from the test clip through the threaded pipeline incl.
    flicker reduction), and the flicker metric with and without flicker reduction."""
    from multistyle.styles import style_weights
    from multistyle.stylizer import get_stylizer
    from multistyle.video.flicker import flicker_metric
    from multistyle.video.frames import FrameSettings, FrameStylizer
    from multistyle.video.pipeline import run_pipeline

    from .flicker import clip_frames

    clip = DATA / "video" / "bunny.mp4"
    frames_n = effort(args, 45, 30, 3)
    rows = []
    for device in devices(args):
        stylizer = get_stylizer(args.model, device)
        for w, h in effort(args, RESOLUTIONS, RESOLUTIONS, [(64, 48)]):
            model_ms = latency_ms(stylizer.net, device, (w, h), stylizer.half,
                                  effort(args, 5, 5, 1) if device == "cpu" else 50)
            process = FrameStylizer(stylizer, FrameSettings(style_weights(0, stylizer.names)), max(w, h))
            stats = run_pipeline(str(clip), _upscaled_stages(process, (w, h)), lambda a, b: True, max_frames=frames_n,
                                 log=lambda s: None)
            rows.append({"device": device, "resolution": f"{w}x{h}", "model_fps": 1000 / model_ms,
                         "end_to_end_fps": stats.fps, "frames": stats.frames_out})
    print(table("Webcam pipeline (bunny.mp4 frames resized to each resolution; end to end = decode + stylize + "
                "flicker reduction, threaded)", ["device", "resolution", "model-only fps", "end-to-end fps"],
                [[r["device"], r["resolution"], r["model_fps"], r["end_to_end_fps"]] for r in rows]))
    frames = clip_frames(effort(args, 72, 24, 3), effort(args, 320, 320, 64))
    stylizer = get_stylizer(args.model, devices(args)[-1])
    flicker_rows = []
    for name in effort(args, stylizer.names[::4], stylizer.names[:2], stylizer.names[:1]):
        result = {"style": name}
        for flicker in (False, True):
            settings = FrameSettings(style_weights(name, stylizer.names), flicker=flicker)
            process = FrameStylizer(stylizer, settings, 320)
            result["on" if flicker else "off"] = flicker_metric(frames, [process(f)[1] for f in frames])
        flicker_rows.append(result)
    print(table(f"Flicker metric (mean |frame_t - warp(frame_t-1)| on consistent pixels, 0-255; {len(frames)} frames "
                "of bunny.mp4 at 320 px)", ["style", "without", "with flicker reduction", "ratio"],
                [[r["style"], r["off"], r["on"], r["on"] / r["off"]] for r in flicker_rows]))
    from .knobs import bench_webcam_stages

    return {"webcam": rows, "flicker": flicker_rows, **bench_webcam_stages(args)}


def _upscaled_stages(process, size: tuple[int, int]) -> list:
    """The frame stylizer's stages, with each decoded clip frame first resized to the benchmark resolution (stands
    in for a camera of that size); flicker reduction stays its own stage, as in the app."""
    import cv2

    infer, deflicker = process.stages()
    return [lambda frame: infer(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)), deflicker]

    def __call__(self, frame):
        return self.deflicker(*self.infer(frame))


register("stylize", bench_stylize)
register("webcam", bench_webcam)
register("quality", bench_quality)
