"""Refine mode: the fast network's output as the start of a short Gatys optimisation, with the loss the model was
trained with and the style paintings stored in the model file (``painting.<i>``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

from .errors import StyleError
from .gatys import GatysConfig, GatysResult, stylize_gatys
from .images import resize_long_side
from .loss import LossConfig, PerceptualLoss
from .modelfile import ModelFile, get_model
from .progress import ProgressFn
from .styles import parse_style_arg, style_weights

MAX_REFINE = 10_000
BEST_STEPS = 19  # --best without --seconds: about the default Gatys run's loss in ~1/3 of its time (MODEL.md)
FIRST_STEP = 0.08  # refine's first L-BFGS move: at most 8 % of the pixel range (saves ~1 iteration; MODEL.md)
TRIM, TRIM_SIZE = 1e-3, 256  # refine's loss leaves out style layers below this share of the start's loss
NO_PAINTINGS = "this model file has no stored paintings; retrain or re-add the style"


def check_refine(steps: int) -> int:
    """Refine iterations: a whole number 0..10000 (0 = the network's output as it is)."""
    if isinstance(steps, bool) or not (isinstance(steps, int) and 0 <= steps <= MAX_REFINE):
        raise StyleError(f"refine must be a whole number of iterations between 0 and {MAX_REFINE}, not {steps!r}")
    return steps


def style_paintings(model: ModelFile, indices: Sequence[int]) -> list[torch.Tensor]:
    """The stored paintings of styles ``indices`` as [1, 3, h, w] float images; StyleError when one is missing."""
    out = []
    for i in indices:
        painting = model.styles[i].painting
        if painting is None:
            raise StyleError(NO_PAINTINGS if all(s.painting is None for s in model.styles) else
                             f"style {model.styles[i].name!r} has no stored painting; re-add it with add_style")
        out.append(painting.permute(2, 0, 1)[None].float() / 255)
    return out


@lru_cache(maxsize=2)
def _loss(loss_json: str, device: str) -> PerceptualLoss:
    return PerceptualLoss(LossConfig.from_dict(json.loads(loss_json))).to(device)


def model_loss(model: ModelFile, device: str | torch.device = "cpu") -> PerceptualLoss:
    """The perceptual loss the model was trained with (its stored loss settings), cached per device."""
    return _loss(json.dumps(model.loss, sort_keys=True), str(device))


def refine_config(model: ModelFile, index: int, size: int, steps: int, start: torch.Tensor,
                  scale: float = 1.0, seconds: float | None = None, precision: str = "auto") -> GatysConfig:
    """One-level Gatys settings starting at ``start``: the model's loss weights, and the painting at the size that
    matches the network's strokes (the training style size, ÷ ``scale``), relative to the ``size`` px result; the
    loss network under bf16 autocast where the CPU has it natively (``precision="auto"``; 1.6x faster per
    iteration on a 2-core Zen 4, the same loss after N iterations; MODEL.md)."""
    info = model.styles[index]
    style_px = int(info.training.get("style_size", 256)) * 256 / int(info.training.get("photo_size", 256)) / scale
    style_scale = min(8.0, max(0.05, style_px / size))
    loss = LossConfig.from_dict(model.loss) if model.loss else LossConfig()
    return GatysConfig(size=size, steps=steps, init=start, min_size=size, style_scale=style_scale, loss=loss,
                       seconds=seconds, precision=precision, first_step=FIRST_STEP)


def refine(model: ModelFile, photo: torch.Tensor, start: torch.Tensor, weights: torch.Tensor, steps: int,
           scale: float = 1.0, device: str | torch.device = "cpu", progress: ProgressFn | None = None,
           seconds: float | None = None) -> GatysResult:
    """``steps`` Gatys iterations on ``start`` ([1, 3, H, W], e.g. the network's output for ``photo``) towards the
    content of ``photo`` and the blend ``weights`` [S] of the model's styles, with the model's own loss; fewer when
    the wall-clock budget ``seconds`` ends it first (the best iterate is kept)."""
    steps = check_refine(steps)
    weights = weights.reshape(-1).float().cpu()
    used = [i for i in range(weights.numel()) if weights[i] > 0]
    paintings = style_paintings(model, used)
    size = max(photo.shape[-2:])
    config = refine_config(model, used[0], size, max(1, steps), start.detach().float().cpu(), scale, seconds)
    blend = [float(weights[i]) for i in used]
    loss = trimmed_loss(model_loss(model, torch.device(device)), photo, config.init, paintings, blend,
                        config.style_scale)
    return stylize_gatys(photo.float().cpu(), paintings, config, blend, loss, device, progress)


@torch.no_grad()
def trimmed_loss(loss: PerceptualLoss, photo: torch.Tensor, start: torch.Tensor, paintings: Sequence[torch.Tensor],
                 blend: Sequence[float], style_scale: float, size: int = TRIM_SIZE) -> PerceptualLoss:
    """``loss`` without the deepest style layers that weigh less than :data:`TRIM` of the start's loss (as
    add-style does: relu5_1, ~0.002 %), so the loss network stops earlier and each refine iteration costs ~20 %
    less; judged on ``photo`` and ``start`` at ``size`` px (cheap), the paintings at ``style_scale`` of it."""
    device = next(loss.vgg.parameters()).device
    small = resize_long_side(photo.float(), min(size, max(photo.shape[-2:]))).to(device)
    begin = F.interpolate(start.float().to(device), size=small.shape[-2:], mode="bilinear", antialias=True)
    styles = [resize_long_side(p.float(), max(16, round(max(small.shape[-2:]) * style_scale))).to(device)
              for p in paintings]
    return loss.trimmed(begin, loss.content_targets(small), loss.style_targets(styles).blend(list(blend)), TRIM)


def refine_batch(model: ModelFile, photos: torch.Tensor, starts: torch.Tensor, weights: torch.Tensor, steps: int,
                 scale: float = 1.0, device: str | torch.device = "cpu", progress: ProgressFn | None = None,
                 seconds: float | None = None) -> torch.Tensor:
    """:func:`refine` for each image of a batch [B, 3, H, W] (a budget ``seconds`` split evenly between them);
    returns the refined batch (float32, CPU)."""
    each = seconds / len(photos) if seconds else None
    return torch.cat([refine(model, p[None], s[None], weights, steps, scale, device, progress, each).image
                      for p, s in zip(photos, starts)])


def stored_paintings(style: str, model_path: str | None = None) -> tuple[list[torch.Tensor], list[float]]:
    """The paintings a model file stores for a CLI style spec (a name, index or ``a=0.7,b=0.3`` mix) and their
    blend weights, for commands that optimise towards a model's styles (``gatys -s``, ``sweep -s``)."""
    model = get_model(model_path)
    weights = style_weights(parse_style_arg(style), model.style_names)[0]
    picked = [i for i, w in enumerate(weights.tolist()) if w > 0]
    return style_paintings(model, picked), [float(weights[i]) for i in picked]
