"""Small plots drawn with OpenCV (no plotting library needed): loss curves and latency charts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from .imageio import atomic_write

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # RGB


def line_plot(x: Sequence[float], series: Mapping[str, Sequence[float]], path: str | Path, title: str = "",
              log_y: bool = False, size: tuple[int, int] = (640, 360), x_label: str = "") -> Path:
    """Write a PNG line chart of ``series`` (name → y values, same length as ``x``)."""
    width, height = size
    left, right, top, bottom = 70, 120, 30, 40
    canvas = np.full((height, width, 3), 255, np.uint8)

    def ty(v: float) -> float:
        return math.log10(max(v, 1e-12)) if log_y else v

    ys = [ty(v) for values in series.values() for v in values if math.isfinite(v) and (v > 0 or not log_y)]
    if not x or not ys:
        ys = [0.0, 1.0]
    x0, x1 = min(x, default=0), max(x, default=1)
    y0, y1 = min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def point(xv: float, yv: float) -> tuple[int, int]:
        px = left + (xv - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (ty(yv) - y0) / (y1 - y0) * (height - top - bottom)
        return int(px), int(py)

    cv2.rectangle(canvas, (left, top), (width - right, height - bottom), (0, 0, 0), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, title, (left, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for frac in (0.0, 0.5, 1.0):
        yv = y0 + frac * (y1 - y0)
        label = f"{10 ** yv:.3g}" if log_y else f"{yv:.3g}"
        cv2.putText(canvas, label, (2, int(height - bottom - frac * (height - top - bottom)) + 4), font, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
        xv = x0 + frac * (x1 - x0)
        cv2.putText(canvas, f"{xv:.4g}", (int(left + frac * (width - left - right)) - 10, height - bottom + 15),
                    font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    if x_label:
        cv2.putText(canvas, x_label, (width // 2 - 30, height - 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (name, values) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        pts = [point(xv, yv) for xv, yv in zip(x, values) if math.isfinite(yv) and (yv > 0 or not log_y)]
        if len(pts) > 1:
            cv2.polylines(canvas, [np.array(pts, np.int32)], False, color, 2, cv2.LINE_AA)
        elif pts:
            cv2.circle(canvas, pts[0], 3, color, -1)
        cv2.putText(canvas, name, (width - right + 8, top + 15 + 18 * k), font, 0.45, color, 1, cv2.LINE_AA)
    ok, data = cv2.imencode(".png", canvas[:, :, ::-1])
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data.tobytes()))
