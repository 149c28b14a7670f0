"""Where model files live: the packaged default model and the user's extended copy, with a per-process cache."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from .checkpoint import ModelFile, load_model

ASSETS = Path(__file__).resolve().parent / "assets"
PACKAGED_MODEL = ASSETS / "default.safetensors"  # v2 (cin-fast-v2), see MODEL.md
PACKAGED_V1 = ASSETS / "v1.safetensors"  # the first default (cin-transformer-v1): v2's teacher, still selectable
PACKAGED_NAMES = {"v1": PACKAGED_V1, "v2": PACKAGED_MODEL}  # --model v1 / --model v2
PACKAGED_CONTENT = ASSETS / "content"  # a few small photos add_style trains on by default
ENV_MODEL = "MULTISTYLE_MODEL"


def user_data_dir() -> Path:
    """``$MULTISTYLE_HOME`` or ``$XDG_DATA_HOME/multistyle`` (default ``~/.local/share/multistyle``)."""
    if os.environ.get("MULTISTYLE_HOME"):
        return Path(os.environ["MULTISTYLE_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "multistyle"


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
