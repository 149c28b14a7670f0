"""Teach an existing model a new style by training only that style's γ/β rows (every conv weight frozen).

Old styles stay bit-identical: their rows never receive a gradient (masked), and are checked after training.
The recipe (``--quality fast``, the default; MODEL.md, "Adding a style"): the new rows start as the NNLS blend of
the existing rows that best matches the painting's Gram statistics (:mod:`.style_init`), then full-batch L-BFGS on
a few thousand parameters — the packaged photos' VGG content features computed once per resolution, most
evaluations at half size, the rest at full size — and the best point seen is kept. ``--quality legacy`` is the
recipe before that (mean start, 200 Adam steps), kept for comparison.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from filelock import FileLock, Timeout

from ..errors import ModelFileError, StyleError
from ..images import list_images, load_image, resize_long_side
from ..loss import PerceptualLoss, StyleTargets
from ..modelfile import ModelFile, StyleInfo, load_model, make_painting, make_thumbnail, save_model
from ..nets import StyleBankNet
from ..progress import ProgressFn
from .data import ContentImages
from .style_init import blend_weights, init_rows

INITS = ("blend", "mean")
OPTIMIZERS = ("lbfgs", "adam")


@dataclass
class AddStyleConfig:
    """Settings of one add-style run (:data:`PRESETS` holds the measured recipes; the defaults are ``fast``).
    ``steps`` are optimiser steps (L-BFGS: loss evaluations over every crop), ``low_res_share`` of them at
    ``size // 2``, the rest at ``size``. ``time_budget`` (seconds from the start): stop early, keep the best."""

    steps: int = 20
    size: int = 256
    low_res_share: float = 0.85
    init: str = "blend"
    optimizer: str = "lbfgs"
    batch: int = 6  # Adam: crops per step; L-BFGS: crops per forward pass (every evaluation sees every crop)
    lr: float | None = None  # None: 1 for L-BFGS (its line search scales it), 0.03 for Adam
    crops: int = 16  # content photos used at most (one centre crop each; Adam draws with replacement)
    time_budget: float | None = None
    style_size: int | None = None  # None: what the model was trained with
    seed: int = 0

    def __post_init__(self) -> None:
        for name, lo, hi in (("steps", 1, 1_000_000), ("size", 16, 4096), ("batch", 1, 1024), ("crops", 1, 10_000)):
            value = getattr(self, name)
            if not (isinstance(value, int) and lo <= value <= hi):
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
        if self.size % 8:
            raise ValueError(f"size must be a multiple of 8, not {self.size}")
        if self.lr is not None and not 0 < self.lr < 10:
            raise ValueError(f"lr must be in (0, 10), not {self.lr}")
        if not 0 <= self.low_res_share <= 1:
            raise ValueError(f"low-res share must be between 0 and 1, not {self.low_res_share}")
        if self.init not in INITS or self.optimizer not in OPTIMIZERS:
            raise ValueError(f"init must be one of {INITS} and optimizer one of {OPTIMIZERS}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time budget must be > 0 seconds, not {self.time_budget}")

    def levels(self) -> list[tuple[int, int]]:
        """(crop size, steps) of each stage, coarse to fine; stages without steps are left out."""
        low = round(self.steps * self.low_res_share)
        return [(s, n) for s, n in ((self.size // 2, low), (self.size, self.steps - low)) if n > 0]


PRESETS: dict[str, AddStyleConfig] = {
    "fast": AddStyleConfig(time_budget=28.0),  # 17 evaluations at 128 px, 3 at 256 px; ~30 s end to end on 2 cores
    "best": AddStyleConfig(steps=40, low_res_share=0.75),  # 30 at 128 px, 10 at 256 px; about twice as long
    "legacy": AddStyleConfig(steps=200, low_res_share=0.5, init="mean", optimizer="adam", batch=4, lr=0.03),
}


def preset(quality: str = "fast", **changes) -> AddStyleConfig:
    """The :data:`PRESETS` recipe ``quality`` with some settings changed (``None`` values keep the preset's)."""
    if quality not in PRESETS:
        raise ValueError(f"quality must be one of {', '.join(PRESETS)}, not {quality!r}")
    return replace(PRESETS[quality], **{k: v for k, v in changes.items() if v is not None})


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
                progress: ProgressFn | None = None, loss_fn: PerceptualLoss | None = None,
                on_step: Callable[[StyleBankNet, int, dict[str, float]], None] | None = None) -> ModelFile:
    """A new :class:`ModelFile` with one more style learned from the painting ``style`` ([1, 3, H, W] in [0, 1]) on
    the photos ``content``; nothing is written anywhere (the demo keeps it in the visitor's session). ``model``'s
    own network is not modified: the new one is a copy, and every existing style's rows stay bit-identical.
    ``loss_fn``: the model's perceptual loss if the caller has it loaded (else it is built from ``model.loss``).
    ``on_step(net, index, record)`` after every step sees the network being trained (for time-to-quality curves:
    copy ``net``'s rows ``index``; do not modify them)."""
    from ..refine import model_loss

    config = config or AddStyleConfig()
    device = torch.device(device)
    name = sanitize_style_name(name)
    if name in model.style_names:
        raise StyleError(f"the model already has a style named {name!r}; pick another --name")
    start = time.perf_counter()
    net = copy.deepcopy(model.net).to(device)
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    style_size = config.style_size or int(model.styles[0].training.get("style_size", 256))
    loss_fn = loss_fn or model_loss(model, device)
    style_small = resize_long_side(style, style_size)
    targets = loss_fn.style_targets([style_small.to(device)])
    weights = blend_weights(model, loss_fn, style_small) if config.init == "blend" else None
    [new] = net.append_styles(1)
    if weights is not None:
        init_rows(net, new, weights)
    tables = net.freeze_except_styles([new])
    net.train()
    photos = _content_crops(content, config).to(device)
    report = progress
    if on_step is not None:
        def report(step: int, total: int, record: dict[str, float]) -> None:
            on_step(net, new, record)
            if progress is not None:
                progress(step, total, record)
    record = _fine_tune(net, tables, new, loss_fn, photos, targets, config, start, report)
    for p in net.parameters():
        p.requires_grad_(False)
    net.eval()
    _check_old_styles(net, before)
    training = {"added_by": "add_style", "steps": config.steps, "size": config.size, "style_size": style_size,
                "optimizer": config.optimizer, "init": config.init, "seconds": round(time.perf_counter() - start, 1),
                "final": {k: record[k] for k in ("content", "style", "tv", "total") if k in record}}
    if weights is not None:
        training["blend"] = {model.style_names[i]: round(float(w), 4) for i, w in enumerate(weights) if w > 0}
    info = StyleInfo(name, source, make_thumbnail(style), training, painting=make_painting(style_small))
    return ModelFile(net.cpu(), model.styles + [info], model.loss, model.extra)


def _content_crops(content: Sequence[str | os.PathLike], config: AddStyleConfig) -> torch.Tensor:
    """[N, 3, size, size]: the centre square of up to ``crops`` photos (a seeded pick), at the finest size."""
    dataset = ContentImages(list_images(content), config.size)
    generator = torch.Generator().manual_seed(config.seed)
    if config.optimizer == "adam" and len(dataset) < config.crops:  # the legacy recipe: picks with replacement
        picks = torch.randint(len(dataset), (config.crops,), generator=generator)
    else:
        picks = torch.randperm(len(dataset), generator=generator)[: config.crops]
    return torch.stack([resize_long_side(dataset[int(i)][None], config.size)[0] for i in picks])


def _fine_tune(net, tables, new: int, loss_fn: PerceptualLoss, photos: torch.Tensor, targets: StyleTargets,
               config: AddStyleConfig, start: float, progress: ProgressFn | None) -> dict[str, float]:
    """Every stage of ``config.levels()`` with its optimiser; returns the last step's record. The content features
    of each stage's crops are computed once."""
    done, record = 0, {}
    for size, steps in config.levels():
        crops = photos if size == config.size else resize_long_side(photos, size)
        crops = crops.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            content = loss_fn.content_targets(crops)
        stage = _lbfgs_stage if config.optimizer == "lbfgs" else _adam_stage
        done, record = stage(net, tables, new, loss_fn, crops, content, targets, config, steps, done, start,
                             progress)
        if _over_budget(config, start):
            break
    return record


def _over_budget(config: AddStyleConfig, start: float) -> bool:
    return config.time_budget is not None and time.perf_counter() - start > config.time_budget


def _adam_stage(net, tables, new, loss_fn, crops, content, targets, config, steps, done, start, progress):
    """``steps`` Adam steps on batches of ``config.batch`` crops taken in turn (the legacy recipe)."""
    batch = min(config.batch, len(crops))
    labels, grams = torch.full((batch,), new, device=crops.device), targets.select(torch.zeros(batch, dtype=torch.long))
    optimizer = torch.optim.Adam(tables, lr=config.lr or 0.03)
    record: dict[str, float] = {}
    for _ in range(steps):
        if _over_budget(config, start):
            break
        idx = torch.arange(done * batch, (done + 1) * batch) % len(crops)
        terms = loss_fn(net(crops[idx], labels), {k: v[idx] for k, v in content.items()}, grams)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        done += 1
        record = {"step": done, "size": crops.shape[-1], **terms.item(), "seconds": time.perf_counter() - start}
        if progress is not None:
            progress(done, config.steps, record)
    return done, record


class _StopStage(Exception):
    """Raised inside the L-BFGS closure to end a stage: its evaluations or the time budget are used up (the line
    search may otherwise evaluate past ``max_eval``)."""


def _lbfgs_stage(net, tables, new, loss_fn, crops, content, targets, config, steps, done, start, progress):
    """Full-batch L-BFGS (strong-Wolfe line search) with at most ``steps`` loss evaluations; every evaluation sees
    every crop (in chunks of ``config.batch``), so the objective is deterministic. Ends on the best point seen."""
    chunk = min(config.batch, len(crops))
    labels, grams = torch.full((chunk,), new, device=crops.device), targets.select(torch.zeros(chunk, dtype=torch.long))
    optimizer = torch.optim.LBFGS(tables, lr=config.lr or 1.0, max_iter=steps, max_eval=steps, history_size=10,
                                  line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
    best: dict = {"total": math.inf, "rows": None}
    state = {"done": done, "record": {}}

    def closure() -> torch.Tensor:
        if state["done"] - done >= steps or _over_budget(config, start):
            raise _StopStage
        optimizer.zero_grad(set_to_none=True)
        sums = {"content": 0.0, "style": 0.0, "tv": 0.0, "total": 0.0}
        for i in range(0, len(crops), chunk):
            n = min(chunk, len(crops) - i)
            terms = loss_fn(net(crops[i:i + n], labels[:n]), {k: v[i:i + n] for k, v in content.items()}, grams)
            (terms.total * (n / len(crops))).backward()
            for k, v in terms.item().items():
                sums[k] += v * n / len(crops)
        if sums["total"] < best["total"]:
            best["total"], best["rows"] = sums["total"], [p.detach()[new].clone() for p in tables]
        state["done"] += 1
        state["record"] = {"step": state["done"], "size": crops.shape[-1], **sums,
                           "seconds": time.perf_counter() - start}
        if progress is not None:
            progress(state["done"], config.steps, state["record"])
        return torch.tensor(sums["total"])

    try:
        optimizer.step(closure)
    except _StopStage:
        pass
    if best["rows"] is not None:
        with torch.no_grad():
            for p, row in zip(tables, best["rows"]):
                p[new] = row
    return state["done"], state["record"]


def _check_old_styles(net, before: dict[str, torch.Tensor]) -> None:
    """Every conv weight and every existing style's rows exactly as they were (a guard on the masking)."""
    after = net.state_dict()
    for key, old in before.items():
        now = after[key][: old.shape[0]] if key.endswith((".gamma", ".beta")) else after[key]
        if not torch.equal(now, old):
            raise RuntimeError(f"internal error: {key} of an existing style changed while adding a style")
