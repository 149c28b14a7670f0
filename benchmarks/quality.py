"""Quality benchmarks (registered into ``python -m benchmarks``): the network's perceptual loss over the Gatys
teacher's on held-out photos (``quality``), and best quality in seconds: how soon ``--best`` (the network, then
refine) reaches the default Gatys run's final loss (``refine``)."""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from pathlib import Path

import torch

from .kit import DATA, HELD_OUT, devices, effort, register, render, table

REFINE_STYLES = ("starry_night", "udnie", "great_wave")  # stored in the model


@register("quality")
def bench_quality(args: argparse.Namespace) -> dict:
    """Per style: the network's perceptual loss over the Gatys teacher's, same weights and size, on a held-out photo
    (every third style: about 14 s of Gatys each on 2 cores). ``--compare`` (model files with the same styles) adds a ratio per model against the same Gatys runs."""
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
    photos = [load_image(DATA / "content" / n, max_size=size).to(device) for n in HELD_OUT[: effort(args, 1, 1, 1)]]
    styles = list(enumerate(model.styles))[:: effort(args, 3, 5, 1)][: effort(args, None, None, 1)]  # 5 of 13
    rows = []
    for index, style in styles:
        style_file = DATA / "styles" / style.source
        if not style_file.is_file():
            continue
        style_size = int(style.training.get("style_size", 256) * size / style.training.get("photo_size", 256))
        style_image = load_image(style_file, max_size=style_size).to(device)
        grams = loss.style_targets([style_image]).blend()
        net_totals, teacher_total = [0.0] * len(nets), 0.0
        for photo in photos:
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
        row.update({f"ratio {name}": total / teacher_total for (name, _), total in zip(others, net_totals[1:])})
        rows.append(row)
    extra = [f"ratio {name}" for name, _ in others]
    print(table(f"Quality: network loss / Gatys teacher loss ({len(photos)} held-out photos, {size} px)",
                ["style", "network loss", "Gatys loss", "ratio", *extra],
                [[r["style"], r["network_loss"], r["gatys_loss"], r["ratio"], *(r[k] for k in extra)] for r in rows]))
    for label, key in zip(labels, ["ratio", *extra]) if rows else ():
        print(f"median ratio {statistics.median(r[key] for r in rows):.3g} ({label}, {len(rows)} styles, {device})")
    print()
    return {"quality": rows}


def loss_curve(photo: torch.Tensor, painting: torch.Tensor, config, loss, start: float) -> tuple:
    """Gatys with ``config`` → (result, [(seconds since ``start``, loss at the final size)...], last entry the
    final image's loss). A progress record holds the loss of the image before that iteration: shifted by one."""
    from multistyle.gatys import stylize_gatys

    points: list[tuple[float, float, int]] = []

    def progress(_i: int, _n: int, record: dict) -> None:
        points.append((time.perf_counter() - start, record["total"], int(record["size"])))

    result = stylize_gatys(photo, [painting], config, loss=loss, device="cpu", progress=progress)
    size = max(photo.shape[-2:])
    curve = [(points[i][0], points[i + 1][1]) for i in range(len(points) - 1) if points[i + 1][2] == size]
    return result, curve + [(time.perf_counter() - start, image_loss(loss, result.image, photo, painting))]


def image_loss(loss, image: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor) -> float:
    with torch.no_grad():
        return float(loss(image, loss.content_targets(photo), loss.style_targets([painting]).blend()).total)


def best_curve(model, index: int, photo: torch.Tensor, painting: torch.Tensor, loss, steps: int) -> list:
    """``--best``'s path, timed from its start: the network (warm), then ``steps`` one-level refine iterations
    (bf16 loss network where native) → [(seconds, loss)...], the network's output first."""
    from multistyle.refine import refine_config
    from multistyle.stylizer import Stylizer

    stylizer = Stylizer(model, "cpu")
    weights = torch.zeros(1, len(model.styles))
    weights[0, index] = 1.0
    stylizer.raw(photo, weights)  # warm
    start = time.perf_counter()
    out = stylizer.raw(photo, weights).cpu()
    first = (time.perf_counter() - start, image_loss(loss, out, photo, painting))
    config = refine_config(model, index, max(photo.shape[-2:]), steps, out, 1.0, precision="auto")
    return [first] + loss_curve(photo, painting, config, loss, start)[1]


