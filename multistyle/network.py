"""The multi-style transformer network of Dumoulin, Shlens & Kudlur (2017), "A Learned Representation for
Artistic Style": one set of conv weights, and per style one row of γ/β in every conditional instance norm.

The forward pass is ONNX-exportable: a style is given either as an index tensor [B] (turned into one-hot
weights) or as a weight matrix [B, num_styles] that mixes the styles' γ/β rows as a convex combination.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "cin-transformer-v1"
BASE_CHANNELS = (32, 64, 128)
NUM_RESIDUAL = 5


def scaled_channels(width: float) -> tuple[int, int, int]:
    """Channel counts of the three stages for a width multiplier (at least 4 each)."""
    if not (0.05 <= width <= 4):
        raise ValueError(f"width must be between 0.05 and 4, not {width}")
    return tuple(max(4, int(round(c * width))) for c in BASE_CHANNELS)  # type: ignore[return-value]


class ConditionalInstanceNorm(nn.Module):
    """Instance norm without affine, then a per-style scale γ and shift β (tables [num_styles, C])."""

    def __init__(self, channels: int, num_styles: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        x = F.instance_norm(x, eps=1e-5)
        w = style_weights.to(self.gamma.dtype)
        gamma = (w @ self.gamma).to(x.dtype)[:, :, None, None]
        beta = (w @ self.beta).to(x.dtype)[:, :, None, None]
        return x * gamma + beta


class ConvCIN(nn.Module):
    """Reflection-padded conv → conditional instance norm → optional ReLU (optional nearest ×2 upsample first)."""

    def __init__(self, cin: int, cout: int, kernel: int, num_styles: int, stride: int = 1,
                 upsample: bool = False, relu: bool = True) -> None:
        super().__init__()
        self.upsample = upsample
        self.relu = relu
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.norm = ConditionalInstanceNorm(cout, num_styles)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.norm(self.conv(self.pad(x)), style_weights)
        return F.relu(x) if self.relu else x


class ResidualCIN(nn.Module):
    def __init__(self, channels: int, num_styles: int) -> None:
        super().__init__()
        self.conv1 = ConvCIN(channels, channels, 3, num_styles)
        self.conv2 = ConvCIN(channels, channels, 3, num_styles, relu=False)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x, style_weights), style_weights)


class StyleNet(nn.Module):
    """Image transformer with conditional instance norm. Input and output: RGB in [0, 1], [B, 3, H, W] with H
    and W multiples of 4 (see :func:`multistyle.inference.pad_to_multiple`)."""

    def __init__(self, num_styles: int, width: float = 1.0) -> None:
        super().__init__()
        if num_styles < 1:
            raise ValueError("a StyleNet needs at least one style")
        self.width = float(width)
        c1, c2, c3 = scaled_channels(width)
        self.layers = nn.ModuleList([
            ConvCIN(3, c1, 9, num_styles),
            ConvCIN(c1, c2, 3, num_styles, stride=2),
            ConvCIN(c2, c3, 3, num_styles, stride=2),
            *[ResidualCIN(c3, num_styles) for _ in range(NUM_RESIDUAL)],
            ConvCIN(c3, c2, 3, num_styles, upsample=True),
            ConvCIN(c2, c1, 3, num_styles, upsample=True),
        ])
        self.output = ConvCIN(c1, 3, 9, num_styles, relu=False)

    @property
    def num_styles(self) -> int:
        return self.output.norm.gamma.shape[0]

    def norms(self) -> list[ConditionalInstanceNorm]:
        """Every conditional instance norm, in forward order."""
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]

    def style_weights(self, style: torch.Tensor, batch: int) -> torch.Tensor:
        """[B, num_styles] weights from indices [B] (or a scalar) or from a weight matrix [B|1, num_styles]."""
        if style.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
            style = F.one_hot(style.long().reshape(-1), self.num_styles).float()
        if style.dim() == 1:
            style = style.unsqueeze(0)
        return style.to(self.output.norm.gamma.device).expand(batch, -1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        weights = self.style_weights(style, x.shape[0])
        for layer in self.layers:
            x = layer(x, weights)
        return torch.sigmoid(self.output(x, weights))

    # ---- style bank operations -------------------------------------------------------------------------------

    @torch.no_grad()
    def append_styles(self, count: int = 1, init_from: int | None = None) -> list[int]:
        """Add ``count`` styles; their γ/β rows start as the mean of the existing rows, or as a copy of style
        ``init_from``. Returns the new indices. Existing rows are copied unchanged."""
        if count < 1:
            raise ValueError("count must be >= 1")
        old = self.num_styles
        if init_from is not None and not 0 <= init_from < old:
            raise IndexError(f"style index {init_from} out of range 0..{old - 1}")
        for norm in self.norms():
            for name in ("gamma", "beta"):
                table = getattr(norm, name)
                row = table[init_from] if init_from is not None else table.mean(0)
                grown = torch.cat([table.data, row.expand(count, -1).clone()], 0)
                setattr(norm, name, nn.Parameter(grown, requires_grad=table.requires_grad))
        return list(range(old, old + count))

    @torch.no_grad()
    def remove_style(self, index: int) -> None:
        """Drop one style's rows (the styles after it shift down by one)."""
        if self.num_styles == 1:
            raise ValueError("cannot remove the only style")
        if not 0 <= index < self.num_styles:
            raise IndexError(f"style index {index} out of range 0..{self.num_styles - 1}")
        keep = [i for i in range(self.num_styles) if i != index]
        for norm in self.norms():
            for name in ("gamma", "beta"):
                table = getattr(norm, name)
                setattr(norm, name, nn.Parameter(table.data[keep].clone(), requires_grad=table.requires_grad))

    def style_parameters(self) -> list[nn.Parameter]:
        """All γ/β tables."""
        return [p for norm in self.norms() for p in (norm.gamma, norm.beta)]

    def freeze_except_styles(self, rows: Iterable[int]) -> list[nn.Parameter]:
        """Freeze every conv weight and every γ/β row except ``rows``: gradients of the other rows are zeroed
        by a hook, so even an optimizer step with momentum cannot move them. Returns the trainable tables."""
        rows = sorted(set(rows))
        for p in self.parameters():
            p.requires_grad_(False)
        mask = torch.zeros(self.num_styles, 1)
        mask[rows] = 1.0
        tables = self.style_parameters()
        for table in tables:
            table.requires_grad_(True)
            table.register_hook(lambda grad, m=mask: grad * m.to(grad))
        return tables

    def style_rows(self, index: int) -> dict[str, torch.Tensor]:
        """Copies of one style's γ/β rows, keyed by parameter name."""
        return {name: p.detach()[index].clone() for name, p in self.named_parameters()
                if name.endswith((".gamma", ".beta"))}


def style_weight_matrix(num_styles: int, mix: Sequence[tuple[int, float]]) -> torch.Tensor:
    """[1, num_styles] weights from (index, weight) pairs (already validated, summing to 1)."""
    weights = torch.zeros(1, num_styles)
    for index, weight in mix:
        weights[0, index] += weight
    return weights
