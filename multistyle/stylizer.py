"""The fast network at work: :class:`Stylizer` (a model on a device: pad, stroke scale, finish) and the public
``multistyle.stylize(image, style=..., strength=..., preserve_color=..., scale=..., refine=...)``."""

from __future__ import annotations

import copy
import os
import time
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .color import keep_luminance
from .engine import EngineChoice, check_engine, choose_engine, compiled_runner, fingerprint, style_affine
from .errors import ImageError, StyleError
from .images import ImageLike, limit_size, tensor_to_uint8, to_tensor
from .modelfile import ModelFile, get_model, resolve_model_path
from .paths import pick_device
from .progress import ProgressFn
from .styles import StyleSpec, check_scale, check_strength, style_weights  # noqa: F401 (checks re-exported)

MIN_SIDE = 8  # the network's reflection pads need at least this many pixels per side


def padded_size(h: int, w: int, multiple: int = 4) -> tuple[int, int]:
    """(H, W) rounded up to multiples of ``multiple`` and at least 8 px (what :func:`pad_to_multiple` pads to)."""
    return max(MIN_SIDE, -(-h // multiple) * multiple), max(MIN_SIDE, -(-w // multiple) * multiple)


def pad_to_multiple(image: torch.Tensor, multiple: int = 4) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad [B, 3, H, W] on the right/bottom to multiples of ``multiple`` (and at least 8 px); returns
    (padded, (H, W)). Reflection where the image is big enough, edge replication otherwise."""
    h, w = image.shape[-2:]
    th, tw = padded_size(h, w, multiple)
    ph, pw = th - h, tw - w
    if ph or pw:
        mode = "reflect" if h > ph and w > pw else "replicate"
        image = F.pad(image, (0, pw, 0, ph), mode=mode)
    return image, (h, w)


UPSAMPLE_MODES = ("bilinear", "guided")
DEFAULT_UPSAMPLE = "bilinear"  # see MODEL.md, "Stroke scale, refine"
GUIDED_RADIUS, GUIDED_EPS = 4, 1e-2  # guided filter window (at the network's resolution) and regulariser


def resample_to(out: torch.Tensor, size: tuple[int, int], guide: torch.Tensor | None = None,
                mode: str = DEFAULT_UPSAMPLE) -> torch.Tensor:
    """Bring a stylized image [B, 3, h, w] back to ``size`` (H, W). Shrinking is antialiased bilinear. Growing is
    bilinear, or with ``mode="guided"`` a fast guided filter (kornia ``guided_blur``) with ``guide`` (the photo at
    full size) as guide: edges follow the photo instead of the blurred small result."""
    if mode not in UPSAMPLE_MODES:
        raise StyleError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, not {mode!r}")
    if tuple(out.shape[-2:]) == tuple(size):
        return out
    shrink = out.shape[-2] > size[0]
    up = F.interpolate(out, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    if shrink or mode == "bilinear" or guide is None:
        return up
    from kornia.filters import guided_blur

    sub = max(1, round(size[0] / out.shape[-2]))
    kernel = 2 * GUIDED_RADIUS * sub + 1
    dtype = up.dtype
    return guided_blur(guide.float(), up.float(), kernel, GUIDED_EPS, subsample=sub).to(dtype).clamp(0, 1)


class Stylizer:
    """A model on a device, ready to stylize tensors (fp16 + channels_last on CUDA).

    ``engine`` (:data:`multistyle.engine.CHOICES`): what runs the network — ``auto`` (the engine and precision
    measured fastest here within the quality tolerance, :func:`multistyle.engine.choose_engine`), one by name, or
    an :class:`EngineChoice` resolved before (kept); :attr:`choice` says which and why. Refine, training: torch."""

    def __init__(self, model: ModelFile, device: str | torch.device = "auto", half: bool | None = None,
                 engine: str | EngineChoice = "auto") -> None:
        self.model = model
        self.device = pick_device(device)
        check_engine(engine)
        self.half = self.device.type == "cuda" if half is None else half
        self.dtype = torch.float16 if self.half else torch.float32
        net = copy.deepcopy(model.net).to(self.device).eval()  # the cached model stays as it is
        net = net.to(memory_format=torch.channels_last)  # faster on CPU (oneDNN) and on CUDA
        self.net = net.to(self.dtype) if self.half else net
        self.choice: EngineChoice = choose_engine(engine, "cuda" if self.half else self.device, self.net)
        self.compiled = self.choice.engine != "torch"  # the network runs as a compiled graph (engine layer)
        self.key = fingerprint(self.net) if self.compiled else ""

    def runner(self, kind: str, shape: tuple[int, ...]):
        """The compiled graph ``kind`` ("image" or "frame") of this network at ``shape`` on :attr:`choice`'s engine
        (:func:`multistyle.engine.compiled_runner`); the style goes in as :meth:`affine`."""
        return compiled_runner(self.net, kind, shape, self.choice, self.key)

    def affine(self, weights: torch.Tensor) -> np.ndarray:
        """The compiled graphs' style input for style weights [B, S] (:func:`multistyle.engine.style_affine`)."""
        return style_affine(self.net, weights)

    def uint8(self, image: np.ndarray, affine: np.ndarray, strength: float = 1.0, bgr: bool = False,
              scale: float = 1.0) -> np.ndarray:
        """HxWx3 uint8 (RGB, or BGR with ``bgr``) → stylized uint8 of the same size and order, in one compiled
        graph (conversions and the strength blend inside; ``affine`` from :meth:`affine`). Needs :attr:`compiled`.
        Padded like :func:`pad_to_multiple` when H or W is not a multiple of the net's ``multiple``. ``scale`` ≠ 1:
        the graph runs on the image resized by OpenCV (area average when shrinking), bilinear back, then blended."""
        h, w = image.shape[:2]
        if scale != 1.0:
            small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            out = cv2.resize(self.uint8(small, affine, 1.0, bgr), (w, h), interpolation=cv2.INTER_LINEAR)
            return out if strength == 1.0 else cv2.addWeighted(image, 1.0 - strength, out, strength, 0.0)
        th, tw = padded_size(h, w, getattr(self.net, "multiple", 4))
        if (th, tw) != (h, w):
            border = cv2.BORDER_REFLECT_101 if h > th - h and w > tw - w else cv2.BORDER_REPLICATE
            image = cv2.copyMakeBorder(image, 0, th - h, 0, tw - w, border)
        run = self.runner("frame" if bgr else "rgb8", image.shape)
        out = run(image, affine[:1], np.array([strength], np.float32))
        return out[:h, :w] if (th, tw) != (h, w) else out

    @property
    def names(self) -> list[str]:
        return self.model.style_names

    @torch.inference_mode()
    def raw(self, x: torch.Tensor, weights: torch.Tensor, scale: float = 1.0,
            upsample: str = DEFAULT_UPSAMPLE, net: torch.nn.Module | None = None) -> torch.Tensor:
        """The network's output for ``x`` [B, 3, H, W] on this device, float32, same size as ``x``; with
        ``scale`` ≠ 1 the network sees ``x`` resized by ``scale`` (bolder strokes below 1, finer above).
        ``net``: another module with the same weights (e.g. a compiled one) to run instead."""
        x = x.to(self.device)
        h, w = x.shape[-2:]
        small = x
        if scale != 1.0:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            small = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
        padded, (sh, sw) = pad_to_multiple(small.to(self.dtype), getattr(self.net, "multiple", 4))
        if self.compiled and net is None:
            weights = weights.expand(padded.shape[0], -1)
            run = self.runner("image", tuple(padded.shape))
            out = torch.from_numpy(run(padded.float().contiguous().numpy(), self.affine(weights)))[..., :sh, :sw]
        else:
            padded = padded.contiguous(memory_format=torch.channels_last)
            out = (net or self.net)(padded, weights.to(self.device))[..., :sh, :sw].float()
        return resample_to(out, (h, w), x, upsample) if scale != 1.0 else out

    @staticmethod
    def finish(out: torch.Tensor, x: torch.Tensor, strength: float = 1.0, preserve_color: bool = False
               ) -> torch.Tensor:
        """Colour preservation and strength (blend with the photo ``x``) on a stylized float image, clamped."""
        x = x.to(out.device, torch.float32)
        if preserve_color:
            out = keep_luminance(out, x)
        if strength != 1.0:
            out = torch.lerp(x, out, strength)
        return out.clamp(0, 1)

    def __call__(self, image: torch.Tensor, weights: torch.Tensor, strength: float = 1.0,
                 preserve_color: bool = False, scale: float = 1.0, upsample: str = DEFAULT_UPSAMPLE,
                 refine: int = 0, progress: ProgressFn | None = None, seconds: float | None = None
                 ) -> torch.Tensor:
        """[B, 3, H, W] float in [0, 1] (any H, W ≥ 1) → stylized, same shape, float32 on the CPU. ``refine`` N > 0:
        then N Gatys iterations from the network's output with the model's own loss and stored paintings
        (:mod:`multistyle.refine`; ``progress(i, N, losses)`` follows them), fewer when the wall-clock budget
        ``seconds`` (network included) ends them first."""
        began = time.perf_counter()
        with torch.inference_mode():
            x = image.to(self.device, self.dtype)
            out = self.raw(x, weights, scale, upsample)
        left = None if seconds is None else seconds - (time.perf_counter() - began)
        if refine and (left is None or left > 0):
            from .refine import refine_batch

            out = refine_batch(self.model, x.float(), out.clone(), weights[0], refine, scale, self.device, progress,
                               left)
        with torch.inference_mode():
            return self.finish(out, x, strength, preserve_color).cpu()


@lru_cache(maxsize=8)
def _stylizer(path: str, mtime: float, device: str, engine: str) -> Stylizer:
    return Stylizer(get_model(path), device, engine=engine)


def get_stylizer(model: str | os.PathLike | None = None, device: str | torch.device = "auto",
                 engine: str = "auto") -> Stylizer:
    """A cached :class:`Stylizer` for a model file (default model when None) on a device and engine."""
    check_engine(engine)
    path = resolve_model_path(model)
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _stylizer(str(path), mtime, str(pick_device(device)), engine)


_ZERO_SHOT: dict[tuple[int, str], Stylizer] = {}


def zero_shot_stylizer(stylizer: Stylizer, painting: ImageLike, fit: bool = True) -> Stylizer:
    """``stylizer``'s model plus one style for ``painting`` (its last; the fitted row of :func:`~.zero_shot.
    zero_shot_model`, or its instant blend when ``fit`` is False), without training; the model file is untouched."""
    from .zero_shot import zero_shot_model

    model = zero_shot_model(stylizer.model, painting, device=stylizer.device, fit=fit)
    key = (id(model), stylizer.choice)
    if key not in _ZERO_SHOT:
        while len(_ZERO_SHOT) >= 4:
            _ZERO_SHOT.pop(next(iter(_ZERO_SHOT)))
        _ZERO_SHOT[key] = Stylizer(model, stylizer.device, stylizer.half, stylizer.choice)  # auto's checked choice
    return _ZERO_SHOT[key]


def head_start(stylizer: Stylizer, photo: torch.Tensor, paintings: Sequence[torch.Tensor],
               blend: Sequence[float] | None = None) -> torch.Tensor:
    """The network's output for ``photo`` [1, 3, H, W] towards ``paintings`` (blended by ``blend``), as the start of
    a Gatys run: each painting's zero-shot style mix (a stored painting gives its own style), mixed by ``blend``.
    No training; float32 [1, 3, H, W] on the CPU."""
    from .styles import validate_blend_weights
    from .zero_shot import painting_weights

    blend_w = validate_blend_weights(blend if blend is not None else [1.0] * len(paintings), len(paintings))
    mix = sum(float(b) * painting_weights(stylizer.model, p, stylizer.device) for p, b in zip(paintings, blend_w))
    return stylizer.raw(photo, torch.as_tensor(mix)[None]).cpu()


def _rgb8(image: object) -> np.ndarray | None:
    """An 8-bit RGB PIL image or HxWx3 uint8 array as a contiguous array (the compiled uint8 graph's input), else
    None (other inputs take the float path)."""
    if isinstance(image, Image.Image) and image.mode == "RGB":
        return np.asarray(image)
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    return None


def _as_output(result: torch.Tensor, like: object):
    if isinstance(like, torch.Tensor):
        return result if like.dim() == 4 else result[0]
    if isinstance(like, np.ndarray):
        return tensor_to_uint8(result)
    return Image.fromarray(tensor_to_uint8(result), "RGB")


def stylize(image: ImageLike | Sequence[ImageLike], style: StyleSpec = 0, strength: float = 1.0,
            preserve_color: bool = False, max_size: int | None = None, device: str | torch.device = "auto",
            model: str | os.PathLike | None = None, scale: float = 1.0, refine: int = 0,
            upsample: str = DEFAULT_UPSAMPLE, seconds: float | None = None, best: bool = False,
            painting: ImageLike | None = None, engine: str = "auto"):
    """Stylize one image or a list of images with a shipped (or given) multi-style model.

    ``image``: a path, PIL image, HxWx3 uint8 array, or float tensor [3|B, 3, H, W] in [0, 1]. ``style``: a
    name, an index, or a ``{name: weight}`` mix. ``strength`` 0..1 blends with the input (0 returns it).
    ``scale`` (0.1..4): stroke scale, the network runs at ``scale`` × the image size (0.5: bolder strokes, about
    4× cheaper; 2: finer); the result has the image's size. ``refine`` N > 0: then N Gatys iterations from the
    network's output with the model's loss and the style's stored painting (slower, closer to the teacher);
    ``best``: the network, then refine (``refine`` iterations, default ``BEST_STEPS``; with ``seconds``, as many
    as the budget allows). ``seconds``: a wall-clock budget for the whole call (the refine stops when it is spent,
    keeping the best iterate). ``painting`` (taken like ``image``): any painting at once, without training: its
    zero-shot row (the Gram-matched style mix, then fitted ~1.5 s; :mod:`multistyle.zero_shot`) replaces ``style``.
    ``engine``: what runs the network, ``auto`` (measured once per machine), ``torch``, ``openvino`` or
    ``onnxruntime`` (:class:`Stylizer`). Returns the same kind as given (a path gives a PIL image); a list gives a list.
    """
    if isinstance(image, (list, tuple)):
        return [stylize(i, style, strength, preserve_color, max_size, device, model, scale, refine, upsample, seconds,
                        best, painting, engine) for i in image]
    strength = check_strength(strength)
    scale = check_scale(scale)
    if max_size is not None and not (isinstance(max_size, int) and max_size >= 8):
        raise ImageError(f"max_size must be a whole number >= 8, not {max_size!r}")
    from .gatys import check_seconds
    from .refine import BEST_STEPS, MAX_REFINE, check_refine

    refine = check_refine(refine)
    seconds = check_seconds(seconds)
    if best and not refine:
        refine = MAX_REFINE if seconds else BEST_STEPS
    stylizer = get_stylizer(model, device, engine)
    if painting is not None:
        stylizer = zero_shot_stylizer(stylizer, painting)
        style = len(stylizer.names) - 1
    weights = style_weights(style, stylizer.names)
    rgb = _rgb8(image) if stylizer.compiled and not (preserve_color or refine or upsample != "bilinear") else None
    if rgb is not None and (max_size is None or max(rgb.shape[:2]) <= max_size):
        out8 = stylizer.uint8(rgb, stylizer.affine(weights), strength, scale=scale)
        return out8 if isinstance(image, np.ndarray) else Image.fromarray(out8, "RGB")
    x = limit_size(to_tensor(image), max_size)
    out = stylizer(x, weights.expand(x.shape[0], -1), strength, preserve_color, scale, upsample, refine,
                   seconds=seconds)
    return _as_output(out, image)
