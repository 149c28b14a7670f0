"""Teach an existing model a new style by training only that style's γ/β rows (every conv weight frozen).

Old styles stay bit-identical: their rows never receive a gradient (masked), and are checked after training.
The recipe (``--quality fast``, the default; MODEL.md, "Adding a style"): the new rows start as the NNLS blend of
the existing rows that best matches the painting's Gram statistics (:mod:`.style_init`), then full-batch L-BFGS on
a few thousand parameters (steps scaled by how much each entry varies between the existing styles) over the
packaged photos, whole, at the scale styles are used at — their VGG content features computed once per
resolution, half the evaluations at half size, bf16 where the CPU has it — and the best point seen is kept.
``--quality legacy`` is the recipe before that (mean start, 200 Adam steps), kept for comparison.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import kornia
import torch
from filelock import FileLock, Timeout
from PIL import Image, ImageOps

from ..errors import ModelFileError, StyleError
from ..images import list_images, load_image, open_rgb, pil_to_tensor, resize_long_side
from ..loss import PerceptualLoss, StyleTargets
from ..modelfile import ModelFile, StyleInfo, load_model, make_painting, make_thumbnail, save_model
from ..nets import StyleBankNet
from ..progress import ProgressFn
from .data import ContentImages
from .style_init import blend_weights, init_rows

INITS = ("blend", "mean")
OPTIMIZERS = ("lbfgs", "adam")
FRAMES = ("whole", "square")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class AddStyleConfig:
    """Settings of one add-style run (:data:`PRESETS` holds the measured recipes; the defaults are ``fast``'s).
    ``steps`` are optimiser steps (L-BFGS: loss evaluations over every photo), ``low_res_share`` of them at
    ``size // 2``, the rest at ``size``. ``time_budget`` (seconds from the start): stop early, keep the best."""

    steps: int = 40
    size: int = 256
    low_res_share: float = 0.5
    init: str = "blend"
    optimizer: str = "lbfgs"
    batch: int = 6  # Adam: photos per step; L-BFGS: photos per forward pass (every evaluation sees every photo)
    lr: float | None = None  # None: 1 for L-BFGS (its line search scales it), 0.03 for Adam
    crops: int = 16  # content photos used at most (a seeded pick; Adam draws squares with replacement)
    time_budget: float | None = None
    style_size: int | None = None  # None: what the model was trained with
    seed: int = 0
    frame: str = "whole"  # whole: each photo fitted to 3:2 (2:3) with long side ``size``; square: its centre square
    precision: str = "auto"  # auto: bf16 autocast where the CPU computes bf16 natively (AVX-512 BF16, AMX), else fp32
    precondition: bool = True  # L-BFGS steps scaled per entry by its spread over the existing styles
    history: int = 30  # L-BFGS history (pairs kept)

    def __post_init__(self) -> None:
        for name, lo, hi in (("steps", 1, 1_000_000), ("size", 16, 4096), ("batch", 1, 1024), ("crops", 1, 10_000),
                             ("history", 1, 1000)):
            value = getattr(self, name)
            if not (isinstance(value, int) and lo <= value <= hi):
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
        if self.size % 8:
            raise ValueError(f"size must be a multiple of 8, not {self.size}")
        if self.lr is not None and not 0 < self.lr < 10:
            raise ValueError(f"lr must be in (0, 10), not {self.lr}")
        if not 0 <= self.low_res_share <= 1:
            raise ValueError(f"low-res share must be between 0 and 1, not {self.low_res_share}")
        for name, choices in (("init", INITS), ("optimizer", OPTIMIZERS), ("frame", FRAMES),
                              ("precision", PRECISIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time budget must be > 0 seconds, not {self.time_budget}")

    def levels(self) -> list[tuple[int, int]]:
        """(crop size, steps) of each stage, coarse to fine; stages without steps are left out."""
        low = round(self.steps * self.low_res_share)
        return [(s, n) for s, n in ((self.size // 2, low), (self.size, self.steps - low)) if n > 0]


PRESETS: dict[str, AddStyleConfig] = {
    "fast": AddStyleConfig(time_budget=25.0),  # 20 at 128 px, then up to 20 at 256 px; the whole command ≤ 30 s
    "best": AddStyleConfig(steps=80, low_res_share=0.3),  # 24 at 128 px, 56 at 256 px; about three times as long
    "legacy": AddStyleConfig(steps=200, low_res_share=0.5, init="mean", optimizer="adam", batch=4, lr=0.03,
                             frame="square", precision="fp32"),
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
    photos = [g.to(device) for g in _content_photos(content, config)]
    report = progress
    if on_step is not None:
        def report(step: int, total: int, record: dict[str, float]) -> None:
            on_step(net, new, record)
            if progress is not None:
                progress(step, total, record)
    bf16 = uses_bf16(config, device)
    record = _fine_tune(net, tables, new, loss_fn, photos, targets, config, bf16, start, report)
    for p in net.parameters():
        p.requires_grad_(False)
    net.eval()
    _check_old_styles(net, before)
    training = {"added_by": "add_style", "steps": config.steps, "size": config.size, "style_size": style_size,
                "optimizer": config.optimizer, "init": config.init, "frame": config.frame,
                "precision": "bf16" if bf16 else "fp32",
                "seconds": round(time.perf_counter() - start, 1),
                "final": {k: record[k] for k in ("content", "style", "tv", "total") if k in record}}
    if weights is not None:
        training["blend"] = {model.style_names[i]: round(float(w), 4) for i, w in enumerate(weights) if w > 0}
    info = StyleInfo(name, source, make_thumbnail(style), training, painting=make_painting(style_small))
    return ModelFile(net.cpu(), model.styles + [info], model.loss, model.extra)


def _content_photos(content: Sequence[str | os.PathLike], config: AddStyleConfig) -> list[torch.Tensor]:
    """Up to ``config.crops`` photos (a seeded pick) at the finest size, grouped by shape into [N, 3, H, W] batches.
    ``frame="whole"``: each photo fitted to 3:2 (or 2:3 when portrait) with its long side at ``size`` (the scale
    a style is judged and used at); ``"square"``: the centre square (the legacy recipe, which picks with
    replacement when there are fewer photos than ``crops``)."""
    files = list_images(content)
    generator = torch.Generator().manual_seed(config.seed)
    if config.frame == "square":
        dataset = ContentImages(files, config.size)
        if config.optimizer == "adam" and len(dataset) < config.crops:
            picks = torch.randint(len(dataset), (config.crops,), generator=generator)
        else:
            picks = torch.randperm(len(dataset), generator=generator)[: config.crops]
        return [torch.stack([resize_long_side(dataset[int(i)][None], config.size)[0] for i in picks])]
    short = max(16, round(config.size * 2 / 3 / 8) * 8)  # VGG's deepest style layer needs 16 px
    groups: dict[tuple[int, int], list[torch.Tensor]] = {}
    for i in torch.randperm(len(files), generator=generator)[: config.crops]:
        img = open_rgb(files[int(i)])
        shape = (config.size, short) if img.width >= img.height else (short, config.size)
        groups.setdefault(shape, []).append(pil_to_tensor(ImageOps.fit(img, shape, Image.Resampling.BICUBIC))[0])
    return [torch.stack(g) for g in groups.values()]


def uses_bf16(config: AddStyleConfig, device: torch.device) -> bool:
    """Whether the loss evaluations run under bf16 autocast: ``precision="auto"`` picks it where it is native
    (CPUs with AVX-512 BF16 or AMX: 1.7× faster per evaluation on a 2-core Zen 4, same held-out loss; MODEL.md)."""
    if config.precision != "auto":
        return config.precision == "bf16"
    return (device.type == "cpu" and torch.backends.mkldnn.is_available()
            and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))


@dataclass
class _Stage:
    """One resolution of the run: the photos in shape groups, their content features, the style's Grams."""

    groups: list[torch.Tensor]
    content: list[dict[str, torch.Tensor]]
    grams: dict[str, torch.Tensor]
    index: int  # the new style's row
    bf16: bool  # loss evaluations under bf16 autocast

    @classmethod
    def build(cls, photos: list[torch.Tensor], factor: float, loss_fn: PerceptualLoss, grams: dict[str, torch.Tensor],
              index: int, bf16: bool) -> "_Stage":
        """``photos`` scaled by ``factor`` (channels-last), their content features computed once."""
        groups = [(g if factor == 1 else _scaled(g, factor)).contiguous(memory_format=torch.channels_last)
                  for g in photos]
        stage = cls(groups, [], grams, index, bf16)
        with torch.no_grad(), stage.autocast():
            stage.content = [{k: v.float() for k, v in loss_fn.content_targets(g).items()} for g in groups]
        return stage

    @property
    def count(self) -> int:
        return sum(len(g) for g in self.groups)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.groups[0].device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def loss(self, net, loss_fn: PerceptualLoss, group: int, idx: torch.Tensor):
        """The perceptual loss terms (mean over ``idx``) of photos ``idx`` of group ``group``."""
        with self.autocast():
            labels = torch.full((len(idx),), self.index, device=self.groups[group].device)
            grams = {k: v.expand(len(idx), *v.shape[1:]) for k, v in self.grams.items()}
            return loss_fn(net(self.groups[group][idx], labels), {k: v[idx] for k, v in self.content[group].items()},
                           grams)


def _fine_tune(net, tables, new: int, loss_fn: PerceptualLoss, photos: list[torch.Tensor], targets: StyleTargets,
               config: AddStyleConfig, bf16: bool, start: float, progress: ProgressFn | None) -> dict[str, float]:
    """Every stage of ``config.levels()`` with its optimiser; returns the last step's record."""
    done, record = 0, {}
    grams = targets.select(torch.zeros(1, dtype=torch.long))
    run = _lbfgs_stage if config.optimizer == "lbfgs" else _adam_stage
    for size, steps in config.levels():
        stage = _Stage.build(photos, size / config.size, loss_fn, grams, new, bf16)
        done, record = run(net, tables, loss_fn, stage, config, steps, done, start, progress)
        if _over_budget(config, start):
            break
    return record


def _scaled(images: torch.Tensor, factor: float) -> torch.Tensor:
    """``images`` resized by ``factor``, each side a multiple of 4 and ≥ 16 px (VGG's deepest style layer)."""
    shape = [max(16, round(side * factor / 4) * 4) for side in images.shape[-2:]]
    return kornia.geometry.transform.resize(images, tuple(shape), interpolation="bilinear", antialias=True).clamp(0, 1)


def _over_budget(config: AddStyleConfig, start: float) -> bool:
    return config.time_budget is not None and time.perf_counter() - start > config.time_budget


def _adam_stage(net, tables, loss_fn, stage: _Stage, config, steps, done, start, progress):
    """``steps`` Adam steps on batches of ``config.batch`` photos taken in turn, group after group (the legacy
    recipe)."""
    optimizer = torch.optim.Adam(tables, lr=config.lr or 0.03)
    record: dict[str, float] = {}
    for _ in range(steps):
        if _over_budget(config, start):
            break
        group = done % len(stage.groups)
        n = len(stage.groups[group])
        batch = min(config.batch, n)
        terms = stage.loss(net, loss_fn, group, torch.arange(done * batch, (done + 1) * batch) % n)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        done += 1
        record = {"step": done, "size": stage.groups[group].shape[-1], **terms.item(),
                  "seconds": time.perf_counter() - start}
        if progress is not None:
            progress(done, config.steps, record)
    return done, record


class _StopStage(Exception):
    """Raised inside the L-BFGS closure to end a stage: its evaluations or the time budget are used up (the line
    search may otherwise evaluate past ``max_eval``)."""


def _lbfgs_stage(net, tables, loss_fn, stage: _Stage, config, steps, done, start, progress):
    """Full-batch L-BFGS (strong-Wolfe line search) with at most ``steps`` loss evaluations; every evaluation sees
    every photo (in chunks of ``config.batch``), so the objective is deterministic. Ends on the best point seen.
    ``config.precondition``: L-BFGS moves z, the rows being ``start + spread ⊙ z`` with ``spread`` each entry's
    standard deviation over the existing styles (entries that vary more between styles take larger steps)."""
    new = stage.index
    origin = [p.detach()[new].clone() for p in tables]
    if config.precondition and new >= 2:
        spread = [p.detach()[:new].std(0).clamp_min(1e-3) for p in tables]
    else:
        spread = [torch.ones_like(o) for o in origin]
    z = [torch.zeros_like(o, requires_grad=True) for o in origin]
    optimizer = torch.optim.LBFGS(z, lr=config.lr or 1.0, max_iter=steps, max_eval=steps, history_size=config.history,
                                  line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
    best: dict = {"total": math.inf, "rows": None}
    state = {"done": done, "record": {}}
    count = stage.count

    def closure() -> torch.Tensor:
        if state["done"] - done >= steps or _over_budget(config, start):
            raise _StopStage
        with torch.no_grad():
            for p, o, s, v in zip(tables, origin, spread, z):
                p[new] = o + s * v
        for p in tables:
            p.grad = None
        sums = {"content": 0.0, "style": 0.0, "tv": 0.0, "total": 0.0}
        for group, images in enumerate(stage.groups):
            for i in range(0, len(images), config.batch):
                idx = torch.arange(i, min(i + config.batch, len(images)))
                terms = stage.loss(net, loss_fn, group, idx)
                (terms.total * (len(idx) / count)).backward()
                for k, v in terms.item().items():
                    sums[k] += v * len(idx) / count
        for p, s, v in zip(tables, spread, z):
            v.grad = p.grad[new] * s
        if sums["total"] < best["total"]:
            best["total"], best["rows"] = sums["total"], [p.detach()[new].clone() for p in tables]
        state["done"] += 1
        state["record"] = {"step": state["done"], "size": max(stage.groups[0].shape[-2:]), **sums,
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
