"""What a visitor sends, checked on the server: images decoded by our own loader within the limits (not Gradio's,
which converts every upload to 8-bit RGB naively and decodes before any size check), and numbers that must be
finite and in range whatever a script puts in the request.

(No ``from __future__ import annotations``: see :mod:`.page`.)"""

import base64
import binascii
import math
from pathlib import Path

from ...errors import ImageError, MultistyleError

DATA_URL = "data:"


def _payload_source(payload) -> tuple[object, str]:
    """(path or bytes, a name to show the visitor) of a Gradio ``ImageData``/``FileData`` payload. Gradio has
    already refused paths outside its upload cache; a ``data:`` URL (within the request-size cap) is decoded here."""
    url = getattr(payload, "url", None) or ""
    if url.startswith(DATA_URL):
        try:
            return base64.b64decode(url.split(",", 1)[1], validate=False), "the image"
        except (IndexError, binascii.Error, ValueError):
            raise ImageError("the image is not a valid data: URL") from None
    path = getattr(payload, "path", None)
    if not path:
        raise ImageError("the image arrived without data; upload it again")
    name = getattr(payload, "orig_name", None) or "the image"
    return path, f"'{Path(name).name}'" if name != "the image" else name


def image_input(max_pixels: int, max_side: int | None = None, **kwargs):
    """A ``gr.Image`` input whose value reaches the handler as an 8-bit RGB ``PIL.Image`` decoded by
    :func:`multistyle.images.decode_rgb`: 16-bit, alpha, CMYK, palette and GIF handled as the CLI does, the size
    refused from the header over ``max_pixels``, and (``max_side``) big JPEGs decoded reduced. The instance's
    ``preprocess`` is replaced rather than the class subclassed (Gradio writes a ``.pyi`` next to every subclass)."""
    import gradio as gr

    from ...images import decode_rgb

    image = gr.Image(type="pil", image_mode=None, **kwargs)

    def preprocess(payload):
        if payload is None:
            return None
        source, label = _payload_source(payload)
        return decode_rgb(source, label, max_pixels, max_side)

    image.preprocess = preprocess
    return image


def number(value, name: str, lo: float, hi: float, whole: bool = False) -> float:
    """A finite number in [lo, hi] (NaN, ±inf, text and booleans refused with a one-line error)."""
    if isinstance(value, bool):
        raise MultistyleError(f"{name} must be a number between {lo:g} and {hi:g}, not {value!r}")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise MultistyleError(f"{name} must be a number between {lo:g} and {hi:g}, not {value!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise MultistyleError(f"{name} must be a number between {lo:g} and {hi:g}, not {value!r}")
    if whole:
        return int(round(value))
    return float(value)