@register("refine", headline=False)  # the --best study (~80 s), run when named
def bench_refine(args: argparse.Namespace) -> dict:
    """Best quality in seconds: per stored style at 256 px (``REFINE_STYLES``; MODEL.md has 512 and 1024 px), the default Gatys run (100 L-BFGS iterations over
    the pyramid, from the photo) and ``--best`` (the network, then N refine iterations); figure: the time ``--best``
    takes to reach the default run's final loss over that run's time (same run, the model's loss)."""
    from multistyle.gatys import GatysConfig
    from multistyle.images import load_image
    from multistyle.modelfile import get_model
    from multistyle.refine import model_loss, refine_config, style_paintings

    model = get_model(args.model)
    loss = model_loss(model)
    rows = []
    for size, count in effort(args, ((256, 3),), ((256, 1),), ((32, 1),)):  # (size, styles)
        photo = load_image(DATA / "content" / HELD_OUT[0], max_size=size)
        for name in REFINE_STYLES[:count]:
            index = model.style_names.index(name)
            painting = style_paintings(model, [index])[0]
            cfg = refine_config(model, index, size, 100, photo, 1.0)
            same = {"style_scale": cfg.style_scale, "loss": cfg.loss}
            loss_curve(photo, painting, GatysConfig(size=size, steps=2, min_size=size, **same), loss, 0.0)  # warm
            gatys = loss_curve(photo, painting, GatysConfig(size=size, steps=effort(args, 100, 100, 4), **same),
                               loss, time.perf_counter())[1]
            steps = effort(args, {256: 40, 512: 25}.get(size, 20), 40, 2)
            best = best_curve(model, index, photo, painting, loss, steps)
            gatys_s, target = gatys[-1]
            reach = next((s for s, value in best if value <= target), math.nan)
            rows.append({"size": size, "style": name, "gatys_s": gatys_s, "gatys_loss": target,
                         "network_over_gatys": best[0][1] / target, "best_reach": reach / gatys_s,
                         "best_final": best[-1][1] / target, "best_s": best[-1][0], "steps": steps})
    print(table(f"--best: time to reach the default Gatys run's final loss / that run's time ({HELD_OUT[0]}, cpu, "
                f"{torch.get_num_threads()} threads)",
                ["size", "style", "Gatys s", "network / Gatys loss", "--best reach (x Gatys time)",
                 "--best after N / Gatys loss", "N", "--best s"],
                [[r["size"], r["style"], r["gatys_s"], r["network_over_gatys"], r["best_reach"], r["best_final"],
                  r["steps"], r["best_s"]] for r in rows]))
    return {"refine": rows}


@register("best", headline=False)  # the whole --best against classic Gatys at 512 px (~3 min in the AVX2 class)
def bench_best(args: argparse.Namespace) -> dict:
    """``stylize(..., best=True)`` (the network, then ``BEST_STEPS`` refine iterations) against classic Gatys (the
    ``gatys`` command's defaults: 100 L-BFGS iterations over the pyramid from the photo, fp32) at 512 px, both in
    this process with the loss network warm, interleaved per style: the time ratio (goal ≤ 0.35x) and the
    independent metric's style and content (``painting_metric``; goal: --best's style no worse)."""
    from multistyle import stylize
    from multistyle.gatys import GatysConfig, stylize_gatys
    from multistyle.images import load_image
    from multistyle.modelfile import get_model
    from multistyle.refine import BEST_STEPS

    from .painting_metric import PaintingMetric

    size = effort(args, 512, 512, 48)
    photo = load_image(DATA / "content" / HELD_OUT[0], max_size=size)
    model = get_model(args.model)
    stylize(photo, REFINE_STYLES[0], device="cpu", best=True, seconds=0.5)  # warm: model, VGG, targets
    rows = []
    for name in REFINE_STYLES[: effort(args, 2, 1, 1)]:
        painting = load_image(DATA / "styles" / model.styles[model.style_names.index(name)].source)
        metric = PaintingMetric(painting, size)
        start = time.perf_counter()
        best = stylize(photo, name, device="cpu", best=True)
        best_s = time.perf_counter() - start
        start = time.perf_counter()
        classic = stylize_gatys(photo, [painting], GatysConfig(size=size, steps=effort(args, 100, 100, 4),
                                                               precision="fp32"), device="cpu").image
        gatys_s = time.perf_counter() - start
        scores = {k: metric(img, photo) for k, img in (("best", best), ("gatys", classic))}
        rows.append({"style": name, "size": size, "best_steps": BEST_STEPS, "best_s": best_s, "gatys_s": gatys_s,
                     "ratio": best_s / gatys_s, **{f"{k}_{m}": v[m] for k, v in scores.items()
                                                   for m in ("style", "content")}})
    print(table(f"--best (network + {BEST_STEPS} refine iterations) vs classic Gatys, {size} px, {HELD_OUT[0]} "
                f"(cpu, {torch.get_num_threads()} threads; independent metric: style ↓ content ↓)",
                ["style", "--best s", "Gatys s", "ratio (goal ≤ 0.35)", "--best style", "Gatys style",
                 "--best content", "Gatys content"],
                [[r["style"], r["best_s"], r["gatys_s"], r["ratio"], r["best_style"], r["gatys_style"],
                  r["best_content"], r["gatys_content"]] for r in rows]))
    return {"best": rows}
