"""Benchmarks of the inference knobs (registered into ``python -m benchmarks``): stroke scale (speed, and bilinear vs
guided upsampling by the perceptual loss), refine mode (loss against seconds, next to plain Gatys from the photo
and from noise), ``multistyle video`` against the headless webcam app, and the webcam pipeline's stages."""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from .kit import DATA, HELD_OUT, ROOT, cpu_flags, devices, effort, register, table

REFINE_STYLES = ("starry_night", "great_wave")  # the first one present is used


def _photos(size: int) -> list[torch.Tensor]:
    from multistyle.images import load_image

    return [load_image(DATA / "content" / name, max_size=size) for name in HELD_OUT]


@register("scale")
def bench_scale(args: argparse.Namespace) -> dict:
    """Stroke scale: time of scale 0.5 (bilinear and guided upsampling) against scale 1 at 1024 px, interleaved;
    and the perceptual loss of the two upsamplings at 512 px (style target: the painting at 256 px ÷ scale)."""
    from multistyle.images import load_image, resize_long_side
    from multistyle.modelfile import get_model
    from multistyle.refine import model_loss, style_paintings
    from multistyle.styles import style_weights
    from multistyle.stylizer import get_stylizer

    size = effort(args, 1024, 1024, 64)
    rows = []
    for device in devices(args):
        stylizer = get_stylizer(args.model, device)
        x = load_image(DATA / "content" / HELD_OUT[0], max_size=size)
        w = style_weights(0, stylizer.names)
        variants = {"scale 1": (1.0, "bilinear"), "scale 0.5 bilinear": (0.5, "bilinear"),
                    "scale 0.5 guided": (0.5, "guided"), "scale 2": (2.0, "bilinear")}
        times: dict[str, list[float]] = {k: [] for k in variants}
        for k, (scale, mode) in variants.items():  # warm-up
            stylizer(x, w, scale=scale, upsample=mode)
        for _ in range(effort(args, 5, 3, 1)):
            for k, (scale, mode) in variants.items():
                start = time.perf_counter()
                stylizer(x, w, scale=scale, upsample=mode)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                times[k].append(time.perf_counter() - start)
        base = statistics.median(times["scale 1"])
        for k, t in times.items():
            rows.append({"device": device, "variant": k, "size": f"{x.shape[-1]}x{x.shape[-2]}",
                         "ms": 1000 * statistics.median(t), "vs_scale_1": statistics.median(t) / base})
    print(table("Stroke scale: whole stylize call (median, interleaved)", ["device", "variant", "image", "ms",
                                                                           "vs scale 1"],
                [[r["device"], r["variant"], r["size"], r["ms"], r["vs_scale_1"]] for r in rows]))
    model = get_model(args.model)
    stylizer = get_stylizer(args.model, "cpu")
    loss = model_loss(model)
    loss_size = effort(args, 512, 256, 64)
    names = [n for n in model.style_names][: effort(args, None, 4, 1)]
    ratios, totals = [], {"bilinear": [], "guided": []}
    for photo in _photos(loss_size):
        content = loss.content_targets(photo)
        for name in names:
            index = model.style_names.index(name)
            painting = style_paintings(model, [index])[0]
            grams = loss.style_targets([resize_long_side(painting, round(max(painting.shape[-2:]) / 0.5))]).blend()
            pair = {}
            for mode in ("bilinear", "guided"):
                out = stylizer(photo, style_weights(index, model.style_names), scale=0.5, upsample=mode)
                with torch.no_grad():
                    pair[mode] = float(loss(out, content, grams).total)
                totals[mode].append(pair[mode])
            ratios.append(pair["guided"] / pair["bilinear"])
    quality = {"photos": len(HELD_OUT), "styles": len(names), "size": loss_size,
               "bilinear_mean": statistics.mean(totals["bilinear"]), "guided_mean": statistics.mean(totals["guided"]),
               "guided_over_bilinear_median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    print(table(f"Scale 0.5 upsampling: perceptual loss (model loss; {len(names)} styles x {len(HELD_OUT)} held-out "
                f"photos at {loss_size} px)", ["bilinear mean", "guided mean", "guided / bilinear median", "min",
                                               "max"],
                [[quality["bilinear_mean"], quality["guided_mean"], quality["guided_over_bilinear_median"],
                  quality["min"], quality["max"]]]))
    return {"scale": rows, "scale_upsampling": quality}


