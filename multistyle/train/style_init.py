"""Warm start of a new style: its γ/β rows begin as a convex blend of the existing rows, weighted by how well the
existing paintings' VGG Gram matrices explain the new painting's (non-negative least squares). The network already
blends styles by mixing rows, so a blend that matches the painting's statistics starts far closer than the mean
of the rows (measured: 1.8–3.7× the jointly trained row's held-out loss instead of 2.5–4.3×; MODEL.md). The
zero-shot row (:mod:`multistyle.zero_shot`) starts from the same blend."""

from __future__ import annotations

import math

import torch

from ..images import resize_long_side
from ..loss import LossConfig, PerceptualLoss
from ..modelfile import ModelFile
from ..nets import StyleBankNet

INIT_SIZE = 128  # long side of the paintings whose Grams the blend compares (cheap, as good as 256 px)


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
