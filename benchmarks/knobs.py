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


REFINE_STORED = ("starry_night", "udnie", "great_wave")  # styles stored in the model
REFINE_NEW = ("starry_night", "mondrian_tableau_2", "the_scream")  # new paintings: left out of the model (add-style's)
REFINE_STEPS = {256: 40, 512: 25, 1024: 15}  # refine iterations per size (the curve's length)


def _env_list(name: str, default: tuple) -> tuple:
    value = os.environ.get(name, "").strip()
    return tuple(v for v in value.split(",") if v) if value else default


def _refine_cases(args: argparse.Namespace) -> list[tuple[int, str, str, str]]:
    """(size, photo, kind, style) runs; ``REFINE_SIZES``, ``REFINE_PHOTOS``, ``REFINE_KINDS`` (stored,new) and
    ``REFINE_STYLES`` (comma lists) pick a part, so a long bench can run in pieces (``REFINE_TODAY=0``: without
    today's refine)."""
    sizes = [int(v) for v in _env_list("REFINE_SIZES", tuple(map(str, effort(args, (256, 512, 1024), (256,), (32,)))))]
    photos = _env_list("REFINE_PHOTOS", HELD_OUT if not args.quick and not getattr(args, "smoke", False)
                       else HELD_OUT[:1])
    kinds = _env_list("REFINE_KINDS", ("stored", "new"))
    cases = []
    for size in sizes:
        for photo in photos:
            for kind in kinds:
                names = _env_list("REFINE_STYLES", REFINE_STORED if kind == "stored" else REFINE_NEW)
                cases += [(size, photo, kind, n) for n in names[: effort(args, None, 1, 1)]]
    return cases


def _refine_run(model, base, index: int, start_index: int, photo: torch.Tensor, painting: torch.Tensor, loss,
                steps: int, precision: str) -> tuple[list[tuple[float, float]], torch.Tensor, float]:
    """The network (style ``start_index`` of ``base``) then ``steps`` one-level refine iterations → (curve from the
    network's start, image, network seconds)."""
    from multistyle.refine import refine_config
    from multistyle.stylizer import Stylizer

    stylizer = Stylizer(base, "cpu")
    weights = torch.zeros(1, len(base.styles))
    weights[0, start_index] = 1.0
    stylizer.raw(photo, weights)  # warm
    start = time.perf_counter()
    out = stylizer.raw(photo, weights)
    network_s = time.perf_counter() - start
    config = refine_config(model, index, max(photo.shape[-2:]), steps, out.cpu(), 1.0, precision=precision)
    result, curve = _timed_gatys(photo, painting, config, loss, "cpu", start)
    return [(network_s, _loss_of(loss, out, photo, painting))] + curve, result.image, network_s


def _loss_of(loss, image: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor) -> float:
    with torch.no_grad():
        return float(loss(image, loss.content_targets(photo), loss.style_targets([painting]).blend()).total)


def _reach(curve: list[tuple[float, float]], target: float) -> float:
    """Seconds until the curve's loss is at most ``target`` (nan if never)."""
    return next((s for s, value in curve if value <= target), math.nan)


