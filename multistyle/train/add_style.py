"""Teach an existing model a new style by training only that style's γ/β rows (every conv weight frozen).

Old styles stay bit-identical: their rows never receive a gradient (masked) and are checked after training.
Fast because only a few thousand parameters learn, the content features of a fixed crop set are computed once,
the learning rate is high, and the first half of the steps runs at half resolution.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from filelock import FileLock, Timeout

from ..errors import ModelFileError, StyleError
from ..images import list_images, load_image, resize_long_side
from ..loss import LossConfig, PerceptualLoss
from ..modelfile import (
    ModelFile,
    StyleInfo,
    load_model,
    make_painting,
    make_thumbnail,
    save_model,
)
from ..progress import ProgressFn
from .data import ContentImages


@dataclass
class AddStyleConfig:
    steps: int = 200
    size: int = 256
    batch: int = 4
    lr: float = 0.03
    crops: int = 16  # fixed content crops (their VGG features are computed once per resolution)
    style_size: int | None = None  # None: what the model was trained with
    seed: int = 0

    def __post_init__(self) -> None:
        for name, lo, hi in (("steps", 1, 1_000_000), ("size", 16, 4096), ("batch", 1, 1024), ("crops", 1, 10_000)):
            value = getattr(self, name)
            if not (isinstance(value, int) and lo <= value <= hi):
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
        if self.size % 8:
            raise ValueError(f"size must be a multiple of 8, not {self.size}")
        if not 0 < self.lr < 10:
            raise ValueError(f"lr must be in (0, 10), not {self.lr}")


def sanitize_style_name(name: str) -> str:
    """A style name safe in file names and menus: letters, digits, '_' and '-' only, ≤ 40 characters."""
    clean = "".join(c if c.isalnum() or c in "_-" else "_" for c in name.strip().lower())[:40].strip("_")
    if not clean:
        raise StyleError(f"{name!r} is not a usable style name; use letters, digits, '_' or '-'")
    return clean


def model_lock(path: str | os.PathLike) -> FileLock:
    """An exclusive lock on a model file, taken without waiting."""
    return FileLock(str(path) + ".lock", timeout=0)


def add_style(style_image: str | os.PathLike, model_path: str | os.PathLike, out: str | os.PathLike,
              content: Sequence[str | os.PathLike], name: str | None = None,
              config: AddStyleConfig | None = None, device: torch.device | str = "cpu",
              progress: ProgressFn | None = None) -> ModelFile:
    """Append one style to the model at ``model_path``, train only its rows, write the result to ``out``."""
    config = config or AddStyleConfig()
    device = torch.device(device)
    name = sanitize_style_name(name or Path(style_image).stem)
    style = load_image(style_image)  # fail on a bad image before touching any model file
    lock = model_lock(out)
    try:
        lock.acquire()
    except Timeout:
        raise ModelFileError(f"another add_style is already writing {out}; wait for it to finish") from None
    try:
        model, _ = load_model(model_path, device)
        trained = learn_style(model, style, content, name, Path(style_image).name, config, device, progress)
        save_model(trained, out)
        return trained
    finally:
        lock.release()


def learn_style(model: ModelFile, style: torch.Tensor, content: Sequence[str | os.PathLike], name: str,
                source: str = "", config: AddStyleConfig | None = None, device: torch.device | str = "cpu",
                progress: ProgressFn | None = None) -> ModelFile:
    """A new :class:`ModelFile` with one more style learned from the painting ``style`` ([1, 3, H, W] in [0, 1]) on
    the photos ``content``; nothing is written anywhere (the demo keeps it in the visitor's session). ``model``'s
    own network is not modified: the new one is a copy, and every existing style's rows stay bit-identical."""
    config = config or AddStyleConfig()
    device = torch.device(device)
    name = sanitize_style_name(name)
    if name in model.style_names:
        raise StyleError(f"the model already has a style named {name!r}; pick another --name")
    net = copy.deepcopy(model.net).to(device)
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    loss_cfg = LossConfig.from_dict(model.loss) if model.loss else LossConfig()
    style_size = config.style_size or int(model.styles[0].training.get("style_size", 256))
    loss_fn = PerceptualLoss(loss_cfg).to(device)
    style_small = resize_long_side(style, style_size)
    targets = loss_fn.style_targets([style_small.to(device)])
    [new] = net.append_styles(1)
    tables = net.freeze_except_styles([new])
    net.train()
    optimizer = torch.optim.Adam(tables, lr=config.lr)
    files = list_images(content)
    dataset = ContentImages(files, config.size)
    generator = torch.Generator().manual_seed(config.seed)
    picks = torch.randint(len(dataset), (config.crops,), generator=generator) if len(dataset) < config.crops \
        else torch.randperm(len(dataset), generator=generator)[:config.crops]
    full = torch.stack([resize_long_side(dataset[int(i)][None], config.size)[0] for i in picks]).to(device)
    levels = [(config.size // 2, config.steps // 2), (config.size, config.steps - config.steps // 2)]
    labels_template = torch.full((config.batch,), new, device=device)
    start = time.perf_counter()
    step = 0
    record: dict[str, float] = {}
    for size, steps in levels:
        if steps == 0:
            continue
        crops = full if size == config.size else resize_long_side(full, size)
        with torch.no_grad():
            content_feats = loss_fn.content_targets(crops)
        grams = targets.select(torch.zeros(config.batch, dtype=torch.long))
        for _ in range(steps):
            idx = torch.arange(step * config.batch, (step + 1) * config.batch) % len(crops)
            feats = {k: v[idx] for k, v in content_feats.items()}
            output = net(crops[idx], labels_template[: len(idx)])
            terms = loss_fn(output, feats, grams)
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            optimizer.step()
            step += 1
            record = {"step": step, "size": size, **terms.item(), "seconds": time.perf_counter() - start}
            if progress is not None:
                progress(step, config.steps, record)
    for p in net.parameters():
        p.requires_grad_(False)
    net.eval()
    after = net.state_dict()
    for key, old in before.items():
        now = after[key][: old.shape[0]] if key.endswith((".gamma", ".beta")) else after[key]
        if not torch.equal(now, old):
            raise RuntimeError(f"internal error: {key} of an existing style changed while adding a style")
    info = StyleInfo(name, source, make_thumbnail(style),
                     {"added_by": "add_style", "steps": config.steps, "size": config.size, "style_size": style_size,
                      "seconds": round(record.get("seconds", 0.0), 1),
                      "final": {k: record[k] for k in ("content", "style", "tv", "total") if k in record}},
                     painting=make_painting(style_small))
    return ModelFile(net.cpu(), model.styles + [info], model.loss, model.extra)
