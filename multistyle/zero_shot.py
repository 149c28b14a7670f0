"""Any painting at once, without changing the model file: a model with one more style row for the painting.

Two steps, one function (:func:`zero_shot_model`):

* ``fit=False`` — the blend, instant (~0.3 s): the convex mix of the model's rows whose Gram matrices best explain
  the painting's (non-negative least squares, :mod:`multistyle.train.style_init`); the row is the style mix
  :func:`painting_weights` of the stored styles.
* ``fit=True`` (the default) — the fitted row: the blend, then the new row's γ/β entries fitted on the model's own
  loss for that painting by a fixed amount of work, :data:`FIT_CONFIG` (full-batch L-BFGS over the packaged photos
  at a small size, the add-style loop of :mod:`multistyle.train.add_style`), so the picture is the same on every
  CPU; ``seconds`` only caps it. It follows the painting (its palette included) where a mix of stored rows cannot;
  MODEL.md, "Zero-shot", has the measurements.

Either result is a row of the style bank (the network's graph is unchanged), cached in memory by model and
painting pixels, so a second call with the same painting is instant. ``progress(step, total, record)`` reports
the fit's steps (the demo shows it). Example for a page that improves in place::

    instant = zero_shot_model(model, painting, fit=False)            # show at once
    fitted = zero_shot_model(model, painting, progress=on_step)      # then this
    Stylizer(fitted, "cpu")(photo, len(fitted.styles) - 1)
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict

import torch
import torch.nn.functional as F

from .errors import StyleError
from .images import ImageLike, resize_long_side, to_tensor
from .modelfile import PACKAGED_CONTENT, ModelFile, StyleInfo, make_painting, make_thumbnail
from .progress import ProgressFn
from .train.row_fit import AddStyleConfig
from .train.style_init import blend_weights, init_rows

ZERO_SHOT_NAME = "your_painting"
# The fit's work, the same on every CPU: 10 full-batch L-BFGS evaluations of the new row over 3 of the packaged
# photos at 64 px (MODEL.md, "Zero-shot": leave one out, 20 evaluations over all 6 photos score style 0.462, 12 over
# 3 0.486, 8 over 6 0.517; 10 over 3 keeps the first call, a 512 px picture included, within 2 s on two AVX2 cores)
FIT_CONFIG = AddStyleConfig(steps=10, size=64, schedule=((1, 1.0, "lbfgs"),), crops=3)


def painting_tensor(painting: ImageLike) -> torch.Tensor:
    """A painting given like ``stylize``'s image (path, PIL, HxWx3 uint8 array, [3|1, 3, H, W] float tensor) as
    one [1, 3, H, W] float image; ImageError for an unreadable file, StyleError for one too small to use."""
    x = to_tensor(painting)[:1].float()
    if min(x.shape[-2:]) < 16:
        raise StyleError(f"the painting is {x.shape[-1]}x{x.shape[-2]} px; give one at least 16 px on each side")
    return x


def painting_weights(model: ModelFile, painting: ImageLike, device: str | torch.device = "cpu") -> torch.Tensor:
    """The blend's style mix [S] for ``painting``: the model's rows whose Grams best explain the painting's, with
    the model's loss, the painting at the model's training style size."""
    from .refine import model_loss

    image = resize_long_side(_shrunk(painting_tensor(painting), style_size(model)), style_size(model))
    return blend_weights(model, model_loss(model, torch.device(device)), image)


def style_size(model: ModelFile) -> int:
    """Long side the model's paintings were used at in training (and are stored at)."""
    return int(model.styles[0].training.get("style_size", 256)) if model.styles else 256


_MODELS: OrderedDict[tuple, ModelFile] = OrderedDict()


def zero_shot_model(model: ModelFile, painting: ImageLike, name: str = ZERO_SHOT_NAME,
                    device: str | torch.device = "cpu", fit: bool = True, seconds: float | None = None,
                    progress: ProgressFn | None = None) -> ModelFile:
    """A new :class:`ModelFile` with one more style, ``name`` (its last), for ``painting``: the fitted row
    (``fit``: :data:`FIT_CONFIG`'s steps, fewer if ``seconds`` of fitting run out first) or the blend. Its painting
    is stored, so refine works with it. ``model`` and its file are not modified. The last 8 results are cached by
    model, painting pixels and settings."""
    if seconds is not None and not (isinstance(seconds, (int, float)) and 0 < seconds <= 600):
        raise StyleError(f"the zero-shot fit's seconds must be in (0, 600], not {seconds!r}")
    image = painting_tensor(painting)
    key = (id(model.net), model.net.num_styles, name, bool(fit), seconds if fit else None,
           hashlib.sha256(image.contiguous().numpy().tobytes() + repr(tuple(image.shape)).encode()).hexdigest())
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    small = _shrunk(image, style_size(model))
    result = _fitted(model, small, name, device, seconds, progress) if fit else _blended(model, small, name, device)
    _MODELS[key] = result
    while len(_MODELS) > 8:
        _MODELS.popitem(last=False)
    return result


def _shrunk(image: torch.Tensor, size: int) -> torch.Tensor:
    """``image`` reduced by area averaging to at most twice ``size`` on its long side (a large upload then costs
    one cheap pass; the exact resizes after it work on a small image)."""
    factor = 2 * size / max(image.shape[-2:])
    if factor >= 1:
        return image
    shape = [max(16, round(side * factor)) for side in image.shape[-2:]]
    return F.interpolate(image, size=shape, mode="area").clamp(0, 1)


def _blended(model: ModelFile, image: torch.Tensor, name: str, device: str | torch.device) -> ModelFile:
    """The model plus the blend row for ``image``."""
    weights = painting_weights(model, image, device)
    net = copy.deepcopy(model.net).cpu()
    [new] = net.append_styles(1)
    init_rows(net, new, weights)
    training = {"added_by": "zero_shot", "fit": False, "style_size": style_size(model),
                "photo_size": model.styles[0].training.get("photo_size", 256) if model.styles else 256,
                "blend": {model.style_names[i]: round(float(w), 4) for i, w in enumerate(weights) if w > 0}}
    info = StyleInfo(name, "", make_thumbnail(image), training,
                     painting=make_painting(resize_long_side(image, style_size(model))))
    return ModelFile(net.eval(), model.styles + [info], model.loss, model.extra)


def _fitted(model: ModelFile, image: torch.Tensor, name: str, device: str | torch.device, seconds: float | None,
            progress: ProgressFn | None) -> ModelFile:
    """The model plus the row fitted for ``image`` (from the blend), capped at ``seconds`` of fitting."""
    from dataclasses import replace

    from .train.add_style import learn_style

    config = replace(FIT_CONFIG, time_budget=None if seconds is None else float(seconds))
    result = learn_style(model, image, [PACKAGED_CONTENT], name, config=config, device=device, progress=progress)
    result.styles[-1].training.update({"added_by": "zero_shot", "fit": True})
    result.net.eval()
    return result