def _timed_gatys(photo, painting, config, loss, device, start: float | None = None):
    """Run Gatys; returns (result, [(seconds since ``start``, loss at the final size)...] for the last level)."""
    from multistyle.gatys import stylize_gatys

    start = time.perf_counter() if start is None else start
    points: list[tuple[float, float, int]] = []

    def progress(_i: int, _n: int, record: dict) -> None:
        points.append((time.perf_counter() - start, record["total"], int(record["size"])))

    result = stylize_gatys(photo, [painting], config, loss=loss, device=device, progress=progress)
    # a record holds the loss of the image before that iteration: shift by one, end with the final image's loss
    with torch.no_grad():
        final = float(loss(result.image.to(device), loss.content_targets(photo.to(device)),
                           loss.style_targets([painting.to(device)]).blend()).total)
    size = max(photo.shape[-2:])
    curve = [(points[i][0], points[i + 1][1]) for i in range(len(points) - 1) if points[i + 1][2] == size]
    curve.append((time.perf_counter() - start, final))
    return result, curve


@register("refine")
def bench_refine(args: argparse.Namespace) -> dict:
    """Refine mode: the model's loss against seconds for Gatys from the photo (the default run: 100 L-BFGS
    iterations, 64→256 px pyramid), Gatys from noise, and N iterations from the network's output (one level),
    on the held-out photos at 256 px; which N reaches the default run's final loss, in what fraction of its time."""
    from multistyle.gatys import GatysConfig
    from multistyle.modelfile import get_model
    from multistyle.refine import model_loss, refine_config, style_paintings
    from multistyle.styles import style_weights
    from multistyle.stylizer import get_stylizer

    device = devices(args)[-1]
    model = get_model(args.model)
    stylizer = get_stylizer(args.model, device)
    loss = model_loss(model, torch.device(device))
    size = effort(args, 256, 128, 32)
    steps = effort(args, 100, 40, 2)
    refine_steps = effort(args, 50, 30, 2)
    names = [n for n in REFINE_STYLES if n in model.style_names][:1]  # ~10 CPU-minutes per photo at 256 px
    runs = []
    for photo_name, photo in zip(HELD_OUT, _photos(size)):
        for name in names:
            index = model.style_names.index(name)
            painting = style_paintings(model, [index])[0]
            base = refine_config(model, index, size, steps, photo, 1.0)
            cfg = {k: getattr(base, k) for k in ("style_scale", "loss")}
            _, default = _timed_gatys(photo, painting, GatysConfig(size=size, steps=steps, **cfg), loss, device)
            _, noise = _timed_gatys(photo, painting, GatysConfig(size=size, steps=steps, init="noise", **cfg), loss,
                                    device)
            start = time.perf_counter()
            out = stylizer.raw(photo, style_weights(index, model.style_names))
            network_s = time.perf_counter() - start
            config = refine_config(model, index, size, refine_steps, out.cpu(), 1.0)
            _, refined = _timed_gatys(photo, painting, config, loss, device, start)
            with torch.no_grad():
                net_loss = float(loss(out.to(device), loss.content_targets(photo.to(device)),
                                      loss.style_targets([painting.to(device)]).blend()).total)
            runs.append({"photo": photo_name, "style": name, "default": default, "noise": noise,
                         "refine": [(network_s, net_loss)] + refined})
    rows = []
    for run in runs:
        target_s, target = run["default"][-1]
        reach = next((n for n, (_s, value) in enumerate(run["refine"]) if value <= target), None)
        rows.append({"photo": run["photo"], "style": run["style"], "gatys_loss": target, "gatys_s": target_s,
                     "network_over_gatys": run["refine"][0][1] / target,
                     "noise_final_over_gatys": run["noise"][-1][1] / target,
                     "refine_n": reach, "refine_s": run["refine"][reach][0] if reach is not None else math.nan,
                     "time_fraction": run["refine"][reach][0] / target_s if reach is not None else math.nan,
                     f"refine{refine_steps}_over_gatys": run["refine"][-1][1] / target})
    print(table(f"Refine: iterations N from the network's output until the model's loss reaches the default Gatys "
                f"run's final loss ({steps} L-BFGS iterations, pyramid to {size} px), {device}",
                ["photo", "style", "Gatys loss", "Gatys s", "network / Gatys", "noise run / Gatys", "N", "s",
                 "fraction of Gatys time", f"after {refine_steps} / Gatys"],
                [[r["photo"], r["style"], r["gatys_loss"], r["gatys_s"], r["network_over_gatys"],
                  r["noise_final_over_gatys"], r["refine_n"] if r["refine_n"] is not None else "not reached",
                  r["refine_s"], r["time_fraction"], r[f"refine{refine_steps}_over_gatys"]] for r in rows]))
    reached = [r for r in rows if r["refine_n"] is not None]
    if reached:
        print(f"reached in {len(reached)}/{len(rows)} runs: median N {statistics.median(r['refine_n'] for r in reached)},"
              f" median time fraction {statistics.median(r['time_fraction'] for r in reached):.3g}\n")
    _plot_refine(runs, Path(args.out_dir) / "refine_curve.png")
    return {"refine": rows, "refine_curves": [{k: v for k, v in r.items()} for r in runs]}


