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



class StyleNet(StyleBankNet):
    """Image transformer with conditional instance norm. Input and output: RGB in [0, 1], [B, 3, H, W] with H
    and W multiples of 4 (see :func:`multistyle.inference.pad_to_multiple`)."""

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


ARCHITECTURE_V2 = "cin-fast-v2"
BLOCK_KINDS = ("conv", "dw")
PADDINGS = ("replicate", "zeros")  # v2 conv padding (see FastStyleNet)


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


def _build_v1(num_styles: int, meta: dict) -> StyleBankNet:
    return StyleNet(num_styles, float(meta["width"]))


def _build_v2(num_styles: int, meta: dict) -> StyleBankNet:
    return FastStyleNet(num_styles, float(meta["width"]), int(meta["blocks"]), str(meta["block"]),
                        bool(meta["cond_encoder"]), str(meta.get("padding", "zeros")))  # files before padding: zeros


ARCHITECTURES = {ARCHITECTURE: _build_v1, ARCHITECTURE_V2: _build_v2}


def build_network(architecture: str, num_styles: int, meta: dict) -> StyleBankNet:
    """The network an architecture name and its metadata (``arch_params``) describe; KeyError/ValueError/TypeError
    on missing or bad parameters, KeyError for an unknown architecture."""
    return ARCHITECTURES[architecture](num_styles, meta)


def style_weight_matrix(num_styles: int, mix: Sequence[tuple[int, float]]) -> torch.Tensor:
    """[1, num_styles] weights from (index, weight) pairs (already validated, summing to 1)."""
    weights = torch.zeros(1, num_styles)
    for index, weight in mix:
        weights[0, index] += weight
    return weights
