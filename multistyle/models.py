"""Where model files live: the packaged default model and the user's extended copy, with a per-process cache."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from .checkpoint import ModelFile, load_model

ASSETS = Path(__file__).resolve().parent / "assets"
PACKAGED_MODEL = ASSETS / "default.safetensors"
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
    return Path(path) if path else default_model_path()


@lru_cache(maxsize=8)
def _cached(path: str, mtime: float, device: str) -> ModelFile:
    return load_model(path, device)[0]


def get_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> ModelFile:
    """Load a model once per process (reloaded when the file changes)."""
    resolved = resolve_model_path(path)
    mtime = resolved.stat().st_mtime if resolved.exists() else 0.0
    return _cached(str(resolved), mtime, str(device))
