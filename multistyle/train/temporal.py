"""Temporal stability from still images: a small random smooth warp W (translation, rotation, zoom and a smooth local
displacement) and light noise n stand in for the next video frame, and the network is asked to commute with the
warp: |S(W(x) + n) − W(S(x))| (single-frame regularisation for video style transfer, as in Eilertsen et al.,
CVPR 2019, and the compound regularisation of Wang et al., AAAI 2020)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class WarpRange:
    """How far a random warp moves a frame: about one frame of hand-held camera motion."""

    shift: float = 0.03  # translation, fraction of the image size
    rotate: float = 2.0  # degrees
    zoom: float = 0.03  # relative scale change
    local: float = 0.01  # amplitude of the smooth local displacement, fraction of the image size
    noise: float = 0.02  # std of the added pixel noise (images in 0..1)


def random_grid(batch: int, height: int, width: int, generator: torch.Generator, warp: WarpRange = WarpRange(),
                device: torch.device | str = "cpu") -> torch.Tensor:
    """A sampling grid [B, H, W, 2] for ``F.grid_sample`` (normalised coordinates): a random similarity transform
    plus a smooth random displacement field (a 4×4 field upsampled bicubically)."""
    u = lambda *shape: torch.rand(*shape, generator=generator) * 2 - 1  # noqa: E731 - uniform in [-1, 1]
    angle = u(batch) * math.radians(warp.rotate)
    scale = 1 + u(batch) * warp.zoom
    shift = u(batch, 2) * warp.shift * 2  # normalised coordinates span 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, [batch, 3, height, width], align_corners=False)
    field = u(batch, 2, 4, 4) * warp.local * 2
    field = F.interpolate(field, size=(height, width), mode="bicubic", align_corners=False)
    return (grid + field.permute(0, 2, 3, 1)).to(device)


def apply_grid(images: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` [B, C, H, W] sampled at ``grid`` (bilinear, borders replicated) and the [B, 1, H, W] mask of the
    pixels whose source lies inside the image (the rest has no true counterpart)."""
    warped = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    inside = (grid.abs() <= 1).all(-1, keepdim=True).permute(0, 3, 1, 2).to(images.dtype)
    return warped, inside


def temporal_loss(net: torch.nn.Module, batch: torch.Tensor, output: torch.Tensor, style: torch.Tensor,
                  generator: torch.Generator, warp: WarpRange = WarpRange()) -> torch.Tensor:
    """Mean |S(W(x) + n) − W(S(x))| over the pixels W keeps inside the frame; ``output`` is S(x) for ``batch`` x
    (already computed for the other losses, so one extra network pass)."""
    b, _, h, w = batch.shape
    grid = random_grid(b, h, w, generator, warp, batch.device)
    warped_input, inside = apply_grid(batch, grid)
    noise = torch.randn(warped_input.shape, generator=generator).to(batch.device) * warp.noise
    moved = net((warped_input + noise).clamp(0, 1), style)
    warped_output, _ = apply_grid(output, grid)
    return ((moved - warped_output).abs() * inside).sum() / (inside.sum() * output.shape[1]).clamp_min(1)
