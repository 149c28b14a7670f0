"""Where things live and how they are written: the user's data and cache folders, atomic file writes, the device."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import torch


def user_data_dir() -> Path:
    """``$MULTISTYLE_HOME`` or ``$XDG_DATA_HOME/multistyle`` (default ``~/.local/share/multistyle``)."""
    if os.environ.get("MULTISTYLE_HOME"):
        return Path(os.environ["MULTISTYLE_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "multistyle"


def cache_dir() -> Path:
    """The user cache directory of multistyle (``MULTISTYLE_CACHE`` or ``$XDG_CACHE_HOME/multistyle``)."""
    if os.environ.get("MULTISTYLE_CACHE"):
        return Path(os.environ["MULTISTYLE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "multistyle"


def temp_beside(path: str | os.PathLike) -> Path:
    """A new empty temporary file in ``path``'s folder (made if missing), to be renamed onto ``path`` by
    :func:`publish` when it is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Give the finished temporary file ``tmp`` the usual permissions and rename it onto ``path`` (atomic)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    os.replace(tmp, path)
    return Path(path)


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path`` so readers never see a half-written file."""
    path = Path(path)
    tmp = str(temp_beside(path))
    try:
        write(tmp)
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
