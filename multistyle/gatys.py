"""Gatys et al. (2016) image optimisation, coarse-to-fine, with L-BFGS (default) or Adam."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

import kornia
import torch

from .color import COLOR_MODES, keep_luminance, match_color
from .errors import ImageError, StyleError
from .images import resize_long_side
from .loss import LossConfig, LossTerms, PerceptualLoss
from .loss.winograd import fast_convolutions, loss_arithmetic
from .optim import LBFGS, Adam
from .paths import pick_device
from .precision import bf16_autocast_native
from .progress import ProgressFn
from .styles import validate_blend_weights


def check_seconds(seconds: float | None) -> float | None:
    """A wall-clock budget: None, or a finite number of seconds > 0."""
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                or not (math.isfinite(seconds) and seconds > 0)):
        raise StyleError(f"seconds must be a finite number > 0, not {seconds!r}")
    return None if seconds is None else float(seconds)


PRECISIONS = ("fp32", "bf16", "auto")


@dataclass
class GatysConfig:
    """Settings of one Gatys run. ``steps`` is the total number of optimiser iterations over all scales; ``seconds``
    an optional wall-clock budget for the whole run (it stops early, keeping the best iterate, at the full size)."""

    size: int = 256
    steps: int = 100
    optimizer: str = "lbfgs"
    lr: float | None = None  # None: 1.0 for L-BFGS, 0.02 for Adam
    init: str | torch.Tensor = "content"  # "content", "noise", an image path or a [1, 3, H, W] tensor in [0, 1]
    noise_ratio: float = 0.0
    seed: int | None = 0
    min_size: int = 64  # coarsest scale of the √2 pyramid
    style_scale: float = 1.0  # style image long side = content long side × style_scale
    preserve_color: str | None = None  # None, "luminance" or "histogram"
    loss: LossConfig = field(default_factory=LossConfig)
    seconds: float | None = None  # wall-clock budget of the run (None: run all ``steps``)
    precision: str = "fp32"  # loss network under "bf16" autocast, "fp32", or "auto" (bf16 where native, else Winograd)
    first_step: float | None = None  # L-BFGS's first move: at most this change of any pixel (None: torch's rule)

    def __post_init__(self) -> None:
        if not (isinstance(self.size, int) and 8 <= self.size <= 8192):
            raise ValueError(f"size must be 8..8192 pixels, not {self.size}")
        if not (isinstance(self.steps, int) and 1 <= self.steps <= 100_000):
            raise ValueError(f"steps must be 1..100000, not {self.steps}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', not {self.optimizer!r}")
        if not (0.0 <= self.noise_ratio <= 1.0):
            raise ValueError(f"noise ratio must be between 0 and 1, not {self.noise_ratio}")
        if not (math.isfinite(self.style_scale) and 0.05 <= self.style_scale <= 8):
            raise ValueError(f"style scale must be 0.05..8, not {self.style_scale}")
        if self.preserve_color not in (None, *COLOR_MODES):
            raise ValueError(f"preserve_color must be one of {COLOR_MODES}, not {self.preserve_color!r}")
        if self.first_step is not None and not (math.isfinite(self.first_step) and 0 < self.first_step <= 1):
            raise ValueError(f"first step must be a pixel change in (0, 1], not {self.first_step}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be > 0, not {self.lr}")
        self.seconds = check_seconds(self.seconds)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if isinstance(self.init, torch.Tensor) and not (self.init.dim() == 4 and self.init.shape[:2] == (1, 3)):
            raise ValueError(f"an init image tensor must be [1, 3, H, W], not {tuple(self.init.shape)}")


def pyramid(size: int, min_size: int) -> list[int]:
    """Long-side sizes from coarse to fine, each about √2 times the previous, ending at ``size``."""
    sizes = [size]
    while sizes[-1] / math.sqrt(2) >= min_size:
        sizes.append(round(sizes[-1] / math.sqrt(2)))
    return sizes[::-1]


def level_deadlines(start: float, seconds: float, sizes: Sequence[int], steps: Sequence[int]) -> list[float]:
    """Absolute ``perf_counter`` times by which each level must end: the budget split in proportion to each level's
    expected cost (iterations × pixels), cumulative, so time a level leaves unused goes to the next ones."""
    costs = [n * s * s for s, n in zip(sizes, steps)]
    total, done, out = sum(costs) or 1, 0.0, []
    for cost in costs:
        done += cost
        out.append(start + seconds * done / total)
    return out


@dataclass
class _Clock:
    """Timing of a run: its start, the deadline of the level being optimised, the last iteration's duration."""

    start: float
    deadline: float | None = None
    iteration: float = 0.0

    def has_time(self) -> bool:
        """Whether one more iteration (as long as the last one) ends before the deadline."""
        return self.deadline is None or time.perf_counter() + self.iteration <= self.deadline


