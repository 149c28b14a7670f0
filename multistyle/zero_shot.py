"""Any painting at once, without training: the warm-start row of a new style (the convex blend of the model's rows
whose Gram matrices best explain the painting's, by non-negative least squares) applied straight away. The network
mixes styles by mixing γ/β rows, so that row is the style mix ``blend_weights`` of the stored styles; add-style
(``train/style_init``) starts its training from the same row."""

from __future__ import annotations

import copy
import hashlib
import math
from collections import OrderedDict

import torch

from .images import ImageLike, resize_long_side, to_tensor
from .loss import LossConfig, PerceptualLoss
from .modelfile import ModelFile, StyleInfo, make_painting, make_thumbnail
from .nets import StyleBankNet

INIT_SIZE = 128  # long side of the paintings whose Grams the blend compares (cheap, as good as 256 px)
ZERO_SHOT_NAME = "your_painting"


def gram_features(grams: dict[str, torch.Tensor], config: LossConfig) -> torch.Tensor:
    """[S, D] flattened Grams (upper triangles, off-diagonals counted twice), each layer weighted so that squared
    distances between rows equal the model's style loss between the Grams (``sqrt(w_l) / C_l`` per layer)."""
    parts = []
    for layer, weight in zip(config.style_layers, config.layer_weights):
        g = grams[layer]
        c = g.shape[-1]
        iu = torch.triu_indices(c, c)
        flat = g[:, iu[0], iu[1]] * torch.where(iu[0] == iu[1], 1.0, math.sqrt(2.0))
        parts.append(flat * (math.sqrt(weight) / c))
    return torch.cat(parts, 1)


def nnls(a: torch.Tensor, b: torch.Tensor, sweeps: int = 500) -> torch.Tensor:
    """argmin_{w ≥ 0} ||a w − b||² for a [D, S], b [D], by cyclic coordinate descent on the normal equations (exact
    for a few dozen columns; SciPy's ``nnls`` would do the same, but SciPy is not a dependency for one function)."""
    a, b = a.double(), b.double()
    q, c = a.T @ a, a.T @ b
    w = torch.zeros(a.shape[1], dtype=torch.float64)
    for _ in range(sweeps):
        previous = w.clone()
        for j in range(len(w)):
            if q[j, j] > 0:
                w[j] = torch.clamp((c[j] - q[j] @ w + q[j, j] * w[j]) / q[j, j], min=0.0)
        if torch.allclose(w, previous, rtol=1e-9, atol=1e-12):
            break
    return w.float()


def blend_weights(model: ModelFile, loss_fn: PerceptualLoss, painting: torch.Tensor, size: int = INIT_SIZE
                  ) -> torch.Tensor:
    """Weights [S] (≥ 0, summing to 1) of the model's styles whose blend of Gram matrices best matches ``painting``
    ([1, 3, H, W] in [0, 1]); the plain mean when the model file stores no paintings (files from before they
    were stored) or nothing fits. The Grams are cached on disk (``StyleTargets.cached``)."""
    count = model.net.num_styles
    if any(s.painting is None for s in model.styles):
        return torch.full((count,), 1.0 / count)
    device = next(loss_fn.vgg.parameters()).device
    images = [resize_long_side(s.painting.permute(2, 0, 1)[None].float() / 255.0, size) for s in model.styles]
    images.append(resize_long_side(painting.float().cpu(), size))
    grams = loss_fn.style_targets([i.to(device) for i in images]).grams
    features = gram_features({k: v.cpu() for k, v in grams.items()}, loss_fn.config)
    weights = nnls(features[:-1].T, features[-1])
    if not float(weights.sum()) > 0:
        return torch.full((count,), 1.0 / count)
    return weights / weights.sum()


@torch.no_grad()
def init_rows(net: StyleBankNet, index: int, weights: torch.Tensor) -> None:
    """Set style ``index``'s γ/β rows to the blend ``weights`` [index] of the rows before it."""
    for norm in net.norms():
        for table in (norm.gamma, norm.beta):
            table[index] = weights.to(table) @ table[:index]


def painting_tensor(painting: ImageLike) -> torch.Tensor:
    """A painting given like ``stylize``'s image (path, PIL, HxWx3 uint8 array, [3|1, 3, H, W] float tensor) as
    one [1, 3, H, W] float image; ImageError for an unreadable file."""
    x = to_tensor(painting)
    return x[:1].float()


def painting_weights(model: ModelFile, painting: ImageLike, device: str | torch.device = "cpu") -> torch.Tensor:
    """The zero-shot style mix [S] for ``painting``: :func:`blend_weights` with the model's loss, the painting at
    the model's training style size."""
    from .refine import model_loss

    image = resize_long_side(painting_tensor(painting), style_size(model))
    return blend_weights(model, model_loss(model, torch.device(device)), image)


def style_size(model: ModelFile) -> int:
    """Long side the model's paintings were used at in training (and are stored at)."""
    return int(model.styles[0].training.get("style_size", 256)) if model.styles else 256


_MODELS: OrderedDict[tuple, ModelFile] = OrderedDict()


def zero_shot_model(model: ModelFile, painting: ImageLike, name: str = ZERO_SHOT_NAME,
                    device: str | torch.device = "cpu") -> ModelFile:
    """A new :class:`ModelFile` with one more style, ``name``, whose rows are the warm-start blend for ``painting``
    (no training; its painting is stored, so refine works with it). ``model`` and its file are not modified.
    The last 4 results are cached by model and painting pixels."""
    image = painting_tensor(painting)
    key = (id(model.net), model.net.num_styles, name,
           hashlib.sha256(image.contiguous().numpy().tobytes() + repr(tuple(image.shape)).encode()).hexdigest())
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    weights = painting_weights(model, image, device)
    net = copy.deepcopy(model.net).cpu()
    [new] = net.append_styles(1)
    init_rows(net, new, weights)
    training = {"added_by": "zero_shot", "style_size": style_size(model),
                "photo_size": model.styles[0].training.get("photo_size", 256) if model.styles else 256,
                "blend": {model.style_names[i]: round(float(w), 4) for i, w in enumerate(weights) if w > 0}}
    info = StyleInfo(name, "", make_thumbnail(image), training,
                     painting=make_painting(resize_long_side(image, style_size(model))))
    result = ModelFile(net.eval(), model.styles + [info], model.loss, model.extra)
    _MODELS[key] = result
    while len(_MODELS) > 4:
        _MODELS.popitem(last=False)
    return result
