"""Colour preservation (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer")."""

from __future__ import annotations

from typing import Literal

import kornia
import torch

ColorMode = Literal["luminance", "histogram"]
COLOR_MODES = ("luminance", "histogram")


def _fit(content: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if content.shape[-2:] == like.shape[-2:]:
        return content
    return kornia.geometry.transform.resize(content, like.shape[-2:], interpolation="bilinear", antialias=True)


def keep_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance-only transfer: Y of ``stylized`` with the Cb/Cr chroma of ``content`` (kornia YCbCr)."""
    y = kornia.color.rgb_to_ycbcr(stylized)[:, :1]
    cbcr = kornia.color.rgb_to_ycbcr(_fit(content, stylized).expand_as(stylized))[:, 1:]
    return kornia.color.ycbcr_to_rgb(torch.cat([y, cbcr], dim=1)).clamp(0, 1)


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(1e-8).sqrt()
    if inverse:
        values = 1.0 / values
    return vectors @ torch.diag(values) @ vectors.T


def match_color(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Linear colour histogram matching: recolour ``source`` [1,3,H,W] so its RGB mean and covariance equal
    those of ``reference`` (used on style images before computing their targets)."""
    src = source.reshape(3, -1).double()
    ref = reference.reshape(3, -1).double()
    mu_s, mu_r = src.mean(1, keepdim=True), ref.mean(1, keepdim=True)
    eye = 1e-5 * torch.eye(3, dtype=torch.float64, device=src.device)  # on the inputs' device (CUDA too)
    cov_s = torch.cov(src) + eye
    cov_r = torch.cov(ref) + eye
    transform = _sqrtm(cov_r) @ _sqrtm(cov_s, inverse=True)
    out = transform @ (src - mu_s) + mu_r
    return out.reshape(source.shape).to(source.dtype).clamp(0, 1)
