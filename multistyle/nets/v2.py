"""v2 (the default, CPU-first): v1's encoder / residual body / decoder without its two full-resolution 9×9 convs
(space-to-depth in, pixel-shuffle out), instance norms computed in the input's memory format (channels_last)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cin import (
    ConditionalInstanceNorm,
    StyleBankNet,
    instance_norm_affine,
    norm_affine,
)
from .v1 import scaled_channels

ARCHITECTURE_V2 = "cin-fast-v2"
BLOCK_KINDS = ("conv", "dw")
PADDINGS = ("replicate", "zeros")  # v2 conv padding (see FastStyleNet)



class ConvNorm(nn.Module):
    """Padded conv (``padding``: "zeros", free, or "replicate", a padding copy) → instance norm, conditional
    (per-style γ/β) or plain with one learned affine → optional ReLU. ``depthwise``: a 3×3 depthwise conv then a
    1×1 conv (separable)."""

    def __init__(self, cin: int, cout: int, kernel: int, num_styles: int, stride: int = 1, relu: bool = True,
                 conditional: bool = True, depthwise: bool = False, padding: str = "zeros") -> None:
        super().__init__()
        self.relu = relu
        if depthwise:
            self.conv = nn.Sequential(nn.Conv2d(cin, cin, kernel, stride, kernel // 2, groups=cin, bias=False,
                                                padding_mode=padding),
                                      nn.Conv2d(cin, cout, 1))
        else:
            self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, padding_mode=padding)
        self.norm = ConditionalInstanceNorm(cout, num_styles) if conditional else nn.InstanceNorm2d(cout, affine=True)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        gamma, beta = norm_affine(self.norm, style_weights, x.dtype)
        return instance_norm_affine(self.conv(x), gamma, beta, self.relu)


class ResidualV2(nn.Module):
    """Two :class:`ConvNorm` (full 3×3 or depthwise-separable) with a skip connection."""

    def __init__(self, channels: int, num_styles: int, depthwise: bool, conditional: bool = True,
                 padding: str = "zeros") -> None:
        super().__init__()
        self.conv1 = ConvNorm(channels, channels, 3, num_styles, conditional=conditional, depthwise=depthwise,
                              padding=padding)
        self.conv2 = ConvNorm(channels, channels, 3, num_styles, relu=False, conditional=conditional,
                              depthwise=depthwise, padding=padding)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x, style_weights), style_weights)


class FastStyleNet(StyleBankNet):
    """v2, latency-first: the same encoder / residual body / decoder as :class:`StyleNet` without its two
    full-resolution 9×9 convs. Space-to-depth (pixel_unshuffle ×2) → 3×3 conv at 1/2 res → 3×3/2 conv → ``blocks``
    residual blocks at 1/4 res → nearest ×2 + 3×3 conv at 1/2 res → 3×3 conv to 12 channels → pixel_shuffle ×2
    → conditional instance norm on RGB → sigmoid. Channels: v1's second and third stage (64, 128) × ``width``.
    ``block``: "conv" (two 3×3 convs per block) or "dw" (depthwise-separable). ``cond_encoder=False`` uses plain
    instance norm in the encoder (styles live in the body and decoder only). ``padding``: "replicate" (the
    default; about 6 % slower on a CPU) or "zeros" (the first v2 files; trained with zeros, the network paints a
    bright band a few pixels wide along the image borders). Input H, W: multiples of 4."""

    architecture = ARCHITECTURE_V2
    multiple = 4

    def __init__(self, num_styles: int, width: float = 0.25, blocks: int = 3, block: str = "conv",
                 cond_encoder: bool = True, padding: str = "replicate") -> None:
        super().__init__()
        if num_styles < 1:
            raise ValueError("a FastStyleNet needs at least one style")
        if block not in BLOCK_KINDS:
            raise ValueError(f"block must be one of {BLOCK_KINDS}, not {block!r}")
        if not (isinstance(blocks, int) and 0 <= blocks <= 16):
            raise ValueError(f"blocks must be an integer in 0..16, not {blocks!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}")
        self.width, self.blocks, self.block, self.cond_encoder = float(width), blocks, block, bool(cond_encoder)
        self.padding = padding
        _, c1, c2 = scaled_channels(width)
        self.encoder = nn.ModuleList([
            ConvNorm(12, c1, 3, num_styles, conditional=cond_encoder, padding=padding),
            ConvNorm(c1, c2, 3, num_styles, stride=2, conditional=cond_encoder, padding=padding),
        ])
        self.body = nn.ModuleList([ResidualV2(c2, num_styles, block == "dw", padding=padding) for _ in range(blocks)])
        self.up = ConvNorm(c2, c1, 3, num_styles, padding=padding)
        self.head = nn.Conv2d(c1, 12, 3, 1, 1, padding_mode=padding)
        self.output_norm = ConditionalInstanceNorm(3, num_styles)

    def arch_params(self) -> dict:
        return {"width": self.width, "blocks": self.blocks, "block": self.block, "cond_encoder": self.cond_encoder,
                "padding": self.padding}

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        weights = self.style_weights(style, x.shape[0])
        x = F.pixel_unshuffle(x, 2)
        for layer in self.encoder:
            x = layer(x, weights)
        for layer in self.body:
            x = layer(x, weights)
        x = self.up(F.interpolate(x, scale_factor=2.0, mode="nearest"), weights)
        x = F.pixel_shuffle(self.head(x), 2)
        gamma, beta = norm_affine(self.output_norm, weights, x.dtype)
        return torch.sigmoid(instance_norm_affine(x, gamma, beta))
