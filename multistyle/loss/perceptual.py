"""Perceptual losses shared by Gatys optimisation, network training and evaluation (one code path).

* content loss: mean squared error of VGG features;
* style loss: weighted sum over layers of the MSE between normalised Gram matrices;
* total variation (kornia);
* :class:`StyleTargets`: the precomputed Gram targets of one or more style images (the "teacher targets").
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from ..paths import atomic_write, cache_dir
from ..styles import validate_blend_weights


@dataclass
class LossConfig:
    """Layers and weights of the perceptual loss. Stored in model files so training is reproducible."""

    content_layers: tuple[str, ...] | None = None  # None: the loss network's defaults
    style_layers: tuple[str, ...] | None = None
    content_weight: float = 1.0
    style_weight: float = 300.0
    tv_weight: float = 2000.0
    style_layer_weights: tuple[float, ...] | None = None  # None: equal weights summing to 1
    pooling: str = "avg"
    loss_net: str = "vgg19"

    def __post_init__(self) -> None:
        from .networks import get_spec

        spec = get_spec(self.loss_net)
        self.content_layers = tuple(self.content_layers or spec.content_layers)
        self.style_layers = tuple(self.style_layers or spec.style_layers)
        unknown = set(self.content_layers + self.style_layers) - set(spec.layers)
        if unknown:
            raise ValueError(f"unknown {self.loss_net} layers {sorted(unknown)}; choose from {', '.join(spec.layers)}")
        if self.pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', not {self.pooling!r}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name.replace('_', '-')} must be a finite number >= 0, not {value!r}")
        if self.style_layer_weights is not None:
            self.style_layer_weights = tuple(float(w) for w in self.style_layer_weights)
            if len(self.style_layer_weights) != len(self.style_layers):
                raise ValueError("give one style layer weight per style layer")

    @property
    def layer_weights(self) -> tuple[float, ...]:
        """Per-style-layer weights (equal and summing to 1 unless given)."""
        if self.style_layer_weights is not None:
            return self.style_layer_weights
        return tuple(1.0 / len(self.style_layers) for _ in self.style_layers)

    @property
    def all_layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "LossConfig":
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})


class _Gram(torch.autograd.Function):
    """F·Fᵀ / n with the gradient (∂L/∂G + ∂L/∂Gᵀ)·F / n in one product (autograd's own takes two products, a
    transpose and a sum over the [C, H·W] features); channels-last features are read in place, not copied."""

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b, c, h, w = features.shape
        nhwc = features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous()
        flat = features.permute(0, 2, 3, 1).reshape(b, h * w, c) if nhwc else features.reshape(b, c, h * w)
        ctx.save_for_backward(flat)
        ctx.nhwc, ctx.shape = nhwc, (b, c, h, w)
        gram = torch.bmm(flat.transpose(1, 2), flat) if nhwc else torch.bmm(flat, flat.transpose(1, 2))
        return gram / (c * h * w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (flat,) = ctx.saved_tensors
        b, c, h, w = ctx.shape
        sym = (grad + grad.transpose(1, 2)) / (c * h * w)
        if ctx.nhwc:
            return torch.bmm(flat, sym).view(b, h, w, c).permute(0, 3, 1, 2)
        return torch.bmm(sym, flat).view(b, c, h, w)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of [B, C, H, W] features normalised by C·H·W → [B, C, C], always in float32.

    The raw sums reach 1e6–5e8 on Caffe-scale VGG features, beyond float16's 65504, so the product runs in
    float32 even inside ``torch.autocast`` (which would otherwise run ``bmm`` in float16 and give inf).
    """
    with torch.autocast(features.device.type, enabled=False):
        return _Gram.apply(features.float())


def content_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor],
                 layers: Iterable[str]) -> torch.Tensor:
    """Mean over ``layers`` of the MSE between features and content targets."""
    layers = tuple(layers)
    return sum(F.mse_loss(features[l].float(), targets[l].float().expand_as(features[l]))
               for l in layers) / len(layers)


