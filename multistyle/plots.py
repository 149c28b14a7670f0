"""Charts drawn with matplotlib (Agg, no display): loss curves, training curves with phases, latency charts.

Each chart has a ``*_figure`` function that builds a :class:`matplotlib.figure.Figure` (no pyplot state, safe in
threads) and a saver that writes it as PNG atomically. The figures are what the tests inspect.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from matplotlib.figure import Figure

from .paths import atomic_write

DPI = 100
FPS_LINES = ((30, "30 fps"), (10, "10 fps"))


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG, atomically (readers never see half a file)."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight"))


def _new_figure(size: tuple[int, int]) -> tuple[Figure, object]:
    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, which="major", alpha=0.3)
    return fig, ax


def _finite(x: Sequence[float], y: Sequence[float], log_y: bool) -> tuple[list[float], list[float]]:
    pairs = [(a, b) for a, b in zip(x, y) if b is not None and math.isfinite(b) and (b > 0 or not log_y)]
    return [a for a, _ in pairs], [b for _, b in pairs]


def line_figure(x: Sequence[float], series: Mapping[str, Sequence[float]], title: str = "", log_y: bool = False,
                size: tuple[int, int] = (640, 360), x_label: str = "", y_label: str = "",
                log_x: bool = False) -> Figure:
    """Line chart of ``series`` (name → y values aligned with ``x``; NaN/None gaps are skipped)."""
    return curves_figure({name: (x, values) for name, values in series.items()}, title, log_y, size, x_label,
                         y_label, log_x, markers_below=12)


def curves_figure(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str = "",
                  log_y: bool = False, size: tuple[int, int] = (640, 360), x_label: str = "", y_label: str = "",
                  log_x: bool = False, markers_below: int = 30) -> Figure:
    """Line chart of curves that each have their own x values (name → (xs, ys)), e.g. loss against seconds for
    recipes that log at different times; curves with fewer than ``markers_below`` points get markers."""
    fig, ax = _new_figure(size)
    for name, (x, y) in curves.items():
        xs, ys = _finite(x, y, log_y)
        ax.plot(xs, ys, label=name, marker="o" if len(xs) < markers_below else None, markersize=3, linewidth=1.5)
    ax.set(title=title, xlabel=x_label, ylabel=y_label)
    if log_y:
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    if len(curves) > 1:
        ax.legend(fontsize="small", loc="best")
    return fig


def line_plot(x: Sequence[float], series: Mapping[str, Sequence[float]], path: str | Path, title: str = "",
              log_y: bool = False, size: tuple[int, int] = (640, 360), x_label: str = "", y_label: str = "",
              log_x: bool = False) -> Path:
    """Write a PNG line chart (see :func:`line_figure`)."""
    return save_figure(line_figure(x, series, title, log_y, size, x_label, y_label, log_x), path)


def curves_plot(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, title: str = "",
                log_y: bool = False, size: tuple[int, int] = (640, 360), x_label: str = "", y_label: str = "") -> Path:
    """Write a PNG chart of curves with their own x values (see :func:`curves_figure`)."""
    return save_figure(curves_figure(curves, title, log_y, size, x_label, y_label), path)


def ema(values: Sequence[float], smoothing: float = 0.98) -> list[float]:
    """Exponential moving average with bias correction (the first points are not pulled towards 0)."""
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        avg = smoothing * avg + (1 - smoothing) * v
        weight = smoothing * weight + (1 - smoothing)
        out.append(avg / weight)
    return out


def phase_changes(history: Sequence[Mapping], keys: Sequence[str] = ("lr", "style_weight")) -> list[tuple[int, str]]:
    """(step, label) wherever a recorded setting (learning rate, style weight) changes between records."""
    changes, previous = [], None
    for record in history:
        now = {k: record[k] for k in keys if k in record}
        if previous is not None and now and now != previous:
            label = ", ".join(f"{k.replace('_', ' ')} {now[k]:g}" for k in keys if now.get(k) != previous.get(k))
            changes.append((int(record["step"]) - 1, label))
        previous = now or previous
    return changes


def training_figure(history: Sequence[Mapping], phases: Sequence[tuple[int, str]] | None = None,
                    terms: Sequence[str] = ("total", "content", "style"), smoothing: float = 0.98,
                    size: tuple[int, int] = (900, 480), title: str = "training loss") -> Figure:
    """Loss per step: each term's raw curve faint, its EMA on top, log y; vertical lines where a phase starts
    (``phases`` given, or changes of ``lr``/``style_weight`` found in the records)."""
    fig, ax = _new_figure(size)
    steps = [int(h["step"]) for h in history]
    colors = {"total": "black", "content": "tab:blue", "style": "tab:orange", "tv": "tab:green"}
    for term in terms:
        values = [float(h[term]) for h in history if term in h]
        if not values:
            continue
        xs, ys = _finite(steps, values, True)
        ax.plot(xs, ys, color=colors.get(term), alpha=0.18, linewidth=0.8)
        ax.plot(xs, ema(ys, smoothing), color=colors.get(term), linewidth=1.8, label=f"{term} (EMA)")
    ax.set_yscale("log")
    ax.set(title=title, xlabel="step", ylabel="loss")
    for step, label in (phases if phases is not None else phase_changes(history)):
        ax.axvline(step, color="grey", linestyle="--", linewidth=1)
        ax.annotate(label, (step, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                    textcoords="offset points", rotation=90, va="top", fontsize="small", color="dimgrey")
    ax.legend(fontsize="small", loc="upper center")
    return fig


def training_plot(history: Sequence[Mapping], path: str | Path, phases: Sequence[tuple[int, str]] | None = None,
                  **kwargs) -> Path:
    """Write the training-loss chart (see :func:`training_figure`)."""
    return save_figure(training_figure(history, phases, **kwargs), path)


def latency_figure(rows: Sequence[Mapping], size: tuple[int, int] = (760, 440)) -> Figure:
    """Milliseconds per frame against megapixels, one line per device / width / dtype, log y, with the
    30 fps and 10 fps budgets as horizontal lines. Rows: ``device, width, dtype, pixels, ms``."""
    fig, ax = _new_figure(size)
    groups: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        groups.setdefault(f"{r['device']} width {r['width']} {r['dtype']}", []).append((r["pixels"] / 1e6, r["ms"]))
    for name, points in groups.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    for fps, label in FPS_LINES:
        ax.axhline(1000 / fps, color="grey", linestyle=":", linewidth=1)
        ax.annotate(label, (0, 1000 / fps), xycoords=("axes fraction", "data"), xytext=(4, 2),
                    textcoords="offset points", fontsize="small", color="dimgrey")
    ax.set_yscale("log")
    ax.set(title="fast network latency per frame", xlabel="megapixels per frame", ylabel="ms per frame (log)")
    ax.legend(fontsize="small", loc="best")
    return fig


def latency_plot(rows: Sequence[Mapping], path: str | Path) -> Path:
    """Write the latency chart (see :func:`latency_figure`)."""
    return save_figure(latency_figure(rows), path)
