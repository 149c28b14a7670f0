"""The add-style recipe and its optimisation (used by :mod:`.add_style`): :class:`AddStyleConfig` and the measured
:data:`PRESETS`, and :func:`fit_rows` — coarse-to-fine stages over the training photos, full-batch L-BFGS or Adam
on one photo per step, in coordinates scaled by each entry's spread over the existing styles. MODEL.md, "Adding a
style", has the measurements behind each choice."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Sequence

import kornia
import torch

from ..loss import PerceptualLoss
from ..loss.winograd import loss_arithmetic
from ..optim import LBFGS, Adam
from ..progress import ProgressFn

INITS = ("blend", "mean")
OPTIMIZERS = ("lbfgs", "adam")
FRAMES = ("whole", "square")
PRECISIONS = ("auto", "fp32", "bf16")
# fast's stages (the defaults of AddStyleConfig): (size divisor, steps as shares, optimiser); PRESETS says why
FAST_SCHEDULE = ((4, 10, "lbfgs"), (2, 48, "adam"))


@dataclass
class AddStyleConfig:
    """Settings of one add-style run (:data:`PRESETS` holds the measured recipes; the defaults are ``fast``'s).
    ``steps`` are optimiser steps over all stages (an L-BFGS evaluation sees every photo, an Adam step ``batch`` of
    them), split by ``schedule``: (size divisor, share of the steps, optimiser) per stage, coarse to fine.
    ``time_budget`` (seconds of fitting, the set-up not counted): the user's cap; a run it ends keeps the rows of
    that moment (after at least one step) and records the steps it made."""

    steps: int = 58
    size: int = 256
    schedule: tuple[tuple[int, float, str], ...] = FAST_SCHEDULE
    init: str = "blend"
    batch: int = 1  # Adam: photos per step, in turn (an L-BFGS evaluation sees them all)
    lr: float = 0.4  # Adam's learning rate (in the preconditioned coordinates); L-BFGS's line search sets its own
    lr_decay: float = 0.1  # Adam's rate falls exponentially to lr × lr_decay by the end of the steps or the budget
    crops: int = 16  # content photos used at most (a seeded pick; all-Adam square runs draw with replacement)
    time_budget: float | None = None
    style_size: int | None = None  # None: what the model was trained with
    seed: int = 0
    frame: str = "whole"  # whole: each photo fitted to 3:2 (2:3) with long side ``size``; square: its centre square
    precision: str = "auto"  # auto: bf16 autocast of the loss network where the CPU computes bf16 natively
    precondition: bool = True  # steps scaled per entry by its spread over the existing styles
    history: int = 30  # L-BFGS history (pairs kept)
    trim: float = 1e-3  # leave out the deepest style layers while their share of the starting loss stays below this

    def __post_init__(self) -> None:
        for name, lo, hi in (("steps", 1, 1_000_000), ("size", 16, 4096), ("batch", 1, 1024), ("crops", 1, 10_000),
                             ("history", 1, 1000)):
            value = getattr(self, name)
            if not (isinstance(value, int) and lo <= value <= hi):
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
        if self.size % 8:
            raise ValueError(f"size must be a multiple of 8, not {self.size}")
        if not 0 < self.lr < 10:
            raise ValueError(f"lr must be in (0, 10), not {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr decay must be in (0, 1], not {self.lr_decay}")
        if not 0 <= self.trim < 1:
            raise ValueError(f"trim must be in [0, 1), not {self.trim}")
        self.schedule = tuple((int(d), float(share), str(opt)) for d, share, opt in self.schedule)
        if not self.schedule or any(d < 1 or share < 0 or opt not in OPTIMIZERS for d, share, opt in self.schedule) \
                or not sum(share for _, share, _ in self.schedule) > 0:
            raise ValueError(f"schedule must be (size divisor ≥ 1, share ≥ 0, one of {', '.join(OPTIMIZERS)}) "
                             f"stages with some share, not {self.schedule!r}")
        for name, choices in (("init", INITS), ("frame", FRAMES), ("precision", PRECISIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, not {getattr(self, name)!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time budget must be > 0 seconds, not {self.time_budget}")

    def levels(self) -> list[tuple[int, int, str]]:
        """(photo size, steps, optimiser) of each stage, coarse to fine; the steps add up to ``steps`` and stages
        without steps are left out."""
        total = sum(share for _, share, _ in self.schedule)
        out, done, cumulative = [], 0, 0.0
        for divisor, share, optimizer in self.schedule:
            cumulative += share
            count = round(self.steps * cumulative / total) - done
            done += count
            if count > 0:
                out.append((max(16, self.size // divisor // 8 * 8), count, optimizer))
        return out


# Each recipe is its work (steps at each size), never wall seconds, so it gives the same picture on every CPU.
# fast: 10 full-batch L-BFGS evaluations at 64 px, then 48 Adam steps at 128 px. Leave one out on the shipped
# paintings in the new-painting bench's metric at 512 px (MODEL.md, "Adding a style"), it scores within 0.01 of
# the 25 s recipe of 2026-12-03 (15 + 100 at 128 px + 120 at 256 px: `best` now) at a quarter of its work; ~8 s of
# fitting on two AVX2 cores without bf16.
BEST_SCHEDULE = ((4, 15, "lbfgs"), (2, 100, "adam"), (1, 120, "adam"))
PRESETS: dict[str, AddStyleConfig] = {
    "fast": AddStyleConfig(),  # the defaults are fast's
    # the 25 s recipe of 2026-12-03 by its work: ~45 s natively with bf16, ~75 s on two AVX2 cores
    "best": AddStyleConfig(steps=235, schedule=BEST_SCHEDULE),
    "legacy": AddStyleConfig(steps=200, schedule=((2, 0.5, "adam"), (1, 0.5, "adam")), init="mean", batch=4,
                             lr=0.03, lr_decay=1.0, frame="square", precision="fp32", precondition=False, trim=0.0),
}


def preset(quality: str = "fast", **changes) -> AddStyleConfig:
    """The :data:`PRESETS` recipe ``quality`` with some settings changed (``None`` values keep the preset's)."""
    if quality not in PRESETS:
        raise ValueError(f"quality must be one of {', '.join(PRESETS)}, not {quality!r}")
    return replace(PRESETS[quality], **{k: v for k, v in changes.items() if v is not None})


@dataclass
class _Stage:
    """One resolution of the run: the photos in shape groups, their content features, the style's Grams."""

    groups: list[torch.Tensor]
    content: list[dict[str, torch.Tensor]]
    grams: dict[str, torch.Tensor]
    index: int  # the new style's row
    bf16: bool  # the loss network under bf16 autocast (the style network stays fp32, as it is used)
    winograd: bool = False  # else its wide convolutions by Winograd in fp32 (precision auto; loss/winograd.py)

    @classmethod
    def build(cls, photos: list[torch.Tensor], factor: float, loss_fn: PerceptualLoss, grams: dict[str, torch.Tensor],
              index: int, bf16: bool, winograd: bool = False) -> "_Stage":
        """``photos`` scaled by ``factor`` (channels-last), their content features computed once."""
        groups = [(g if factor == 1 else _scaled(g, factor)).contiguous(memory_format=torch.channels_last)
                  for g in photos]
        stage = cls(groups, [], grams, index, bf16, winograd)
        with torch.no_grad(), stage.autocast():
            stage.content = [{k: v.float() for k, v in loss_fn.content_targets(g).items()} for g in groups]
        return stage

    @property
    def photos(self) -> list[tuple[int, int]]:
        """(group, index) of every photo, in order."""
        return [(g, i) for g, images in enumerate(self.groups) for i in range(len(images))]

    def autocast(self):
        return loss_arithmetic(self.groups[0].device.type, self.bf16, self.winograd)

    def backward(self, net, loss_fn: PerceptualLoss, picks: Sequence[tuple[int, int]], chunk: int) -> dict[str, float]:
        """Backpropagate the mean loss of the photos ``picks`` (forward passes of at most ``chunk`` photos of one
        shape) → its terms."""
        sums = {"content": 0.0, "style": 0.0, "tv": 0.0, "total": 0.0}
        for group in dict.fromkeys(g for g, _ in picks):
            every = torch.tensor([i for g, i in picks if g == group])
            for idx in every.split(chunk):
                labels = torch.full((len(idx),), self.index, device=self.groups[group].device)
                grams = {k: v.expand(len(idx), *v.shape[1:]) for k, v in self.grams.items()}
                output = net(self.groups[group][idx], labels)
                with self.autocast():
                    terms = loss_fn(output, {k: v[idx] for k, v in self.content[group].items()}, grams)
                (terms.total * (len(idx) / len(picks))).backward()
                for k, v in terms.item().items():
                    sums[k] += v * len(idx) / len(picks)
        return sums


class _Rows:
    """The new style's rows as ``origin + spread ⊙ z``: the optimisers move z. ``precondition``: ``spread`` is
    each entry's standard deviation over the existing styles (entries that vary more between styles take larger
    steps; 20× between entries on v2), else 1."""

    def __init__(self, tables: list[torch.Tensor], index: int, precondition: bool) -> None:
        self.tables, self.index = tables, index
        self.origin = [p.detach()[index].clone() for p in tables]
        if precondition and index >= 2:
            self.spread = [p.detach()[:index].std(0).clamp_min(1e-3) for p in tables]
        else:
            self.spread = [torch.ones_like(o) for o in self.origin]
        self.z = [torch.zeros_like(o, requires_grad=True) for o in self.origin]

    def current(self) -> list[torch.Tensor]:
        return [p.detach()[self.index].clone() for p in self.tables]

    @torch.no_grad()
    def put(self, rows: list[torch.Tensor] | None = None) -> None:
        """Rows into the network: from z, or ``rows`` (z follows)."""
        for p, o, s, v, row in zip(self.tables, self.origin, self.spread, self.z, rows or [None] * len(self.z)):
            if row is not None:
                v.copy_((row - o) / s)
            p[self.index] = o + s * v

    def zero_grad(self) -> None:
        for p in self.tables:
            p.grad = None

    def grad_to_z(self) -> None:
        for p, s, v in zip(self.tables, self.spread, self.z):
            v.grad = p.grad[self.index] * s


def fit_rows(net, tables, new: int, loss_fn: PerceptualLoss, photos: list[torch.Tensor],
             grams: dict[str, torch.Tensor], config: AddStyleConfig, bf16: bool, start: float,
             progress: ProgressFn | None) -> dict[str, float]:
    """Train style ``new``'s rows (``tables``, gradient-masked to that row) on ``photos`` ([N, 3, H, W] groups at
    ``config.size``) towards the Grams ``grams``: every stage of ``config.levels()`` with its optimiser, each from
    the rows the previous one ended on, until the steps or the time budget (counted from ``start``) run out.
    Returns the last step's record."""
    rows = _Rows(tables, new, config.precondition)
    levels = config.levels()
    adam_total, winograd = sum(n for _, n, opt in levels if opt == "adam"), config.precision == "auto" and not bf16
    done, adam_done, record = 0, 0, {}
    for size, steps, optimizer in levels:
        stage = _Stage.build(photos, size / config.size, loss_fn, grams, new, bf16, winograd)
        if optimizer == "lbfgs":
            done, record = _lbfgs_stage(net, rows, loss_fn, stage, config, steps, done, start, progress)
        else:
            before = done
            done, record = _adam_stage(net, rows, loss_fn, stage, config, steps, done, (adam_done, adam_total),
                                       start, progress)
            adam_done += done - before
        if _over_budget(config, start, done):
            break
    return record


def _scaled(images: torch.Tensor, factor: float) -> torch.Tensor:
    """``images`` resized by ``factor``, each side a multiple of 4 and ≥ 16 px (VGG's deepest style layer)."""
    shape = [max(16, round(side * factor / 4) * 4) for side in images.shape[-2:]]
    return kornia.geometry.transform.resize(images, tuple(shape), interpolation="bilinear", antialias=True).clamp(0, 1)


def _over_budget(config: AddStyleConfig, start: float, done: int) -> bool:
    """Whether the time budget has run out; never before the first step (a run always makes one)."""
    return done > 0 and config.time_budget is not None and time.perf_counter() - start > config.time_budget


def _record(done: int, stage: _Stage, terms: dict[str, float], start: float) -> dict[str, float]:
    return {"step": done, "size": max(stage.groups[0].shape[-2:]), **terms, "seconds": time.perf_counter() - start}


def _adam_stage(net, rows: _Rows, loss_fn, stage: _Stage, config, steps, done, adam_steps: tuple[int, int], start,
                progress):
    """``steps`` Adam steps on z, ``config.batch`` photos per step taken in turn. The rate decays exponentially
    from ``lr`` to ``lr × lr_decay`` with the run's progress over its Adam steps (``adam_steps``: done before this
    stage, in all), or over the time budget where that is further along."""
    optimizer = Adam(rows.z, lr=config.lr)
    order = stage.photos
    record: dict[str, float] = {}
    for k in range(steps):
        if _over_budget(config, start, done):
            break
        fraction = (adam_steps[0] + k) / adam_steps[1]
        if config.time_budget is not None:
            fraction = max(fraction, (time.perf_counter() - start) / config.time_budget)
        optimizer.lr = config.lr * config.lr_decay ** min(1.0, fraction)
        rows.put()
        rows.zero_grad()
        picks = [order[(k * config.batch + j) % len(order)] for j in range(min(config.batch, len(order)))]
        terms = stage.backward(net, loss_fn, picks, config.batch)
        rows.grad_to_z()
        optimizer.step()
        done += 1
        record = _record(done, stage, terms, start)
        if progress is not None:
            progress(done, config.steps, record)
    rows.put()
    return done, record


class _StopStage(Exception):
    """Raised inside the L-BFGS closure to end a stage: its evaluations or the time budget are used up (the line
    search may otherwise evaluate past ``max_eval``)."""


def _lbfgs_stage(net, rows: _Rows, loss_fn, stage: _Stage, config, steps, done, start, progress):
    """Full-batch L-BFGS (strong-Wolfe line search) on z with at most ``steps`` loss evaluations; every evaluation
    sees every photo (one forward pass per shape), so the objective is deterministic. Ends on the best point seen."""
    optimizer = LBFGS(rows.z, lr=1.0, history=config.history, line_search=True)
    best: dict = {"total": math.inf, "rows": None}
    state = {"done": done, "record": {}}
    every, chunk = stage.photos, max(len(g) for g in stage.groups)

    def closure() -> torch.Tensor:
        if state["done"] - done >= steps or _over_budget(config, start, state["done"]):
            raise _StopStage
        rows.put()
        rows.zero_grad()
        sums = stage.backward(net, loss_fn, every, chunk)
        rows.grad_to_z()
        if sums["total"] < best["total"]:
            best["total"], best["rows"] = sums["total"], rows.current()
        state["done"] += 1
        state["record"] = _record(state["done"], stage, sums, start)
        if progress is not None:
            progress(state["done"], config.steps, state["record"])
        return torch.tensor(sums["total"])

    try:
        optimizer.step(closure, max_iter=steps)
    except _StopStage:
        pass
    if best["rows"] is not None:
        rows.put(best["rows"])
    return state["done"], state["record"]
