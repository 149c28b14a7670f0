"""What the page sends back as files: every result image (Stylize, refine, Gatys, previews, gallery thumbnails) is
written once into Gradio's cache under the hash of its bytes, atomically (a temporary name, then a rename), and an
existing file is only touched, never rewritten. Gradio's own writer opens the same hashed path for writing while
another response may still be streaming it (two visitors, one picture), which cuts that response short; here a
file being sent is never changed, and Gradio's cache sweep (``--cache-seconds``) removes it later."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

from ...paths import atomic_write


def cached_image(value, cache_dir: str | os.PathLike, format: str = "png") -> str:
    """An RGB array or PIL image → the path of its encoded file in ``cache_dir`` (written once, atomically)."""
    from PIL import Image

    image = Image.fromarray(np.asarray(value, dtype=np.uint8)) if isinstance(value, np.ndarray) else value
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if format in ("jpg", "jpeg") else format.upper(), quality=90)
    data = buffer.getvalue()
    path = Path(cache_dir) / hashlib.sha256(data).hexdigest()[:40] / f"image.{format}"
    if path.is_file():
        os.utime(path)  # handed out again: the cache sweep ages files by their time
    else:
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return str(path.resolve())


def _as_files(value, cache_dir: str, format: str):
    """``value`` with every array / PIL image (also inside a gallery's (image, caption) list) replaced by its
    cached file."""
    from PIL import Image

    if isinstance(value, (np.ndarray, Image.Image)):
        return cached_image(value, cache_dir, format)
    if isinstance(value, list):
        return [(_as_files(v[0], cache_dir, format), v[1]) if isinstance(v, tuple) else _as_files(v, cache_dir,
                                                                                                   format)
                for v in value]
    return value


def atomic_results(component):
    """Make ``component`` (a ``gr.Image`` or ``gr.Gallery`` output) send its pictures as files written by
    :func:`cached_image`. (The instance's ``postprocess`` is replaced: Gradio writes a ``.pyi`` stub next to the
    source of every Component subclass.)"""
    default = component.postprocess
    format = getattr(component, "format", None) or "png"
    format = "png" if format == "webp" else format

    def postprocess(value):
        return default(_as_files(value, component.GRADIO_CACHE, format))

    component.postprocess = postprocess
    return component