@register("refine")
def bench_refine(args: argparse.Namespace) -> dict:
    """Best quality in seconds (issue #31): the model's loss against seconds for the default Gatys run (100 L-BFGS
    iterations over the 64 px → size pyramid, fp32, from the photo), today's refine (the network's output, then
    one-level L-BFGS at full size, fp32) and the new path (the same with the loss network under bf16 autocast where
    native, = ``--refine N`` / ``--best`` now); stored styles and new paintings (left out of the model, started
    from the zero-shot row), on the held-out photos, at 256/512/1024 px. Figure: time to reach the default run's
    final loss / that run's time, same run. Also the zero-shot row: seconds at 512 px (warm) and its held-out
    loss against add-style's 25 s row (``REFINE_ADDSTYLE=1``; the add-style bench's photos and size)."""
    from multistyle.gatys import GatysConfig
    from multistyle.images import load_image
    from multistyle.modelfile import get_model
    from multistyle.refine import model_loss, refine_config, style_paintings
    from multistyle.zero_shot import zero_shot_model

    from .add_style import leave_one_out

    model = get_model(args.model)
    loss = model_loss(model)
    runs, sheets = [], {}
    for size, photo_name, kind, name in _refine_cases(args):
        index = model.style_names.index(name)
        painting = style_paintings(model, [index])[0]
        photo = load_image(DATA / "content" / photo_name, max_size=size)
        if kind == "stored":
            base, start_index = model, index
        else:
            base = zero_shot_model(leave_one_out(model, index), painting)
            start_index = len(base.styles) - 1
        cfg = refine_config(model, index, size, 100, photo, 1.0)
        _timed_gatys(photo, painting, GatysConfig(size=size, steps=2, min_size=size, style_scale=cfg.style_scale,
                                                  loss=cfg.loss), loss, "cpu")  # warm the shapes
        default_result, default = _timed_gatys(photo, painting, GatysConfig(
            size=size, steps=effort(args, 100, 100, 4), style_scale=cfg.style_scale, loss=cfg.loss), loss, "cpu")
        steps = effort(args, REFINE_STEPS.get(size, 20), REFINE_STEPS.get(size, 20), 2)
        new, new_image, network_s = _refine_run(model, base, index, start_index, photo, painting, loss, steps, "auto")
        today = [(math.nan, math.nan)]  # REFINE_TODAY=0 leaves today's refine out (1024 px in one sitting)
        if os.environ.get("REFINE_TODAY") != "0":
            today = _refine_run(model, base, index, start_index, photo, painting, loss, steps, "fp32")[0]
        target_s, target = default[-1]
        run = {"size": size, "photo": photo_name, "kind": kind, "style": name, "gatys_s": target_s,
               "gatys_loss": target, "network_s": network_s, "network_over_gatys": new[0][1] / target,
               "today_reach": _reach(today, target) / target_s, "new_reach": _reach(new, target) / target_s,
               "today_final": today[-1][1] / target, "new_final": new[-1][1] / target, "steps": steps,
               "new_s": new[-1][0] / target_s, "curves": {"default": default, "today": today, "new": new}}
        runs.append(run)
        print(f"{size} px {photo_name} {kind} {name}: Gatys {target_s:.1f} s; reach today {run['today_reach']:.3f}x, "
              f"new {run['new_reach']:.3f}x", flush=True)
        from multistyle.stylizer import Stylizer

        weights = torch.zeros(1, len(base.styles))
        weights[0, start_index] = 1.0
        sheets.setdefault(size, []).extend([
            (f"{name} ({kind}): network", Stylizer(base, "cpu").raw(photo, weights).cpu()),
            (f"new path, {steps} it, {new[-1][0]:.0f} s", new_image),
            (f"default Gatys, {target_s:.0f} s", default_result.image)])
    rows = [{k: v for k, v in r.items() if k != "curves"} for r in runs]
    print(table("Refine: time to reach the default Gatys run's final loss / that run's time (same run, model loss, "
                f"cpu, {torch.get_num_threads()} threads)",
                ["size", "photo", "kind", "style", "Gatys s", "network / Gatys loss", "today's refine", "new path",
                 f"new path after N / Gatys loss", "N"],
                [[r["size"], r["photo"], r["kind"], r["style"], r["gatys_s"], r["network_over_gatys"],
                  r["today_reach"], r["new_reach"], r["new_final"], r["steps"]] for r in rows]))
    for size in sorted({r["size"] for r in runs}):
        group = [r for r in runs if r["size"] == size]
        for kind in ("stored", "new"):
            part = [r["new_reach"] for r in group if r["kind"] == kind]
            if part:
                print(f"{size} px {kind}: median new-path fraction {statistics.median(part):.3g} "
                      f"(worst {max(part):.3g}) over {len(part)} runs")
        _plot_refine(group, Path(args.out_dir) / f"refine_{size}.png", size)
        from multistyle.images import save_image
        from multistyle.sheet import contact_sheet

        save_image(contact_sheet(sheets[size], columns=3), Path(args.out_dir) / f"refine_sheet_{size}.jpg")
    zero = _zero_shot_figures(args, model, loss)
    return {"refine": rows, "refine_curves": [r["curves"] for r in runs], "zero_shot": zero}


