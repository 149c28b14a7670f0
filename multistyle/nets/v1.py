"""v1: the multi-style transformer network of Dumoulin et al. (2017) (Johnson et al.'s encoder / residual body /
decoder with conditional instance norm). Forward: a style as an index tensor [B] (one-hot) or a weight matrix
[B, num_styles] that mixes the styles' γ/β rows; ONNX-exportable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cin import ConditionalInstanceNorm, StyleBankNet

ARCHITECTURE = "cin-transformer-v1"
BASE_CHANNELS = (32, 64, 128)
NUM_RESIDUAL = 5


def scaled_channels(width: float) -> tuple[int, int, int]:
    """Channel counts of the three stages for a width multiplier (at least 4 each)."""
    if not (0.05 <= width <= 4):
        raise ValueError(f"width must be between 0.05 and 4, not {width}")
    return tuple(max(4, int(round(c * width))) for c in BASE_CHANNELS)  # type: ignore[return-value]


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


class StyleNet(StyleBankNet):
    """Image transformer with conditional instance norm. Input and output: RGB in [0, 1], [B, 3, H, W] with H
    and W multiples of 4 (see :func:`multistyle.stylizer.pad_to_multiple`)."""

    architecture = ARCHITECTURE
    multiple = 4

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

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        weights = self.style_weights(style, x.shape[0])
        for layer in self.layers:
            x = layer(x, weights)
        return torch.sigmoid(self.output(x, weights))
