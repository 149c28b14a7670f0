"""Hyperparameter sweeps of the Gatys module: a grid over one or two parameters → a labelled contact sheet,
loss curves, and a JSON/CSV table of final losses and times. Resumable: finished cells are skipped."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import MultistyleError

if TYPE_CHECKING:
    import torch

LOSS_PARAMS = {"style-weight": ("style_weight", float), "content-weight": ("content_weight", float),
               "tv-weight": ("tv_weight", float), "pooling": ("pooling", str), "loss-net": ("loss_net", str),
               "content-layers": ("content_layers", lambda v: tuple(v.split("+"))),
               "style-layers": ("style_layers", lambda v: tuple(v.split("+")))}
GATYS_PARAMS = {"noise-ratio": ("noise_ratio", float), "init": ("init", str), "seed": ("seed", int),
                "optimizer": ("optimizer", str), "lr": ("lr", float), "steps": ("steps", int), "size": ("size", int),
                "style-scale": ("style_scale", float), "min-size": ("min_size", int)}
PARAMS = {**LOSS_PARAMS, **GATYS_PARAMS}


def parse_param(text: str) -> tuple[str, list[str]]:
    """``style-weight=1e2,1e3`` → ("style-weight", ["1e2", "1e3"]), with the value types checked."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in PARAMS:
        raise MultistyleError(f"--param must look like NAME=V1,V2 with NAME one of {', '.join(PARAMS)}; got {text!r}")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not items:
        raise MultistyleError(f"--param {name} has no values")
    convert = PARAMS[name][1]
    for v in items:
        try:
            convert(v)
        except ValueError:
            raise MultistyleError(f"--param {name}: {v!r} is not a valid value") from None
    return name, items


def cell_label(cell: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell.items())


def cell_slug(cell: dict[str, str]) -> str:
    return "_".join(f"{k}-{v}" for k, v in cell.items()).replace("/", "-").replace("+", "-")[:120]


def apply_cell(base, cell: dict[str, str]):
    """A GatysConfig with the cell's parameters applied (loss settings go into its LossConfig)."""
    from .loss import LossConfig

    loss_changes = {LOSS_PARAMS[k][0]: LOSS_PARAMS[k][1](v) for k, v in cell.items() if k in LOSS_PARAMS}
    gatys_changes = {GATYS_PARAMS[k][0]: GATYS_PARAMS[k][1](v) for k, v in cell.items() if k in GATYS_PARAMS}
    loss = base.loss
    if loss_changes:
        data = {**loss.to_dict(), **loss_changes}
        if "loss_net" in loss_changes:  # another network: its own default layers unless the cell names some
            for key in ("content_layers", "style_layers"):
                data[key] = loss_changes.get(key)
        loss = LossConfig.from_dict(data)
    return replace(base, loss=loss, **gatys_changes)


def run_sweep(content_path: str, style_path: str | torch.Tensor, params: list[tuple[str, list[str]]], out_dir: str | os.PathLike,
              base, device: str = "auto", progress: Callable[[int, int, str], None] | None = None,
              log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every cell of the grid (skipping finished ones), then write sheet.png, losses.png and results.*."""
    from .gatys import stylize_gatys
    from .images import load_image, save_image
    from .loss import PerceptualLoss
    from .paths import atomic_write

    if not 1 <= len(params) <= 2:
        raise MultistyleError("give one or two --param options")
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    done: dict[str, dict] = {}
    if results_file.is_file():
        try:
            done = {r["slug"]: r for r in json.loads(results_file.read_text())["cells"]}
        except (ValueError, KeyError):
            done = {}
    import torch

    content = load_image(content_path)
    style = style_path if isinstance(style_path, torch.Tensor) else load_image(style_path)
    names = [p for p, _ in params]
    cells = [dict(zip(names, combo)) for combo in itertools.product(*[v for _, v in params])]
    losses: dict[tuple, PerceptualLoss] = {}  # one loss network per distinct setting, reused across cells
    records = []
    for index, cell in enumerate(cells):
        slug = cell_slug(cell)
        image_path = out / "cells" / f"{slug}.png"
        if slug in done and image_path.is_file():
            records.append(done[slug])
            log(f"[{index + 1}/{len(cells)}] {cell_label(cell)}: done before, skipped")
            continue
        config = apply_cell(base, cell)
        key = (config.loss.loss_net, config.loss.pooling, config.loss.all_layers)
        if key not in losses:
            losses[key] = PerceptualLoss(config.loss)
        loss = losses[key]
        loss.config = config.loss  # same network, this cell's weights
        result = stylize_gatys(content, [style], config, loss=loss, device=device,
                               progress=(lambda i, n, rec, c=cell: progress(i, n, cell_label(c))) if progress else None)
        save_image(result.image, image_path)
        last = result.history[-1]
        record = {"slug": slug, "cell": cell, "label": cell_label(cell), "image": str(image_path.relative_to(out)),
                  "seconds": round(result.seconds, 3), "content": last["content"], "style": last["style"],
                  "tv": last["tv"], "total": last["total"],
                  "curve": [{k: h[k] for k in ("content", "style", "tv", "total")} for h in result.history]}
        records.append(record)
        done[slug] = record
        atomic_write(results_file, lambda tmp: Path(tmp).write_text(json.dumps({"params": params, "cells": list(done.values())},
                                                                             indent=1)))
        log(f"[{index + 1}/{len(cells)}] {cell_label(cell)}: {result.seconds:.1f}s, content {last['content']:.4g}, "
            f"style {last['style']:.4g}")
    write_outputs(records, params, out)
    return records


def write_outputs(records: list[dict], params: list[tuple[str, list[str]]], out: Path) -> None:
    """sheet.png (rows: first parameter, columns: second), losses.png, results.csv, results.json (this grid)."""
    from .images import load_image, save_image
    from .paths import atomic_write
    from .plots import line_plot
    from .sheet import contact_sheet

    tiles = [(r["label"], load_image(out / r["image"], max_size=256)) for r in records]
    columns = len(params[1][1]) if len(params) == 2 else min(len(records), 5)
    save_image(contact_sheet(tiles, columns), out / "sheet.png")
    series = {}
    for r in records:
        series[f"{r['label']} style"] = [c["style"] for c in r["curve"]]
        series[f"{r['label']} content"] = [c["content"] for c in r["curve"]]
    steps = list(range(1, max(len(c) for c in series.values()) + 1))
    line_plot(steps, {k: v + [float("nan")] * (len(steps) - len(v)) for k, v in series.items()}, out / "losses.png",
              title="content and style loss per run", log_y=True, size=(1000, 520), x_label="iteration",
              y_label="loss (weighted)")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*[p for p, _ in params], "content", "style", "tv", "total", "seconds", "image"])
    for r in records:
        writer.writerow([*[r["cell"][p] for p, _ in params], r["content"], r["style"], r["tv"], r["total"],
                         r["seconds"], r["image"]])
    atomic_write(out / "results.csv", lambda tmp: Path(tmp).write_text(buffer.getvalue()))
