"""Style specs: parse and validate a style given by name, index or mix, and build the one style-weight vector
([1, S], summing to 1) that every caller (API, CLI, webcam, video, demo) hands to the network."""

from __future__ import annotations

import difflib
import math
from typing import Mapping, Sequence, Union

import numpy as np
import torch

from .errors import StyleError

StyleSpec = Union[str, int, Mapping[Union[str, int], float]]


def validate_blend_weights(weights: Sequence[float], count: int) -> torch.Tensor:
    """Check mix weights (one per style, finite, >= 0, not all zero) and return them normalised to sum 1."""
    values = [float(w) for w in weights]
    if len(values) != count:
        raise StyleError(f"got {len(values)} style weights for {count} styles; give one weight per style")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise StyleError(f"style weights must be finite and >= 0, got {values}")
    total = sum(values)
    if total <= 0:
        raise StyleError("style weights are all zero; give at least one positive weight")
    return torch.tensor([v / total for v in values])


def style_index(name_or_index: str | int, names: Sequence[str]) -> int:
    """Index of a style given by name (case-insensitive) or index; unknown → StyleError with suggestions."""
    if isinstance(name_or_index, (int, np.integer)) and not isinstance(name_or_index, bool):
        if not 0 <= int(name_or_index) < len(names):
            raise StyleError(f"style index {name_or_index} out of range 0..{len(names) - 1}; "
                             "run `multistyle styles` to list them")
        return int(name_or_index)
    text = str(name_or_index).strip()
    if text.isdigit():
        return style_index(int(text), names)
    lowered = [n.lower() for n in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    close = difflib.get_close_matches(text.lower(), lowered, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(names[lowered.index(c)] for c in close)}?" if close else \
        "run `multistyle styles` to list them"
    raise StyleError(f"unknown style {text!r}; {hint}")


def style_weights(style: StyleSpec, names: Sequence[str]) -> torch.Tensor:
    """[1, S] style weights from a name, an index, or a {name|index: weight} mix (validated, summing to 1)."""
    if isinstance(style, Mapping):
        if not style:
            raise StyleError("the style mix is empty; give at least one style with a weight")
        indices = [style_index(k, names) for k in style]
        normed = validate_blend_weights(list(style.values()), len(indices))
        weights = torch.zeros(1, len(names))
        for i, w in zip(indices, normed.tolist()):
            weights[0, i] += w
        return weights
    if isinstance(style, (list, tuple)):
        raise StyleError("give one style, or a {name: weight} mapping to mix several")
    weights = torch.zeros(1, len(names))
    weights[0, style_index(style, names)] = 1.0
    return weights


def parse_style_arg(text: str) -> StyleSpec:
    """CLI syntax: ``starry_night``, ``3`` or ``starry_night=0.7,great_wave=0.3``."""
    if "=" not in text and "," not in text:
        return text
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            mix[name.strip()] = float(value) if sep else 1.0
        except ValueError:
            raise StyleError(f"bad style weight {value!r} in {text!r}; write name=weight,name=weight") from None
    return mix


SCALE_RANGE = (0.1, 4.0)  # stroke scale: network size / image size


def check_scale(scale: float) -> float:
    """Stroke scale: the network runs at ``scale`` × the image's size; must be a number in 0.1..4."""
    lo, hi = SCALE_RANGE
    if isinstance(scale, bool) or not (isinstance(scale, (int, float)) and math.isfinite(scale) and lo <= scale <= hi):
        raise StyleError(f"scale must be a number between {lo:g} and {hi:g} (network size / image size), "
                         f"not {scale!r}")
    return float(scale)


def check_strength(strength: float) -> float:
    """Strength must be a number in [0, 1]; returns it as a float."""
    if not (isinstance(strength, (int, float)) and math.isfinite(strength) and 0 <= strength <= 1):
        raise StyleError(f"strength must be between 0 and 1, not {strength!r}")
    return float(strength)
