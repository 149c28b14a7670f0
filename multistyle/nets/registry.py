"""The architecture registry: model files name an architecture; this maps the name to a builder (as timm does)."""

from __future__ import annotations

from typing import Callable

from .cin import StyleBankNet
from .v1 import ARCHITECTURE, StyleNet
from .v2 import ARCHITECTURE_V2, FastStyleNet


def _build_v1(num_styles: int, meta: dict) -> StyleBankNet:
    return StyleNet(num_styles, float(meta["width"]))


def _build_v2(num_styles: int, meta: dict) -> StyleBankNet:
    return FastStyleNet(num_styles, float(meta["width"]), int(meta["blocks"]), str(meta["block"]),
                        bool(meta["cond_encoder"]), str(meta.get("padding", "zeros")))  # files before padding: zeros


ARCHITECTURES: dict[str, Callable[[int, dict], StyleBankNet]] = {ARCHITECTURE: _build_v1, ARCHITECTURE_V2: _build_v2}


def build_network(architecture: str, num_styles: int, meta: dict) -> StyleBankNet:
    """The network an architecture name and its metadata (``arch_params``) describe; KeyError/ValueError/TypeError
    on missing or bad parameters, KeyError for an unknown architecture."""
    return ARCHITECTURES[architecture](num_styles, meta)
