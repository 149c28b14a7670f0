"""int8 convolutions as OpenVINO's CPU plugin executes them, simulated in float (fake quantization): weights
symmetric int8 per output channel, inputs asymmetric uint8 per tensor. Every other op (the instance norms and their
per-style γ/β rows, the residual sums, the sigmoid) stays float. Exported to ONNX, each fake quantizer becomes a
QuantizeLinear/DequantizeLinear pair, which OpenVINO turns into a FakeQuantize and runs as an int8 convolution.

:func:`quantize_convs` swaps a network's ``nn.Conv2d`` for :class:`QuantConv2d` (a copy; the swap keeps the
state-dict names, plus each conv's input range), :func:`calibrate` sets the input ranges from sample batches; the
fine-tuning is :mod:`multistyle.train.quantize`.

An int8 file (``NAME.int8.safetensors`` beside a packaged model, or in the user's data folder for a model of
their own: ``multistyle quantize``) holds the quantized convs' weights and ranges, the
fingerprint of the float network they belong to and the per-style check made when it was written (the perceptual
loss of the OpenVINO int8 graph against the float network's on held-out photos, every style). :func:`int8_network`
gives the int8 network only for that float network, and only while every style row it holds was checked: a style
added later gets no int8 silently."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import torch
from torch import nn

from ..modelfile import ASSETS
from .graph import _code_hash, conditional_norms, fingerprint

INT8_DIR = ASSETS  # where the packaged models' int8 files are; a user's own are in user_data_dir()
SUFFIX = ".int8.safetensors"
MAX_LOSS_RATIO = 1.005  # the check: int8's perceptual loss at most 0.5 % over the float network's, every style
DIFF_SLACK = 1.5  # auto's probe: int8's mean pixel difference at most this × the largest one the check recorded
WEIGHT_MAX = 63  # weights on [-63, 63]: CPUs without VNNI sum u8 × s8 pairs in int16 (AVX2 vpmaddubsw), and
# 2 × 255 × 127 overflows it; 2 × 255 × 64 does not (NNCF's "overflow fix" also spends this bit)


class QuantConv2d(nn.Conv2d):
    """A conv whose input is fake-quantized to uint8 over [``lo``, ``hi``] (per tensor) and whose weights are
    fake-quantized to int8 per output channel (scale = max |w| / 127). Gradients pass straight through inside
    the ranges. ``observing``: record the input's range instead of quantizing (calibration)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.ones(()))
        self.register_buffer("weight_max", torch.tensor(float(WEIGHT_MAX)))
        self.observing = False

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> QuantConv2d:
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                  conv.groups, conv.bias is not None, conv.padding_mode)
        new.load_state_dict(conv.state_dict(), strict=False)
        return new.to(conv.weight.device)

    def input_qparams(self) -> tuple[float, int]:
        """(scale, zero point) of the uint8 input grid; the range always holds 0 (zero padding stays exact)."""
        lo, hi = min(float(self.lo), 0.0), max(float(self.hi), 1e-6)
        scale = (hi - lo) / 255
        return scale, round(-lo / scale)

    def quant_weight(self) -> torch.Tensor:
        w = self.weight
        scale = (w.detach().abs().amax(dim=(1, 2, 3)) / self.weight_max).clamp_min(1e-12).float()
        zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -128, 127)  # ONNX's int8 range; -128 unused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            with torch.no_grad():
                self.lo.copy_(torch.minimum(self.lo, x.min()))
                self.hi.copy_(torch.maximum(self.hi, x.max()))
            return super().forward(x)
        scale, zero = self.input_qparams()
        x = torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)
        return self._conv_forward(x, self.quant_weight(), self.bias)


def conv_names(net: nn.Module) -> list[str]:
    """The names of ``net``'s convolutions, in module order."""
    return [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]


def quantize_convs(net: nn.Module, keep_float: Iterable[str] = ()) -> nn.Module:
    """A copy of ``net`` with every ``nn.Conv2d`` but those named in ``keep_float`` a :class:`QuantConv2d`."""
    net = copy.deepcopy(net)
    keep = set(keep_float)
    for name in conv_names(net):
        if name in keep:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, attr, QuantConv2d.from_conv(getattr(parent, attr)))
    return net


def quant_convs(net: nn.Module) -> list[QuantConv2d]:
    """``net``'s fake-quantized convolutions, in module order."""
    return [m for m in net.modules() if isinstance(m, QuantConv2d)]


