"""Warm start of a new style: its γ/β rows begin as a convex blend of the existing rows, weighted by how well the
existing paintings' VGG Gram matrices explain the new painting's (non-negative least squares). The network already
blends styles by mixing rows, so a blend that matches the painting's statistics starts far closer than the mean
of the rows did (measured: 1.8–3.7× the jointly trained row's held-out loss instead of 2.5–4.3×; MODEL.md).

The blend itself lives in :mod:`multistyle.zero_shot` (``stylize(..., painting=...)`` applies it without training);
it is re-exported here for the add-style loop."""

from __future__ import annotations

from ..zero_shot import INIT_SIZE, blend_weights, gram_features, init_rows, nnls

__all__ = ["INIT_SIZE", "blend_weights", "gram_features", "init_rows", "nnls"]