def _zero_shot_figures(args: argparse.Namespace, model, loss) -> dict:
    """Zero-shot: seconds of ``stylize(photo, painting=...)`` at 512 px with a painting not seen before (the model
    and loss network warm), and, with ``REFINE_ADDSTYLE=1``, the held-out loss of the zero-shot row against the
    25 s add-style row (leave-one-out, add-style bench's photos at 256 px)."""
    import multistyle
    from multistyle.images import load_image
    from multistyle.refine import style_paintings
    from multistyle.zero_shot import zero_shot_model

    from .add_style import HELD_OUT as ADD_HELD_OUT
    from .add_style import HeldOut, leave_one_out, run_recipe

    size = effort(args, 512, 512, 32)
    photo = load_image(DATA / "content" / HELD_OUT[0], max_size=size)
    multistyle.stylize(photo, painting=DATA / "styles" / "woman_with_hat.jpg", device="cpu")  # warm
    times = []
    for name in ("water_lilies", "edtaonisl", "composition_vii")[: effort(args, 3, 2, 1)]:
        start = time.perf_counter()
        multistyle.stylize(photo, painting=load_image(DATA / "styles" / f"{name}.jpg"), device="cpu")
        times.append(time.perf_counter() - start)
    out = {"size": size, "seconds": times, "median_s": statistics.median(times), "rows": []}
    print(table(f"Zero-shot stylize at {size} px (a new painting each call, warm)", ["median s", "max s"],
                [[out["median_s"], max(times)]]))
    if os.environ.get("REFINE_ADDSTYLE") != "1":
        return out
    for name in REFINE_NEW[: effort(args, 3, 1, 1)]:
        index = model.style_names.index(name)
        painting = style_paintings(model, [index])[0]
        base = leave_one_out(model, index)
        held = HeldOut(loss, painting, [DATA / "content" / f for f in ADD_HELD_OUT], effort(args, 256, 256, 32))
        zero = zero_shot_model(base, painting)
        fast, _ = run_recipe(base, painting, "fast", args)
        row = {"painting": name, "zero_shot": held(zero.net, len(zero.styles) - 1),
               "add_style_fast": held(fast["net"], len(zero.styles) - 1), "fast_s": fast["seconds"]}
        row["ratio"] = row["zero_shot"] / row["add_style_fast"]
        out["rows"].append(row)
    print(table("Zero-shot row vs the 25 s add-style row (held-out loss, leave-one-out)",
                ["painting", "zero-shot", "add-style fast", "fast s", "zero-shot / fast"],
                [[r["painting"], r["zero_shot"], r["add_style_fast"], r["fast_s"], r["ratio"]] for r in out["rows"]]))
    return out


def _plot_refine(runs: list[dict], path: Path, size: int) -> None:
    """Median over runs of loss / default Gatys final loss against seconds / default Gatys seconds."""
    from multistyle.plots import line_plot

    grid = [i / 40 for i in range(49)]  # 0 .. 1.2 × the default run's time
    series: dict[str, list[float]] = {}
    for key, label in (("default", "default Gatys (from the photo, fp32)"), ("today", "today's refine (fp32)"),
                       ("new", "new path (refine, bf16 where native)")):
        values = []
        for x in grid:
            at = []
            for run in runs:
                seen = [v for s, v in run["curves"][key] if s / run["gatys_s"] <= x]
                if seen:
                    at.append(seen[-1] / run["gatys_loss"])
            values.append(statistics.median(at) if len(at) == len(runs) else math.nan)
        series[label] = values
    series["default run's final loss"] = [1.0] * len(grid)
    path.parent.mkdir(parents=True, exist_ok=True)
    line_plot(grid, series, path, title=f"{size} px: loss vs time (median of {len(runs)} runs, relative to default "
              "Gatys)", log_y=True, x_label="seconds / default Gatys run's seconds",
              y_label="loss / default Gatys final loss")
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
