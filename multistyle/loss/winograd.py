"""Winograd convolution F(4×4, 3×3) for the frozen loss network's 3×3 convolutions (Lavin & Gray 2016).

A 3×3 convolution computes each 4×4 output tile from a 6×6 input tile with 36 multiplies per channel pair instead
of 144: the input tiles and the filters are moved into the Winograd domain (``Bᵀ d B``, ``G g Gᵀ``), multiplied
there as 36 matrix products over the channels, and moved back (``Aᵀ m A``). The products run at the CPU's GEMM
speed, so a layer with many channels takes 0.3–0.6× oneDNN's direct convolution on an AVX2 CPU, where no bf16 is
there to halve the work (MODEL.md, "Best quality in seconds"). The result differs from the direct convolution by
~1e-5 relative, far below bf16's ~4e-3.

Only the input gradient is computed (the loss network is frozen): it is the exact adjoint of the same Winograd
transform with the same filters, so L-BFGS sees the gradient of the function it evaluates. The image is processed in
bands of tile rows so each band's Winograd-domain tensors stay in cache.

Used by the loss network inside :func:`fast_convolutions`: refine, ``--best``, Gatys from the network and the row
fits (add-style, zero-shot) with ``precision="auto"`` where the CPU has no native bf16; only for layers where it
pays (:func:`pays_off`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import torch
import torch.nn.functional as F

_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
BAND_BYTES = 4 << 20  # Winograd-domain bytes of one band (4 MB measured best of 1–8 MB on a 2-core AVX2 Xeon)

_enabled: contextvars.ContextVar[bool] = contextvars.ContextVar("winograd", default=False)


@lru_cache(maxsize=8)
def _transforms(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The input transform as a [36, 36] matrix on flattened 6×6 tiles (``vec(Bᵀ d B)``) and the output transform
    as a [36, 16] matrix (``vec(Aᵀ m A)``)."""
    bt, at = torch.tensor(_BT, dtype=torch.float64), torch.tensor(_AT, dtype=torch.float64)
    tile_in = torch.einsum("ai,bj->ijab", bt, bt).reshape(36, 36)
    tile_out = torch.einsum("ia,jb->abij", at, at).reshape(36, 16)
    return tile_in.to(device, dtype), tile_out.to(device, dtype)


