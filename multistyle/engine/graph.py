"""The graphs an inference engine compiles: a style network whose style is an input (the mixed γ/β of every
conditional instance norm, one row ``affine`` [B, K]), as float images or as whole camera frames (uint8 BGR in and
out, colour order, scaling, strength and rounding inside the graph); their ONNX files, cached per network."""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import inspect
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..nets.cin import ConditionalInstanceNorm
from ..paths import atomic_write, cache_dir

# float NCHW RGB in and out; uint8 HWC BGR in and out (+ strength); the same in RGB
KINDS = ("image", "frame", "rgb8")
OPSET = 17
GRAPH_FORMAT = 2  # bump when what a graph file computes changes in a way the code hash below would not see


class _FedNorm(ConditionalInstanceNorm):
    """A conditional instance norm whose γ/β come from the graph's ``affine`` input, not from its style table."""

    fed: tuple[torch.Tensor, torch.Tensor]

    def affine(self, style_weights: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fed  # float32, as every graph computes


def conditional_norms(net: torch.nn.Module) -> list[ConditionalInstanceNorm]:
    """The conditional instance norms of ``net`` in forward order (the layout of the ``affine`` row)."""
    return [m for m in net.modules() if isinstance(m, ConditionalInstanceNorm)]


@torch.no_grad()
def style_affine(net: torch.nn.Module, weights: torch.Tensor) -> np.ndarray:
    """The ``affine`` input for style weights [B, S]: per norm, γ then β mixed by ``weights`` (float32 [B, K]).
    Any number of style rows works: a visitor's added style or a zero-shot row needs no new graph."""
    parts = []
    for norm in conditional_norms(net):
        w = weights.to(norm.gamma.device, norm.gamma.dtype)
        parts += [w @ norm.gamma, w @ norm.beta]
    return torch.cat(parts, 1).float().cpu().numpy()


def affine_width(net: torch.nn.Module) -> int:
    """K, the length of one ``affine`` row of ``net``."""
    return sum(2 * norm.gamma.shape[1] for norm in conditional_norms(net))


class StyleInputNet(torch.nn.Module):
    """(image [B, 3, H, W] in 0..1, H and W multiples of the net's ``multiple``; affine [B, K]) → stylized
    [B, 3, H, W]: ``net`` with its style tables replaced by the ``affine`` input (a private copy is changed)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).float().cpu().eval()
        self.norms = conditional_norms(self.net)
        for norm in self.norms:
            norm.__class__ = _FedNorm
        self.widths = [norm.gamma.shape[1] for norm in self.norms]
        self.num_styles = self.norms[-1].gamma.shape[0]

    def forward(self, image: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        at = 0
        for norm, c in zip(self.norms, self.widths):
            norm.fed = (affine[:, at:at + c, None, None], affine[:, at + c:at + 2 * c, None, None])
            at += 2 * c
        unused = torch.zeros(image.shape[0], self.num_styles, dtype=image.dtype)  # the style comes from ``affine``
        return self.net(image, unused)


class FrameNet(torch.nn.Module):
    """(frame uint8 [H, W, 3] BGR — or RGB with ``bgr=False`` —, affine [1, K], strength [1]) → stylized uint8
    [H, W, 3] in the same order: the frame's conversions, the network and the strength blend in one graph (H, W
    multiples of the net's ``multiple``)."""

    def __init__(self, net: torch.nn.Module, bgr: bool = True) -> None:
        super().__init__()
        self.styled = StyleInputNet(net)
        self.bgr = bgr

    def forward(self, frame: torch.Tensor, affine: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        rgb = frame[:, :, [2, 1, 0]] if self.bgr else frame
        x = rgb.permute(2, 0, 1)[None].float() / 255.0
        y = self.styled(x, affine)
        y = x + (y - x) * strength
        out = torch.round(torch.clamp(y * 255.0, 0.0, 255.0)).to(torch.uint8)[0].permute(1, 2, 0)
        return out[:, :, [2, 1, 0]] if self.bgr else out


def graph_module(net: torch.nn.Module, kind: str) -> torch.nn.Module:
    """The module of graph ``kind`` (one of :data:`KINDS`) for ``net``."""
    if kind not in KINDS:
        raise ValueError(f"graph kind must be one of {KINDS}, not {kind!r}")
    return StyleInputNet(net) if kind == "image" else FrameNet(net, bgr=kind == "frame")


def fingerprint(net: torch.nn.Module) -> str:
    """A hash of what a compiled graph depends on: the network's class and every weight except its style tables
    (adding, mixing or replacing style rows keeps the fingerprint, so it keeps the compiled graph)."""
    digest = hashlib.sha1(type(net).__qualname__.encode())
    for name, tensor in sorted(net.state_dict().items()):
        if name.endswith((".gamma", ".beta")) and tensor.dim() == 2:
            continue  # a conditional norm's style table (plain norms' γ/β are 1-D and part of the graph)
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def example_inputs(net: torch.nn.Module, kind: str, shape: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """Inputs of graph ``kind`` for an image of ``shape`` ([B, 3, H, W] for "image", else [H, W, 3])."""
    k = affine_width(net)
    if kind == "image":
        return torch.rand(shape), torch.ones(shape[0], k)
    return torch.randint(0, 256, shape, dtype=torch.uint8), torch.ones(1, k), torch.ones(1)


INPUT_NAMES = {"image": ["image", "affine"], "frame": ["frame", "affine", "strength"],
               "rgb8": ["frame", "affine", "strength"]}
DYNAMIC_AXES = {"image": {"image": {0: "batch", 2: "height", 3: "width"}, "affine": {0: "batch"},
                          "stylized": {0: "batch", 2: "height", 3: "width"}},
                "frame": {"frame": {0: "height", 1: "width"}, "stylized": {0: "height", 1: "width"}}}
DYNAMIC_AXES["rgb8"] = DYNAMIC_AXES["frame"]


@lru_cache(maxsize=None)
def _code_hash(*modules: str) -> str:
    """A hash of the source of ``modules`` (this graph code, the network's classes)."""
    import sys

    digest = hashlib.sha1()
    for name in modules:
        try:
            digest.update(inspect.getsource(sys.modules[name]).encode())
        except (KeyError, OSError, TypeError):
            digest.update(name.encode())
    return digest.hexdigest()[:10]


@lru_cache(maxsize=None)
def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def graph_version(net: torch.nn.Module) -> str:
    """What a graph file depends on besides the weights: multistyle's version, :data:`GRAPH_FORMAT`, the opset,
    the exporter's (torch) version and a hash of the graph and network code. Part of every graph file's name, so an
    upgrade never runs a graph another version exported. (The engines compile the file in memory, each time: their
    own versions key the measured choice, :func:`multistyle.engine.choice.measured_choice`.)"""
    code = _code_hash(__name__, ConditionalInstanceNorm.__module__, type(net).__module__)
    tag = f"{_package_version('multistyle')} {GRAPH_FORMAT} {OPSET} {torch.__version__} {code}"
    return hashlib.sha1(tag.encode()).hexdigest()[:10]


def onnx_graph(net: torch.nn.Module, kind: str, key: str | None = None) -> Path:
    """The ONNX file of graph ``kind`` for ``net`` (dynamic size; batch too for "image"), exported once per
    fingerprint and :func:`graph_version` into ``cache_dir()/engine`` (atomic write) and reused by every engine and
    frame size."""
    key = key or fingerprint(net)
    path = cache_dir() / "engine" / f"{type(net).__name__}-{key}-{graph_version(net)}-{kind}.onnx"
    if path.is_file():
        return path
    module = graph_module(net, kind).eval()
    example = example_inputs(net, kind, (1, 3, 64, 64) if kind == "image" else (64, 64, 3))

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, tmp, input_names=INPUT_NAMES[kind], output_names=["stylized"],
                              dynamic_axes=DYNAMIC_AXES[kind], opset_version=OPSET, dynamo=False)

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    return path