def _plot_refine(runs: list[dict], path: Path) -> None:
    """Median over runs of loss / default Gatys final loss against seconds / default Gatys seconds."""
    from multistyle.plots import line_plot

    grid = [i / 40 for i in range(49)]  # 0 .. 1.2 × the default run's time
    series: dict[str, list[float]] = {}
    for key, label in (("default", "Gatys from the photo (default)"), ("noise", "Gatys from noise"),
                       ("refine", "refine: from the network's output")):
        values = []
        for x in grid:
            at = []
            for run in runs:
                target_s, target = run["default"][-1]
                seen = [v for s, v in run[key] if s / target_s <= x]
                if seen:
                    at.append(seen[-1] / target)
            values.append(statistics.median(at) if len(at) == len(runs) else math.nan)
        series[label] = values
    series["default run's final loss"] = [1.0] * len(grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    line_plot(grid, series, path, title="Loss at the final size vs time (median of runs, relative to default Gatys)",
              log_y=True, x_label="seconds / default Gatys run's seconds", y_label="loss / default Gatys final loss")
    print(f"plot written to {path}")


def _fps(text: str) -> float:
    match = re.search(r"\(([\d.]+) fps", text)
    if not match:
        raise RuntimeError(f"no fps in the output: {text[-300:]}")
    return float(match.group(1))


@register("video")
def bench_video(args: argparse.Namespace) -> dict:
    """``multistyle video`` against the headless webcam app on bunny.mp4 at 320 px (same frames, same flicker
    reduction; subprocesses, interleaved, the pipeline's own fps)."""
    clip = DATA / "video" / "bunny.mp4"
    frames = str(effort(args, 120, 60, 4))
    size = str(effort(args, 320, 320, 64))
    rounds = effort(args, 3, 2, 1)
    result: dict[str, list[float]] = {"video": [], "webcam": []}
    device = devices(args)[-1]
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            commands = {
                "video": [sys.executable, "-m", "multistyle", "video", str(clip), "-s", "udnie", "-o",
                          f"{tmp}/v{r}.mp4", "--max-size", size, "--max-frames", frames, "--device", device],
                "webcam": [sys.executable, str(ROOT / "apps" / "webcam.py"), "--source", str(clip), "--headless",
                           "--output", f"{tmp}/w{r}.mp4", "--size", size, "--max-frames", frames, "--style", "udnie",
                           "--device", device],
            }
            for name in (("video", "webcam") if r % 2 == 0 else ("webcam", "video")):
                done = subprocess.run(commands[name], capture_output=True, text=True, cwd=ROOT, check=False)
                if done.returncode:
                    raise RuntimeError(f"{name}: {done.stderr.strip()[-300:]}")
                result[name].append(_fps(done.stdout))
    video, webcam = statistics.median(result["video"]), statistics.median(result["webcam"])
    print(table(f"multistyle video vs headless webcam app (bunny.mp4, {size} px, {frames} frames, {device}, "
                f"median of {rounds})", ["multistyle video fps", "webcam app fps", "ratio"],
                [[video, webcam, video / webcam]]))
    return {"video_vs_webcam": {"video_fps": result["video"], "webcam_fps": result["webcam"], "ratio": video / webcam}}


@register("webcam-models")
def bench_webcam_models(args: argparse.Namespace) -> dict:
    """The headless webcam app on bunny.mp4 at ``--size 640`` with the packaged v1 and v2 (``--model`` replaces
    v2), under OpenMP's default and passive wait policies: subprocesses, interleaved, the app's own fps."""
    clip = DATA / "video" / "bunny.mp4"
    frames = str(effort(args, 90, 45, 4))
    size = str(effort(args, 640, 640, 64))
    rounds = effort(args, 3, 2, 1)
    device = devices(args)[-1]
    models = {"v1": "v1", "v2": args.model or "v2"}
    policies = ("default", "PASSIVE") if device == "cpu" else ("default",)
    fps: dict[tuple[str, str], list[float]] = {(m, p): [] for m in models for p in policies}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = list(fps) if r % 2 == 0 else list(fps)[::-1]
            for model, policy in order:
                env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                if policy != "default":
                    env["OMP_WAIT_POLICY"] = policy
                cmd = [sys.executable, str(ROOT / "apps" / "webcam.py"), "--source", str(clip), "--headless",
                       "--output", f"{tmp}/{model}{r}.mp4", "--size", size, "--max-frames", frames,
                       "--style", "udnie", "--device", device, "--model", models[model]]
                done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
                if done.returncode:
                    raise RuntimeError(f"webcam {model}: {done.stderr.strip()[-300:]}")
                fps[(model, policy)].append(_fps(done.stdout))
    rows = []
    for policy in policies:
        v1, v2 = statistics.median(fps[("v1", policy)]), statistics.median(fps[("v2", policy)])
        rows.append({"policy": policy, "v1_fps": v1, "v2_fps": v2, "ratio": v2 / v1,
                     "runs": {m: fps[(m, policy)] for m in models}})
    print(f"CPU flags: {cpu_flags()}\n")
    print(table(f"Webcam app, headless, bunny.mp4 at --size {size}, {frames} frames, {device} (median of {rounds}, "
                "interleaved)", ["OMP_WAIT_POLICY", "v1 fps", f"v2 fps ({models['v2']})", "v2 / v1"],
                [[r["policy"], r["v1_fps"], r["v2_fps"], r["ratio"]] for r in rows]))
    return {"webcam_models": rows}


def webcam_pipeline(stylizer, device: str, size: int, frames: int, flicker: bool = True, timer=None):
    """The headless webcam app's pipeline on bunny.mp4 (style 0, the flow reducer on or off; display = upscale to
    960 px + HUD, plus an MP4 write) → the pipeline's stats (``fps``)."""
    import cv2

    from multistyle.apps.webcam import Controls, draw_hud
    from multistyle.video.frames import FrameStylizer
    from multistyle.video.pipeline import run_pipeline
    from multistyle.video.recorder import VideoRecorder

    controls = Controls.for_style(stylizer.names, flicker=flicker)
    process = FrameStylizer(stylizer, controls, size, timer)
    with tempfile.TemporaryDirectory() as tmp:
        recorder = VideoRecorder(Path(tmp) / "out.mp4", 24)

        def sink(_small, stylized) -> bool:
            h, w = stylized.shape[:2]
            shown = cv2.resize(stylized, (960, round(960 * h / w)), interpolation=cv2.INTER_LINEAR)
            draw_hud(shown, controls, 0.0, device)
            recorder.write(stylized)
            return True

        stats = run_pipeline(str(DATA / "video" / "bunny.mp4"), process.stages(), sink, frames, log=lambda _m: None,
                             timer=timer)
        recorder.close()
    return stats


def bench_webcam_stages(args: argparse.Namespace) -> dict:
    """Per-stage milliseconds of the webcam pipeline on bunny.mp4: capture (decode), upload, model, download, flow
    (flicker reduction), display + encode (HUD, upscale to 960 px, MP4 write); GPU work synchronised per stage."""
    from multistyle.stylizer import get_stylizer
    from multistyle.video.frames import StageTimer

    rows = []
    for device in devices(args):
        stylizer = get_stylizer(args.model, device)
        sizes = effort(args, (320, 640), (320,), (64,))
        if device.startswith("cuda") and not getattr(args, "smoke", False):
            sizes = (320, 640, 1280)
        for size in sizes:
            timer = StageTimer(sync=True)
            stats = webcam_pipeline(stylizer, device, size, effort(args, 60, 30, 4), timer=timer)
            ms = timer.mean_ms(skip=effort(args, 5, 3, 0))
            rows.append({"device": device, "size": size, **{k: ms.get(k, math.nan) for k in STAGES},
                         "fps": stats.fps})
    print(table("Webcam pipeline stages (ms per frame, mean after warm-up; stages run in 4 threads, so fps follows "
                "the slowest stage, not the sum)", ["device", "long side", *STAGE_LABELS, "end-to-end fps"],
                [[r["device"], r["size"], *[r[k] for k in STAGES], r["fps"]] for r in rows]))
    return {"webcam_stages": rows}


STAGES = ("capture", "upload", "model", "download", "flow", "sink")
STAGE_LABELS = ("capture", "upload", "model", "download", "flow", "display+encode")
register("webcam-stages", bench_webcam_stages)