def winograd_filters(weight: torch.Tensor) -> torch.Tensor:
    """3×3 filters [O, C, 3, 3] → Winograd-domain filters [36, C, O] (``G g Gᵀ``, computed in float64)."""
    if weight.shape[-2:] != (3, 3):
        raise ValueError(f"Winograd F(4x4, 3x3) needs 3x3 filters, not {tuple(weight.shape[-2:])}")
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ai,ocij,bj->abco", g, weight.detach().double(), g)
    return u.reshape(36, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def _grid(height: int, width: int) -> tuple[int, int]:
    return -(-height // 4), -(-width // 4)


def _band_rows(tiles_wide: int, channels: int) -> int:
    return max(1, BAND_BYTES // (tiles_wide * channels * 36 * 4))


def _rows(image: torch.Tensor, r0: int, r1: int, cols_n: int) -> torch.Tensor:
    """The input rows of tile rows ``r0:r1`` of one [H, W, C] map: rows ``4·r0 − 1`` to ``4·r1 + 1`` and columns
    −1 to ``4·cols_n + 1`` of the map, zero outside it (the convolution's padding and the grid's remainder)."""
    h, w = image.shape[:2]
    top, bottom = 4 * r0 - 1, 4 * r1 + 1
    part = image[max(0, top): min(h, bottom)]
    return F.pad(part, (0, 0, 1, 4 * cols_n + 1 - w, max(0, -top), bottom - max(top, min(h, bottom))))


def _forward(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """relu(conv3×3(x) + bias) of images [B, C, H, W] → [B, 4·R, 4·C', O] (the tile grid, channels last)."""
    batch, c, h, w = x.shape
    o = filters.shape[2]
    rows_n, cols_n = _grid(h, w)
    tile_in, tile_out = _transforms(x.dtype, x.device)
    out = x.new_empty(batch, 4 * rows_n, 4 * cols_n, o)
    band = _band_rows(cols_n, max(c, o))
    for image, result in zip(x.permute(0, 2, 3, 1), out):
        for r0 in range(0, rows_n, band):
            r1 = min(rows_n, r0 + band)
            t = (r1 - r0) * cols_n
            tiles = _rows(image, r0, r1, cols_n).unfold(0, 6, 4).unfold(1, 6, 4).reshape(t * c, 36)
            v = torch.mm(tile_in.t(), tiles.t())  # [36, T·C]
            m = torch.bmm(v.view(36, t, c), filters)  # [36, T, O]
            y = torch.mm(m.view(36, t * o).t(), tile_out)  # [T·O, 16]
            rows = result[4 * r0: 4 * r1]
            rows.unflatten(0, (r1 - r0, 4)).unflatten(2, (cols_n, 4)).copy_(
                y.view(r1 - r0, cols_n, o, 4, 4).permute(0, 3, 1, 4, 2))
            rows.add_(bias).clamp_(min=0)
    return out


def _backward(grad: torch.Tensor, out: torch.Tensor, filters: torch.Tensor, channels: int) -> torch.Tensor:
    """The input gradient [B, C, H, W] of :func:`_forward` (``out`` its result) for an output gradient
    [B, O, H, W]: the ReLU's mask, then the exact adjoint of the Winograd transforms."""
    batch, o, h, w = grad.shape
    c = channels
    rows_n, cols_n = _grid(h, w)
    tile_in, tile_out = _transforms(grad.dtype, grad.device)
    acc = grad.new_empty(batch, 4 * rows_n + 4, 4 * cols_n + 4, c)  # the padded inputs' gradients (+2 spare)
    acc[:, 4 * rows_n:].zero_()  # only halos land here and in the columns past the grid
    acc[:, :, 4 * cols_n:].zero_()
    band = _band_rows(cols_n, max(c, o))
    filters_t = filters.transpose(1, 2)  # [36, O, C]
    for image, kept, result in zip(grad.permute(0, 2, 3, 1), out, acc):
        below = None  # the last band's bottom halo: [2, C', 6, C], added once this band's rows are written
        for r0 in range(0, rows_n, band):
            r1 = min(rows_n, r0 + band)
            n, t = r1 - r0, (r1 - r0) * cols_n
            end = min(h, 4 * r1)  # the ReLU's gradient (zero where it clamped), padded to whole tiles
            g = torch.ops.aten.threshold_backward(image[4 * r0: end], kept[4 * r0: end, :w], 0.0)
            g = F.pad(g, (0, 0, 0, 4 * cols_n - w, 0, 4 * r1 - end))  # [4n, 4C', O]
            gy = g.unflatten(0, (n, 4)).unflatten(2, (cols_n, 4)).permute(0, 2, 4, 1, 3)  # [n, C', O, 4, 4]
            gm = torch.mm(tile_out, gy.reshape(t * o, 16).t())  # [36, T·O]
            gv = torch.bmm(gm.view(36, t, o), filters_t)  # [36, T, C]
            gd = torch.mm(gv.view(36, t * c).t(), tile_in.t())  # [T·C, 36]
            tiles = gd.view(n, cols_n, c, 6, 6).permute(0, 3, 1, 4, 2)  # [n, 6, C', 6, C], overlapping by 2
            _tile_grid(result, 4 * r0, n).copy_(tiles[:, :4, :, :4])  # each tile's own 4×4: every row once
            if below is not None:
                _add_halo_rows(result, 4 * r0, below)
            _tile_grid(result, 4 * r0, n, 4)[:, :, :, :2] += tiles[:, :4, :, 4:]  # right halos
            if n > 1:
                _add_halo_rows(result, 4 * r0 + 4, tiles[:-1, 4:])  # bottom halos inside the band
            below = tiles[-1:, 4:]
        _add_halo_rows(result, 4 * rows_n, below)
    return acc[:, 1: h + 1, 1: w + 1].permute(0, 3, 1, 2)


def _tile_grid(acc: torch.Tensor, top: int, n: int, left: int = 0) -> torch.Tensor:
    """Rows ``top`` … ``top + 4n`` and columns ``left`` … of a [H, W, C] map as [n, 4, W'/4, 4, C] tiles."""
    cols = (acc.shape[1] - 4) // 4
    return acc[top: top + 4 * n, left: left + 4 * cols].unflatten(0, (n, 4)).unflatten(2, (cols, 4))


def _add_halo_rows(acc: torch.Tensor, top: int, halo: torch.Tensor) -> None:
    """Add the bottom two rows of tile rows ([n, 2, C', 6, C]) to the map's rows below them, from ``top``."""
    n = halo.shape[0]
    _tile_grid(acc, top, n)[:, :2] += halo[..., :4, :]
    _tile_grid(acc, top, n, 4)[:, :2, :, :2] += halo[..., 4:, :]


class _WinogradConvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, filters: torch.Tensor,  # type: ignore[override]
                bias: torch.Tensor) -> torch.Tensor:
        out = _forward(x, filters, bias)
        ctx.save_for_backward(filters, out)
        ctx.channels = x.shape[1]
        return out[:, : x.shape[2], : x.shape[3]].permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        filters, out = ctx.saved_tensors
        return _backward(grad, out, filters, ctx.channels), None, None


def winograd_conv3x3_relu(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``relu(conv2d(x, weight, bias, padding=1))`` of ``x`` [B, C, H, W] for 3×3 filters given in the Winograd
    domain (:func:`winograd_filters`: [36, C, O]) → [B, O, H, W], channels-last in memory; differentiable in ``x``
    only (the filters and bias are constants)."""
    return _WinogradConvReLU.apply(x, filters, bias.detach())


def pays_off(in_channels: int, out_channels: int, height: int, width: int) -> bool:
    """Whether Winograd beats oneDNN's direct 3×3 convolution, forward and input gradient together: VGG's 64→128
    and everything wider (0.35–0.9× its time), on maps of 32×32 px or more (256 px² from 256 channels on); not
    3→64 or 64→64, whose products are too thin for the transforms' memory traffic (1.2–1.5×), nor smaller maps,
    where the per-band overhead wins (a 64 px loss evaluation: 1.05×). Measured on a 2-core Xeon, AVX2 cap."""
    narrow = min(in_channels, out_channels)
    return narrow >= 64 and in_channels + out_channels >= 192 and height * width >= (256 if narrow >= 256 else 1024)


@contextmanager
def fast_convolutions(enabled: bool = True) -> Iterator[None]:
    """Inside this block (this thread or task only), the loss network runs its wide 3×3 convolutions with Winograd
    in float32 (not under autocast, where the convolutions run in bf16)."""
    token = _enabled.set(enabled)
    try:
        yield
    finally:
        _enabled.reset(token)


@contextmanager
def loss_arithmetic(device_type: str, bf16: bool, winograd: bool) -> Iterator[None]:
    """The loss network's arithmetic inside this block: bf16 autocast, Winograd convolutions in fp32, or plain
    fp32 (both False) — what ``precision`` resolved to for Gatys, refine and the row fits."""
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16), fast_convolutions(winograd):
        yield


def fast_enabled() -> bool:
    """Whether :func:`fast_convolutions` is on here."""
    return _enabled.get()
