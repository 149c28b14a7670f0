"""The model file format, and where model files are found.

Model files: safetensors tensors + JSON metadata. Never pickle; written atomically (temp file + rename).

Tensors: the StyleNet state dict, plus ``thumbnail.<i>`` (uint8 [h, w, 3]) for each style, ``painting.<i>`` (the
style's painting at its training style size, a PNG file as a uint8 byte tensor; used by ``--refine``) and, for
training checkpoints, ``optimizer.*`` entries. Metadata key ``multistyle`` holds JSON: format version, architecture,
width, style names and sources, loss settings and per-style training records.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import ModelFileError
from .images import resize_long_side, tensor_to_uint8
from .nets import ARCHITECTURES, StyleBankNet, build_network
from .paths import atomic_write, user_data_dir

FORMAT_VERSION = 1
THUMBNAIL_SIZE = 96


@dataclass
class StyleInfo:
    """What a model knows about one style."""

    name: str
    source: str = ""  # painting / file it was learned from
    thumbnail: torch.Tensor | None = None  # uint8 [h, w, 3]
    training: dict[str, Any] = field(default_factory=dict)  # steps, size, final losses, ...
    painting: torch.Tensor | None = None  # uint8 [h, w, 3] at the training style size (for refine)

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "training": self.training}


@dataclass
class ModelFile:
    """A loaded model: the network plus its styles and settings."""

    net: StyleBankNet
    styles: list[StyleInfo]
    loss: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # training state, notes

    @property
    def style_names(self) -> list[str]:
        return [s.name for s in self.styles]


def make_thumbnail(image: torch.Tensor, size: int = THUMBNAIL_SIZE) -> torch.Tensor:
    """[1, 3, H, W] float image → uint8 [h, w, 3] thumbnail with long side ``size``."""
    return torch.from_numpy(tensor_to_uint8(resize_long_side(image, size)))


def encode_png(image: torch.Tensor) -> torch.Tensor:
    """uint8 [h, w, 3] RGB → the bytes of a PNG file as a uint8 tensor [n] (lossless)."""
    import cv2

    ok, data = cv2.imencode(".png", image.numpy()[:, :, ::-1])
    if not ok:
        raise ValueError("could not PNG-encode a painting")
    return torch.from_numpy(data.reshape(-1).copy())


def decode_png(data: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`encode_png`: uint8 [n] PNG bytes → uint8 [h, w, 3] RGB."""
    import cv2

    image = cv2.imdecode(data.numpy(), cv2.IMREAD_COLOR)
    if image is None:
        raise ModelFileError("a stored painting is not a readable PNG; the model file is damaged")
    return torch.from_numpy(image[:, :, ::-1].copy())


def make_painting(image: torch.Tensor) -> torch.Tensor:
    """[1, 3, H, W] float style image (already at the training style size) → uint8 [H, W, 3] for ``StyleInfo``."""
    return torch.from_numpy(tensor_to_uint8(image))


def save_model(model: ModelFile, path: str | os.PathLike, extra_tensors: dict[str, torch.Tensor] | None = None
               ) -> Path:
    """Write ``model`` to ``path`` atomically (a crash leaves either the old or the new file, never half)."""
    if len(model.styles) != model.net.num_styles:
        raise ValueError(f"{len(model.styles)} style entries for a network with {model.net.num_styles} styles")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    for i, style in enumerate(model.styles):
        if style.thumbnail is not None:
            tensors[f"thumbnail.{i}"] = style.thumbnail.cpu().contiguous()
        if style.painting is not None:
            tensors[f"painting.{i}"] = encode_png(style.painting.cpu())
    for k, v in (extra_tensors or {}).items():
        tensors[f"extra.{k}"] = v.detach().cpu().contiguous()
    meta = {
        "format_version": FORMAT_VERSION,
        "architecture": model.net.architecture,
        **model.net.arch_params(),
        "num_styles": model.net.num_styles,
        "styles": [s.meta() for s in model.styles],
        "loss": model.loss,
        "extra": model.extra,
    }

    def write(tmp: str) -> None:
        save_file(tensors, tmp, metadata={"multistyle": json.dumps(meta)})
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())

    return atomic_write(path, write)


TRAINING_ONLY = ("history", "evals")  # ``extra`` entries a training state keeps and a shipped model file drops


def model_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """A training state's ``extra`` as its model file keeps it (without :data:`TRAINING_ONLY`)."""
    return {k: v for k, v in extra.items() if k not in TRAINING_ONLY}


