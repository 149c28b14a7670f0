"""The progress callback every long job takes (Gatys, refine, training, distillation, add-style)."""

from __future__ import annotations

from typing import Callable

ProgressFn = Callable[[int, int, dict[str, float]], None]
"""``progress(step, total, record)``: called after each step; ``record`` holds that step's losses and timings."""
