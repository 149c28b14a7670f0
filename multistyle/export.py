"""ONNX export of a model: dynamic batch and size, the style weights as an input."""

from __future__ import annotations

import copy
import os
import warnings

import torch

from .modelfile import ModelFile
from .paths import atomic_write


class OnnxWrapper(torch.nn.Module):
    """(image [B, 3, H, W] with H, W multiples of 4, style_weights [B, S]) → stylized image."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        return self.net(image, style_weights)


def export_onnx(model: ModelFile, path: str | os.PathLike, opset: int = 17) -> None:
    """Export to ONNX with dynamic batch/height/width and the style weights as an input (atomic write).

    A copy of the network is exported, so the caller's model keeps its device, dtype and mode."""
    net = copy.deepcopy(model.net).float().cpu().eval()
    example = (torch.rand(1, 3, 64, 64), torch.full((1, net.num_styles), 1.0 / net.num_styles))
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "style_weights": {0: "batch"},
            "stylized": {0: "batch", 2: "height", 3: "width"}}

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(OnnxWrapper(net).eval(), example, tmp, input_names=["image", "style_weights"],
                              output_names=["stylized"], dynamic_axes=axes, opset_version=opset, dynamo=False)

    atomic_write(path, write)