def style_loss(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               layers: Sequence[str], layer_weights: Sequence[float]) -> torch.Tensor:
    """Weighted sum over layers of the MSE between Gram matrices of features and targets ([1|B, C, C])."""
    total = 0.0
    for layer, weight in zip(layers, layer_weights):
        gram = gram_matrix(features[layer])
        total = total + weight * F.mse_loss(gram, target_grams[layer].float().expand_as(gram))
    return total  # type: ignore[return-value]


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (kornia total variation, mean reduction)."""
    return kornia.losses.total_variation(image, reduction="mean").mean()


@dataclass
class LossTerms:
    """The weighted loss terms of one evaluation (each already multiplied by its weight)."""

    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor
    total: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.total = self.content + self.style + self.tv

    def item(self) -> dict[str, float]:
        return {k: float(getattr(self, k).detach()) for k in ("content", "style", "tv", "total")}


class StyleTargets:
    """Gram targets of ``S`` style images: ``grams[layer]`` has shape [S, C, C].

    Picking rows by label, or mixing them with weights, gives the targets of a batch or of a blend.
    """

    def __init__(self, grams: dict[str, torch.Tensor], names: Sequence[str]) -> None:
        self.grams = grams
        self.names = list(names)

    def __len__(self) -> int:
        return len(self.names)

    def to(self, device: torch.device | str) -> "StyleTargets":
        return StyleTargets({k: v.to(device) for k, v in self.grams.items()}, self.names)

    @classmethod
    @torch.no_grad()
    def compute(cls, vgg: nn.Module, images: Sequence[torch.Tensor], layers: Sequence[str],
                names: Sequence[str] | None = None) -> "StyleTargets":
        """Grams of each [1, 3, H, W] style image (each at its own size) at ``layers``."""
        per_layer: dict[str, list[torch.Tensor]] = {l: [] for l in layers}
        for image in images:
            feats = vgg(image.to(next(vgg.parameters()).device), layers)
            for l in layers:
                per_layer[l].append(gram_matrix(feats[l])[0])
        grams = {l: torch.stack(v) for l, v in per_layer.items()}
        return cls(grams, names or [f"style{i}" for i in range(len(images))])

    @classmethod
    def cached(cls, vgg: nn.Module, images: Sequence[torch.Tensor], layers: Sequence[str],
               names: Sequence[str] | None = None, directory: str | os.PathLike | None = None) -> "StyleTargets":
        """Like :meth:`compute`, but each style's Grams are cached on disk, keyed by the pixels and settings."""
        from safetensors.torch import load_file, save_file

        folder = Path(directory) if directory else cache_dir() / "style_targets"
        device = next(vgg.parameters()).device
        parts = []
        for image in images:
            key = hashlib.sha256(image.detach().cpu().float().contiguous().numpy().tobytes())
            key.update(repr((tuple(layers), vgg.cache_key, tuple(image.shape))).encode())
            path = folder / f"{key.hexdigest()[:32]}.safetensors"
            try:
                grams = load_file(str(path))
                if set(grams) != set(layers):
                    raise KeyError
            except Exception:
                grams = {l: g[0] for l, g in cls.compute(vgg, [image], layers).grams.items()}
                try:
                    cpu_grams = {k: v.cpu().contiguous() for k, v in grams.items()}
                    atomic_write(path, lambda tmp, g=cpu_grams: save_file(g, tmp))
                except OSError:
                    pass  # unwritable cache: just recompute next time
            parts.append({l: g.to(device) for l, g in grams.items()})  # hits load on the CPU, misses are on device
        stacked = {l: torch.stack([p[l] for p in parts]) for l in layers}
        return cls(stacked, names or [f"style{i}" for i in range(len(images))])

    def blend(self, weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
        """Targets [1, C, C] of a weighted blend of all styles (weights validated; None = equal)."""
        w = validate_blend_weights(weights if weights is not None else [1.0] * len(self), len(self))
        return self.mix(w.unsqueeze(0))

    def mix(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """Targets [B, C, C] for a batch given a [B, S] weight matrix (rows summing to 1)."""
        return {l: torch.einsum("bs,scd->bcd", weights.to(g), g) for l, g in self.grams.items()}

    def select(self, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Targets [B, C, C] for a batch of style indices."""
        return {l: g[labels.to(g.device)] for l, g in self.grams.items()}


class PerceptualLoss(nn.Module):
    """Content + style + TV loss on a frozen VGG19, configured by a :class:`LossConfig`."""

    def __init__(self, config: LossConfig | None = None, vgg: nn.Module | None = None,
                 weights_path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.config = config or LossConfig()
        if vgg is None:
            from .networks import build_loss_net

            vgg = build_loss_net(self.config.loss_net, self.config.all_layers, self.config.pooling, weights_path)
        self.vgg = vgg  # the loss network (VGG19 unless LossConfig.loss_net says otherwise)

    def content_targets(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """Detached content-layer features of ``content`` [B, 3, H, W]."""
        with torch.no_grad():
            return self.vgg(content, self.config.content_layers)

    def style_targets(self, images: Sequence[torch.Tensor], names: Sequence[str] | None = None,
                      cache: bool = True) -> StyleTargets:
        """Gram targets of style images, each at its own size (cached on disk by default)."""
        make = StyleTargets.cached if cache else StyleTargets.compute
        return make(self.vgg, images, self.config.style_layers, names)

    @torch.no_grad()
    def trimmed(self, image: torch.Tensor, content_targets: Mapping[str, torch.Tensor],
                style_grams: Mapping[str, torch.Tensor], threshold: float) -> "PerceptualLoss":
        """This loss without its deepest style layers (those past every content layer, so the loss network can
        stop earlier) whose weighted terms on ``image`` add up to less than ``threshold`` of its total loss; the
        same loss network, the kept layers' weights unchanged. ``self`` when nothing is that small."""
        from .networks import get_spec

        cfg = self.config
        order = get_spec(cfg.loss_net).layers
        feats = self.vgg(image, cfg.all_layers)  # one pass for the total and the per-layer terms
        total = float(self.terms(image, feats, content_targets, style_grams).total)
        last_content = max(order.index(layer) for layer in cfg.content_layers)
        kept = sorted(zip(cfg.style_layers, cfg.layer_weights), key=lambda pair: order.index(pair[0]))
        dropped = 0.0
        while len(kept) > 1 and order.index(kept[-1][0]) > last_content:
            layer, weight = kept[-1]
            term = cfg.style_weight * weight * float(style_loss(feats, style_grams, (layer,), (1.0,)))
            if dropped + term >= threshold * total:
                break
            dropped += term
            kept.pop()
        if len(kept) == len(cfg.style_layers):
            return self
        return PerceptualLoss(replace(cfg, style_layers=tuple(l for l, _ in kept),
                                      style_layer_weights=tuple(w for _, w in kept)), vgg=self.vgg)

    def forward(self, image: torch.Tensor, content_targets: Mapping[str, torch.Tensor],
                style_grams: Mapping[str, torch.Tensor]) -> LossTerms:
        """Weighted loss terms of ``image`` [B, 3, H, W] against content features and Gram targets. The loss
        network may run in reduced precision under autocast; Grams, MSEs and the terms are float32."""
        return self.terms(image, self.vgg(image, self.config.all_layers), content_targets, style_grams)

    def terms(self, image: torch.Tensor, feats: Mapping[str, torch.Tensor], content_targets: Mapping[str, torch.Tensor],
              style_grams: Mapping[str, torch.Tensor]) -> LossTerms:
        """The weighted terms of ``image`` from its loss-network features ``feats`` (every layer of the config)."""
        cfg = self.config
        with torch.autocast(image.device.type, enabled=False):
            return LossTerms(
                content=cfg.content_weight * content_loss(feats, content_targets, cfg.content_layers),
                style=cfg.style_weight * style_loss(feats, style_grams, cfg.style_layers, cfg.layer_weights),
                tv=cfg.tv_weight * tv_loss(image.float()),
            )
