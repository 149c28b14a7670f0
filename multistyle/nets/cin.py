"""The style bank: conditional instance norm (Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for
Artistic Style"). Every style is one row of γ/β in every :class:`ConditionalInstanceNorm`; a network built on
:class:`StyleBankNet` holds many styles in one set of conv weights, mixes them with a weight vector, and grows or
shrinks its bank (add a style by training only its new rows).
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn


class ConditionalInstanceNorm(nn.Module):
    """Instance norm without affine, then a per-style scale γ and shift β (tables [num_styles, C])."""

    def __init__(self, channels: int, num_styles: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))
        self._affine_cache: tuple | None = None  # see affine()

    def _mix(self, style_weights: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        w = style_weights.to(self.gamma.dtype)
        return (w @ self.gamma).to(dtype)[:, :, None, None], (w @ self.beta).to(dtype)[:, :, None, None]

    def affine(self, style_weights: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """γ, β [B, C, 1, 1] of a style mix. Without autograd (inference), the result is cached while the very same
        weights tensor comes back unmodified and γ/β are unchanged (checked by storage and version counter; the
        cache holds references, so no other tensor can take over those storages). Never cached while tracing or
        compiling, nor for inference-mode tensors (they have no version counter)."""
        if (torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling()
                or torch.onnx.is_in_onnx_export()):
            return self._mix(style_weights, dtype)
        try:
            versions = (style_weights._version, self.gamma._version, self.beta._version)
        except RuntimeError:  # an inference tensor
            return self._mix(style_weights, dtype)
        c = self._affine_cache
        if (c is not None and c[1] == versions and c[2] == dtype and _same(style_weights, c[0][0])
                and _same(self.gamma, c[0][1]) and _same(self.beta, c[0][2])):
            return c[3]
        with torch.inference_mode(False), torch.no_grad():  # a plain tensor, usable outside inference mode too
            result = self._mix(style_weights, dtype)
        self._affine_cache = ((style_weights, self.gamma.data, self.beta.data), versions, dtype, result)
        return result

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_affine_cache"] = None  # copies and pickles start without it
        return state

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        x = F.instance_norm(x, eps=1e-5)
        gamma, beta = self.affine(style_weights, x.dtype)
        return x * gamma + beta


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same storage, offset, shape, strides, dtype and device (the same data, whether or not the same object)."""
    return (a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()
            and a.dtype == b.dtype and a.device == b.device)


def instance_norm_affine(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, relu: bool = False,
                         eps: float = 1e-5) -> torch.Tensor:
    """Instance norm of [B, C, H, W] then ``x * gamma + beta`` (both [B|1, C, 1, 1]), optionally ReLU, computed
    in ``x``'s own memory format: F.instance_norm copies a channels_last tensor to NCHW and back, which made the
    norms cost more than the convs of the v2 net on CPU. Two-pass (centred) variance, so fp16 stays accurate."""
    x = x - x.mean((2, 3), keepdim=True)
    var = (x * x).mean((2, 3), keepdim=True)
    out = torch.addcmul(beta, x, gamma * torch.rsqrt(var + eps))
    return out.relu_() if relu else out


def norm_affine(norm: nn.Module, style_weights: torch.Tensor, dtype: torch.dtype
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """γ, β as [B|1, C, 1, 1] of a :class:`ConditionalInstanceNorm` (style rows mixed by ``style_weights``) or of an
    affine ``nn.InstanceNorm2d`` (the same for every style)."""
    if isinstance(norm, ConditionalInstanceNorm):
        return norm.affine(style_weights, dtype)  # cached at inference, like v1's norms
    return norm.weight.to(dtype)[None, :, None, None], norm.bias.to(dtype)[None, :, None, None]


class StyleBankNet(nn.Module):
    """Shared style-bank operations of every multi-style network: styles live in the γ/β tables of its
    :class:`ConditionalInstanceNorm` layers. Subclasses set ``architecture`` and ``multiple`` (input H and W
    must be multiples of it) and implement ``forward(x, style)`` and :meth:`arch_params`."""

    architecture = ""
    multiple = 4
    width: float

    def arch_params(self) -> dict:
        """What model-file metadata must hold (besides ``architecture`` and ``num_styles``) to rebuild this net."""
        return {"width": self.width}

    @property
    def num_styles(self) -> int:
        return self.norms()[-1].gamma.shape[0]

    def norms(self) -> list[ConditionalInstanceNorm]:
        """Every conditional instance norm, in forward order."""
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]

    def style_weights(self, style: torch.Tensor, batch: int) -> torch.Tensor:
        """[B, num_styles] weights from indices [B] (or a scalar) or from a weight matrix [B|1, num_styles]."""
        if style.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
            style = F.one_hot(style.long().reshape(-1), self.num_styles).float()
        if style.dim() == 1:
            style = style.unsqueeze(0)
        return style.to(self.norms()[-1].gamma.device).expand(batch, -1)

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