@torch.no_grad()
def calibrate(net: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Set every :class:`QuantConv2d`'s input range to the min/max ``net`` (image, style weights) sees on
    ``batches``."""
    convs = quant_convs(net)
    for conv in convs:
        conv.lo.fill_(float("inf"))
        conv.hi.fill_(float("-inf"))
        conv.observing = True
    try:
        for image, weights in batches:
            net(image, weights)
    finally:
        for conv in convs:
            conv.observing = False


def style_row_digests(net: nn.Module) -> list[str]:
    """One hash per style: its γ/β rows in every conditional norm (what a check of that style covered)."""
    norms = conditional_norms(net)
    digests = []
    for s in range(norms[-1].gamma.shape[0]):
        h = hashlib.sha1()
        for norm in norms:
            for table in (norm.gamma, norm.beta):
                h.update(table.detach()[s].float().cpu().contiguous().numpy().tobytes())
        digests.append(h.hexdigest()[:16])
    return digests


def save_int8(qnet: nn.Module, base: nn.Module, check: dict, path: str | Path) -> Path:
    """Write ``qnet``'s quantized convs (weights, biases, ranges) and ``check`` (per style: the float and int8
    losses and the pixel difference, see :func:`passes`) as an int8 file for the float network ``base``."""
    from safetensors.torch import save_file

    from ..paths import atomic_write

    convs = {id(m) for m in quant_convs(qnet)}
    tensors = {f"{name}.{key}": value.detach().float().cpu().contiguous().clone()
               for name, m in qnet.named_modules() if id(m) in convs for key, value in m.state_dict().items()}
    meta = {"base": fingerprint(base), "rows": style_row_digests(base),
            "float": [n for n in conv_names(qnet) if not isinstance(qnet.get_submodule(n), QuantConv2d)],
            "check": check}
    path = Path(path)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"multistyle-int8": json.dumps(meta)}))
    return path


def read_int8(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """An int8 file's metadata and tensors."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["multistyle-int8"])
        return meta, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - a safetensors handle, not a dict


def passes(check: dict) -> bool:
    """Whether a recorded check passed: every style's int8 loss within :data:`MAX_LOSS_RATIO` of the float one,
    at every size checked (``check["styles"][name]``: "fp32" and "int8" losses, one per size)."""
    styles = check.get("styles", {})
    return bool(styles) and all(i <= MAX_LOSS_RATIO * f for r in styles.values() for i, f in zip(r["int8"], r["fp32"]))


def _listing(folder: Path) -> tuple[tuple[str, dict], ...]:
    """(path, metadata) of the int8 files in ``folder``, read again only when the folder changes (its mtime)."""
    try:
        stamp = folder.stat().st_mtime_ns
    except OSError:
        return ()
    return _files(str(folder), stamp)


@cache
def _files(folder: str, _stamp: int) -> tuple[tuple[str, dict], ...]:
    found = []
    for path in sorted(Path(folder).glob(f"*{SUFFIX}")):
        try:
            found.append((str(path), read_int8(path)[0]))
        except Exception:  # noqa: BLE001, S112 - an unreadable file is no candidate
            continue
    return tuple(found)


def int8_folders() -> tuple[Path, ...]:
    """Where int8 files are looked up: beside the packaged models, then the user's data folder."""
    from ..paths import user_data_dir

    return INT8_DIR, user_data_dir()


def int8_record(net: nn.Module, folder: str | Path | None = None) -> tuple[str, dict] | None:
    """(path, metadata) of the int8 file for ``net`` in ``folder`` (default: :func:`int8_folders`): made for its
    float weights, its check passed, and every style row ``net`` holds among the rows checked. None otherwise."""
    key = fingerprint(net)
    rows = set(style_row_digests(net))
    folders = int8_folders() if folder is None else (folder,)
    for path, meta in (entry for f in folders for entry in _listing(Path(f))):
        if meta.get("base") == key and rows <= set(meta.get("rows", ())) and passes(meta.get("check", {})):
            return path, meta
    return None


def int8_network(net: nn.Module, folder: str | Path | None = None) -> nn.Module | None:
    """``net`` with its convs quantized as its int8 file says (:func:`int8_record`; the γ/β tables are ``net``'s
    own), or None where no checked int8 file covers it."""
    found = int8_record(net, folder)
    if found is None:
        return None
    meta, tensors = read_int8(found[0])
    qnet = quantize_convs(net, meta["float"])
    qnet.load_state_dict(tensors, strict=False)
    return qnet.eval()


def int8_key(qnet: nn.Module) -> str:
    """The graph-file key of an int8 network: its weights and ranges, and this module's code (the file's name adds
    :func:`~multistyle.engine.graph.graph_version`)."""
    return f"int8-{fingerprint(qnet)[:12]}-{_code_hash(__name__)}"