def export_model(state: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the model file of a training state (``*.train.safetensors``): the same weights and styles, without the
    optimizer tensors and the loss history. This is how a state trained elsewhere (a lent GPU) becomes a model."""
    model, _ = load_model(state)
    return save_model(ModelFile(model.net, model.styles, model.loss, model_extra(model.extra)), out)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a model file, validated (clear :class:`ModelFileError` otherwise)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file; check the path or omit --model for the default")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("multistyle")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is not a valid safetensors model file ({exc}); it may be truncated — "
                             "re-create or re-download it") from None
    if raw is None:
        raise ModelFileError(f"{path} is a safetensors file but not a multistyle model (no metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: model metadata is corrupt") from None
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path} uses model format {version}, newer than this multistyle understands "
                             f"({FORMAT_VERSION}); upgrade multistyle")
    if meta.get("architecture") not in ARCHITECTURES:
        raise ModelFileError(f"{path} has architecture {meta.get('architecture')!r}, which this multistyle does not "
                             f"know (known: {', '.join(ARCHITECTURES)}); upgrade multistyle")
    return meta


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[ModelFile, dict[str, torch.Tensor]]:
    """Load a model file → (ModelFile, extra tensors). Validates version, architecture and every shape."""
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path} could not be read ({exc}); it may be truncated") from None
    try:
        styles_meta = meta["styles"]
        net = build_network(meta["architecture"], int(meta["num_styles"]), meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: model metadata is incomplete ({exc})") from None
    state = {k: v for k, v in tensors.items() if not k.startswith(("thumbnail.", "painting.", "extra."))}
    expected = net.state_dict()
    if set(state) != set(expected):
        missing = sorted(set(expected) - set(state))[:3]
        raise ModelFileError(f"{path} does not match the {meta['architecture']} architecture (missing e.g. {missing})")
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ModelFileError(f"{path}: tensor {key} has shape {tuple(state[key].shape)}, expected "
                                 f"{tuple(value.shape)} for width {net.width} and {net.num_styles} styles")
    net.load_state_dict(state)
    net.eval().to(device)
    if len(styles_meta) != net.num_styles:
        raise ModelFileError(f"{path}: {len(styles_meta)} style names for {net.num_styles} styles")
    styles = [StyleInfo(s["name"], s.get("source", ""), tensors.get(f"thumbnail.{i}"), s.get("training", {}),
                        decode_png(tensors[f"painting.{i}"]) if f"painting.{i}" in tensors else None)
              for i, s in enumerate(styles_meta)]
    extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return ModelFile(net, styles, meta.get("loss", {}), meta.get("extra", {})), extra


# ---- where model files live: the packaged models and the user's extended copy, with a per-process cache ----

ASSETS = Path(__file__).resolve().parent / "assets"
PACKAGED_MODEL = ASSETS / "default.safetensors"  # v2 (cin-fast-v2), see MODEL.md
PACKAGED_V1 = ASSETS / "v1.safetensors"  # the first default (cin-transformer-v1): v2's teacher, still selectable
PACKAGED_NAMES = {"v1": PACKAGED_V1, "v2": PACKAGED_MODEL}  # --model v1 / --model v2
PACKAGED_CONTENT = ASSETS / "content"  # a few small photos add_style trains on by default
ENV_MODEL = "MULTISTYLE_MODEL"


def user_model_path() -> Path:
    """The user's own model file, written by add_style (the packaged file is never modified)."""
    return user_data_dir() / "model.safetensors"


def default_model_path() -> Path:
    """``$MULTISTYLE_MODEL``, else the user's extended model if add_style made one, else the packaged model."""
    if os.environ.get(ENV_MODEL):
        return Path(os.environ[ENV_MODEL])
    user = user_model_path()
    return user if user.is_file() else PACKAGED_MODEL


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """A model file's path: ``path``, a packaged model's name (``v1``, ``v2``) unless a file of that name exists,
    or the default (:func:`default_model_path`)."""
    if not path:
        return default_model_path()
    if str(path) in PACKAGED_NAMES and not Path(path).exists():
        return PACKAGED_NAMES[str(path)]
    return Path(path)


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float, device: str) -> ModelFile:
    return load_model(path, device)[0]


def get_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> ModelFile:
    """Load a model once per process (reloaded when the file changes)."""
    resolved = resolve_model_path(path)
    mtime = resolved.stat().st_mtime if resolved.exists() else 0.0
    return _cached(str(resolved), mtime, str(device))


def subset_model(model: ModelFile, keep: list[str]) -> ModelFile:
    """A copy of ``model`` with only the styles named ``keep`` (in the model's order); the network's convs are
    shared weights, so the rows are all that differ."""
    import copy

    net = copy.deepcopy(model.net)
    drop = [i for i, name in enumerate(model.style_names) if name not in keep]
    for i in reversed(drop):
        net.remove_style(i)
    styles = [s for s in model.styles if s.name in keep]
    return type(model)(net, styles, dict(model.loss), dict(model.extra))