def split_steps(steps: int, levels: int) -> list[int]:
    """Spread ``steps`` iterations evenly over the levels (the finest gets any remainder)."""
    base = [steps // levels] * levels
    base[-1] += steps - sum(base)
    return base


@dataclass
class GatysResult:
    image: torch.Tensor  # [1, 3, H, W] in [0, 1], on the CPU
    history: list[dict[str, float]]  # one entry per iteration: level, size, content, style, tv, total
    seconds: float


def _initial_image(config: GatysConfig, content: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    noise = torch.rand(content.shape, generator=generator).to(content.device)
    if isinstance(config.init, torch.Tensor):  # e.g. the fast network's output (refine mode)
        init = config.init.float().to(content.device)
        if init.shape[-2:] != content.shape[-2:]:
            init = kornia.geometry.transform.resize(init, content.shape[-2:], antialias=True)
        return torch.lerp(init, noise, config.noise_ratio) if config.noise_ratio else init.clone()
    if config.init == "content":
        return torch.lerp(content, noise, config.noise_ratio)
    if config.init == "noise":
        return noise
    from .images import load_image

    init = load_image(config.init).to(content.device)
    init = kornia.geometry.transform.resize(init, content.shape[-2:], antialias=True)
    return torch.lerp(init, noise, config.noise_ratio)


def stylize_gatys(content: torch.Tensor, styles: Sequence[torch.Tensor], config: GatysConfig | None = None,
                  style_weights: Sequence[float] | None = None, loss: PerceptualLoss | None = None,
                  device: str | torch.device | None = "auto", progress: ProgressFn | None = None) -> GatysResult:
    """Optimise an image so its VGG19 content matches ``content`` and its Gram statistics the blend of ``styles``.

    ``content`` and each style are [1, 3, H, W] float in [0, 1] at any size. Works coarse-to-fine over a √2
    pyramid from ``config.min_size`` up to ``config.size`` (long side).
    """
    start = time.perf_counter()
    config = config or GatysConfig()
    if not styles:
        raise ImageError("give at least one style image")
    blend = validate_blend_weights(style_weights if style_weights is not None else [1.0] * len(styles), len(styles))
    dev = pick_device(device)
    loss = (loss or PerceptualLoss(config.loss)).to(dev)
    generator = torch.Generator().manual_seed(config.seed if config.seed is not None else 0)
    if config.seed is None:
        generator.seed()
    sizes = pyramid(config.size, min(config.min_size, config.size))
    steps = split_steps(config.steps, len(sizes))
    bf16 = config.precision == "bf16" or (config.precision == "auto" and bf16_autocast_native(dev).bf16)
    winograd = config.precision == "auto" and not bf16  # fp32 with Winograd's fewer multiplies (loss/winograd.py)
    full_content = resize_long_side(content.float(), config.size).to(dev)
    history: list[dict[str, float]] = []
    clock = _Clock(start)
    deadlines = level_deadlines(start, config.seconds, sizes, steps) if config.seconds else [None] * len(sizes)
    report = None
    if progress is not None:
        def report(record: dict) -> None:
            done, total = len(history), sum(steps)
            if config.seconds and record["seconds"] > 0:  # the iterations the budget will allow, at the rate so far
                total = max(done, min(total, round(done * config.seconds / record["seconds"])))
            progress(done, total, record)
    image: torch.Tensor | None = None
    for level, (size, level_steps) in enumerate(zip(sizes, steps)):
        target_content = resize_long_side(full_content, size) if size != config.size else full_content
        if image is None:
            image = _initial_image(config, target_content, generator)
        else:
            image = kornia.geometry.transform.resize(image, target_content.shape[-2:], interpolation="bilinear")
        clock.deadline = deadlines[level]
        if level:  # an iteration at this level costs more pixels than one at the last
            clock.iteration *= size * size / max(1, sizes[level - 1] ** 2)
        if not level_steps or not clock.has_time():
            continue  # no iterations here (fewer steps than levels) or out of time: only upsampled
        style_images = [resize_long_side(s.float(), max(8, round(size * config.style_scale))) for s in styles]
        if config.preserve_color == "histogram":
            style_images = [match_color(s.to(dev), target_content) for s in style_images]
        targets = loss.style_targets([s.to(dev) for s in style_images]).blend(blend.tolist())  # disk-cached: fp32
        with fast_convolutions(winograd):
            content_targets = loss.content_targets(target_content)
        level_loss = partial(loss, content_targets=content_targets, style_grams=targets)
        image = _optimise_level(image, level_loss, config, level_steps, {"level": level, "size": size}, history,
                                report, clock, bf16, winograd)
    assert image is not None
    result = image.detach().clamp(0, 1)
    if config.preserve_color == "luminance":
        result = keep_luminance(result, full_content)
    return GatysResult(result.cpu(), history, time.perf_counter() - start)


def _optimise_level(image: torch.Tensor, loss: Callable[[torch.Tensor], LossTerms], config: GatysConfig,
                    steps: int, labels: dict, history: list[dict[str, float]],
                    report: Callable[[dict], None] | None, clock: _Clock, bf16: bool = False,
                    winograd: bool = False) -> torch.Tensor:
    """Up to ``steps`` optimiser iterations on ``image`` at one pyramid level, fewer when the next one would end
    after ``clock.deadline``; returns the best image seen. An overshooting step (L-BFGS without line search can
    diverge with large weights) goes back to the best image and restarts the optimiser with half the step size."""
    # a plain contiguous copy: L-BFGS flattens the gradient with view(), which a channels_last init (v2's output in
    # refine mode) would break
    image = image.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    lr = config.lr if config.lr is not None else (1.0 if config.optimizer == "lbfgs" else 0.02)

    def make_optimizer() -> LBFGS | Adam:
        if config.optimizer == "lbfgs":
            first = config.first_step and config.first_step * lr / (config.lr or 1.0)  # halved after an overshoot
            return LBFGS([image], lr=lr, history=50, first_step=first)
        return Adam([image], lr=lr)

    optimizer = make_optimizer()
    terms_box: list[LossTerms] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        with loss_arithmetic(image.device.type, bf16, winograd):
            terms = loss(image)
        terms.total.backward()
        terms_box.append(terms)
        return terms.total

    best_total, best_image = math.inf, image.detach().clone()
    done = 0
    while done < steps and clock.has_time():
        began = time.perf_counter()
        terms_box.clear()
        before = image.detach().clone()
        optimizer.step(closure)  # evaluates the loss at `before`, then moves the image
        if config.optimizer == "adam":
            with torch.no_grad():
                image.clamp_(0, 1)
        done += 1
        clock.iteration = time.perf_counter() - began
        record = {**labels, **terms_box[0].item(), "seconds": time.perf_counter() - clock.start}
        if record["total"] < best_total:
            best_total, best_image = record["total"], before
        elif not math.isfinite(record["total"]) or record["total"] > 4 * best_total:
            with torch.no_grad():
                image.copy_(best_image)
            lr *= 0.5
            optimizer = make_optimizer()
        history.append(record)
        if report is not None:
            report(record)
    if not done:
        return image.detach()
    with torch.no_grad(), fast_convolutions(winograd):
        final_total = float(loss(image).total)
    return image if final_total <= best_total else best_image
