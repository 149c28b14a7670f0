"""Adding a style (issue #22): the recipes of ``multistyle add-style --quality`` in one run, leave-one-out on the
packaged model (a style is removed and its painting learned again, so its jointly trained row is the reference):
seconds end to end, the new row's perceptual loss on photos it never trained on — the three held-out content
photos, and 50 BSDS500 photos (``DATA/train``, read at bench time, never shipped; the packaged conv weights were
trained on them, no row learned here ever sees them) — its ratio to the legacy 200-step recipe, to the jointly
trained row and to the Gatys teacher, and a time-to-quality chart (held-out loss against seconds, every step's rows
evaluated after the run)."""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from .kit import DATA, effort, register, render, table

PAINTINGS = ("starry_night", "mondrian_tableau_2", "the_scream")  # near the bank, far from it, in between
HELD_OUT = ("chelsea_cat.jpg", "coffee.jpg", "tubingen.jpg")  # DATA/content photos not among the packaged ones
RECIPES = ("legacy", "fast", "best")


def leave_one_out(model, index: int):
    """The model without style ``index`` (a deep copy)."""
    out = copy.deepcopy(model)
    out.net.remove_style(index)
    out.styles = [s for i, s in enumerate(model.styles) if i != index]
    return out


def bsds_files(count: int) -> list[Path]:
    """``count`` of the BSDS500 photos in ``DATA/train`` (evenly spaced in sorted order; fewer if fewer are there):
    a wider held-out set than the three content photos, whose mean one photo can sway."""
    files = sorted((DATA / "train").glob("*.jpg"))
    return files[:: max(1, len(files) // count)][:count] if count else []


class HeldOut:
    """The model's perceptual loss of a style row on the photos ``files`` at ``size`` px (mean total)."""

    def __init__(self, loss, painting: torch.Tensor, files: list[Path], size: int) -> None:
        from multistyle.images import load_image

        self.loss = loss
        self.grams = loss.style_targets([painting]).blend()
        self.photos = [load_image(f, max_size=size) for f in files]
        self.feats = [loss.content_targets(p) for p in self.photos]

    @torch.no_grad()
    def __call__(self, net, index: int) -> float:
        total = 0.0
        for photo, feats in zip(self.photos, self.feats):
            total += float(self.loss(render(net, index, photo), feats, self.grams).total)
        return total / len(self.photos)


def run_recipe(model, painting: torch.Tensor, quality: str, args: argparse.Namespace) -> tuple[dict, list]:
    """One add-style run from a cold loss network (end-to-end seconds) → (row, [(seconds, rows snapshot)])."""
    from multistyle.modelfile import PACKAGED_CONTENT
    from multistyle.refine import _loss
    from multistyle.train.add_style import learn_style, preset

    steps = effort(args, None, {"legacy": 40, "fast": 8, "best": 10}[quality], 2)
    config = preset(quality, steps=steps, size=effort(args, None, None, 64))
    snapshots: list[tuple[float, list[torch.Tensor]]] = []
    _loss.cache_clear()  # end to end: the VGG load counts, as for a user's first add-style
    start = time.perf_counter()

    def on_step(net, index, record) -> None:
        snapshots.append((time.perf_counter() - start, [p.detach()[index].clone() for p in net.style_parameters()]))

    learned = learn_style(model, painting, [PACKAGED_CONTENT], "new", "", config, "cpu", on_step=on_step)
    return {"seconds": time.perf_counter() - start, "steps": len(snapshots), "net": learned.net}, snapshots


def curve(net, snapshots: list, held_out: HeldOut, every: int) -> tuple[list[float], list[float]]:
    """Held-out loss of the new row after each ``every``-th step (the rows put back in turn)."""
    net = copy.deepcopy(net)
    index, xs, ys = net.num_styles - 1, [], []
    for k, (seconds, rows) in enumerate(snapshots):
        if k % every and k != len(snapshots) - 1:
            continue
        with torch.no_grad():
            for p, row in zip(net.style_parameters(), rows):
                p[index] = row
        xs.append(seconds)
        ys.append(held_out(net, index))
    return xs, ys


def gatys_loss(loss, painting: torch.Tensor, held_out: HeldOut, steps: int) -> float:
    """The Gatys teacher's loss on the held-out photos (the per-image optimum the network is compared with)."""
    from multistyle.gatys import GatysConfig, stylize_gatys

    total = 0.0
    for photo, feats in zip(held_out.photos, held_out.feats):
        size = max(photo.shape[-2:])
        config = GatysConfig(size=size, steps=steps, style_scale=max(painting.shape[-2:]) / size, loss=loss.config)
        image = stylize_gatys(photo, [painting], config, loss=loss, device="cpu").image
        with torch.no_grad():
            total += float(loss(image, feats, held_out.grams).total)
    return total / len(held_out.photos)


@register("add-style", headline=False)  # the recipe study against the 378 s legacy recipe: ~25 min
def bench_add_style(args: argparse.Namespace) -> dict:
    """Leave-one-out add-style, legacy vs fast vs best on three paintings, interleaved per painting."""
    from multistyle.images import load_image
    from multistyle.modelfile import PACKAGED_MODEL, load_model
    from multistyle.refine import model_loss

    model, _ = load_model(PACKAGED_MODEL)
    loss = model_loss(model, "cpu")
    size, photos = effort(args, 256, 256, 64), effort(args, 3, 2, 1)
    wider = bsds_files(effort(args, 50, 20, 2))
    rows, curves, tiles = [], {}, []
    for name in effort(args, PAINTINGS, PAINTINGS[:2], PAINTINGS[:1]):
        index = model.style_names.index(name)
        base = leave_one_out(model, index)
        painting = load_image(DATA / "styles" / f"{name}.jpg", max_size=256)
        held_out = HeldOut(loss, painting, [DATA / "content" / f for f in HELD_OUT[:photos]], size)
        bsds = HeldOut(loss, painting, wider, size) if wider else None
        joint = held_out(model.net, index)
        teacher = gatys_loss(loss, painting, held_out, effort(args, 100, 30, 2))
        photo = held_out.photos[-1]
        tiles += [(name, painting), (f"joint row {joint:.3g}", render(model.net, index, photo))]
        for quality in RECIPES:
            row, snapshots = run_recipe(base, painting, quality, args)
            learned = row.pop("net")
            new = held_out(learned, model.net.num_styles - 1)
            row["bsds"] = bsds(learned, model.net.num_styles - 1) if bsds else float("nan")
            row["pooled"] = (photos * new + len(wider) * row["bsds"]) / (photos + len(wider)) if bsds else new
            label = f"{quality} {row['seconds']:.0f}s {new:.3g}"
            tiles.append((label, render(learned, model.net.num_styles - 1, photo)))
            rows.append({"painting": name, "recipe": quality, **row, "held_out": new, "joint": joint,
                         "gatys": teacher, "vs_joint": new / joint, "vs_gatys": new / teacher})
            curves[f"{name} {quality}"] = (snapshots, base, held_out)
        legacy = next(r for r in rows if r["painting"] == name and r["recipe"] == "legacy")
        for r in rows:
            if r["painting"] == name:
                r["vs_legacy"] = r["held_out"] / legacy["held_out"]
                r["bsds_vs_legacy"] = r["bsds"] / legacy["bsds"]
                r["pooled_vs_legacy"] = r["pooled"] / legacy["pooled"]
    print(table(f"add-style, leave-one-out on the packaged v2 (held-out loss at {size} px on {photos} content photos "
                f"and on {len(wider)} BSDS500 photos; seconds end to end from a cold loss network, 2 CPU threads)",
                ["painting", "recipe", "steps", "seconds", f"held-out ({photos})", "/ legacy",
                 f"BSDS500 ({len(wider)})", "/ legacy", f"all {photos + len(wider)} / legacy", "/ joint row",
                 "/ Gatys"],
                [[r["painting"], r["recipe"], r["steps"], r["seconds"], r["held_out"], r["vs_legacy"], r["bsds"],
                  r["bsds_vs_legacy"], r["pooled_vs_legacy"], r["vs_joint"], r["vs_gatys"]] for r in rows]))
    for quality in RECIPES:
        mine = [r for r in rows if r["recipe"] == quality]
        print(f"{quality}: median {statistics.median(r['seconds'] for r in mine):.1f} s; loss / legacy on the "
              f"{photos} held-out photos: median {statistics.median(r['vs_legacy'] for r in mine):.3f}, worst "
              f"{max(r['vs_legacy'] for r in mine):.3f}; on the {len(wider)} BSDS500 photos: median "
              f"{statistics.median(r['bsds_vs_legacy'] for r in mine):.3f}, worst "
              f"{max(r['bsds_vs_legacy'] for r in mine):.3f}; on all {photos + len(wider)}: worst "
              f"{max(r['pooled_vs_legacy'] for r in mine):.3f}")
    print()
    from multistyle.images import save_image
    from multistyle.sheet import contact_sheet

    sheet = Path(args.out_dir) / "add_style_sheet.jpg"
    save_image(contact_sheet(tiles, columns=2 + len(RECIPES)), sheet)
    print(f"contact sheet (painting, jointly trained row, then each recipe on a held-out photo) -> {sheet}\n")
    return {"add_style": rows, "add_style_curves": _write_curves(args, curves)}


def _write_curves(args: argparse.Namespace, curves: dict) -> dict:
    """Evaluate every run's snapshots on its painting's held-out photos and chart them
    (``--out-dir``/add_style_curve.png)."""
    from multistyle.plots import curves_plot

    out: dict[str, tuple[list[float], list[float]]] = {}
    for label, (snapshots, base, held_out) in curves.items():
        net = copy.deepcopy(base.net)
        net.append_styles(1)
        out[label] = curve(net, snapshots, held_out, every=max(1, len(snapshots) // 40))  # ~40 points a curve
    path = Path(args.out_dir) / "add_style_curve.png"
    curves_plot(out, path, "add-style: held-out loss of the new row against seconds", log_y=True,
                x_label="seconds (end to end, 2 CPU threads)", y_label="held-out perceptual loss")
    print(f"time-to-quality chart -> {path}\n")
    return {k: {"seconds": xs, "loss": ys} for k, (xs, ys) in out.items()}
