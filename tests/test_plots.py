"""Charts: the figures carry what a reader needs (log axes, labels, smoothed curves, phases, fps budgets)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from multistyle.plots import (
    curves_figure,
    ema,
    latency_figure,
    line_plot,
    phase_changes,
    training_figure,
)


def history(steps: int = 300) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for s in range(1, steps + 1):
        lr, sw = (2e-3, 300.0) if s <= 100 else (3e-3, 100.0) if s <= 250 else (1e-3, 100.0)
        content = 1e5 * (1 + 0.2 * rng.standard_normal() ** 2)
        style = 1e6 / s * (1 + 0.5 * rng.random())
        out.append({"step": s, "content": content, "style": style, "tv": 300.0, "total": content + style + 300,
                    "lr": lr, "style_weight": sw})
    return out


def test_training_figure_has_log_axis_labels_raw_and_smoothed_curves_and_phases():
    fig = training_figure(history())
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"
    labels = [line.get_label() for line in ax.get_lines()]
    assert {"total (EMA)", "content (EMA)", "style (EMA)"} <= set(labels)
    raw = [line for line in ax.get_lines() if line.get_alpha() is not None and line.get_alpha() < 0.5]
    assert len(raw) == 3  # the raw curves are drawn, faintly
    smooth = next(line for line in ax.get_lines() if line.get_label() == "total (EMA)")
    assert np.std(np.diff(np.log(smooth.get_ydata()[50:]))) < np.std(np.diff(np.log(raw[0].get_ydata()[50:])))
    phases = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert phases == [100, 250]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["lr 0.003, style weight 100", "lr 0.001"]


def test_phase_changes_and_ema():
    assert phase_changes(history()) == [(100, "lr 0.003, style weight 100"), (250, "lr 0.001")]
    assert phase_changes([{"step": 1, "total": 1.0}, {"step": 2, "total": 2.0}]) == []
    assert ema([4.0, 4.0, 4.0]) == [4.0, 4.0, 4.0]  # bias-corrected: no pull towards 0 at the start
    smoothed = ema([0.0, 10.0] * 50, 0.9)
    assert 3 < smoothed[-1] < 7


def test_latency_figure_marks_30_and_10_fps_and_groups_devices():
    rows = [{"device": d, "width": 0.25, "dtype": t, "pixels": w * h, "ms": ms}
            for d, t, f in (("cpu", "fp32", 1.0), ("cuda", "fp16", 0.05))
            for (w, h), ms in (((320, 240), 20 * f), ((640, 480), 80 * f), ((1280, 720), 290 * f))]
    ax = latency_figure(rows).axes[0]
    assert ax.get_yscale() == "log" and "megapixels" in ax.get_xlabel() and "ms" in ax.get_ylabel()
    budgets = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":")
    assert math.isclose(budgets[0], 1000 / 30) and math.isclose(budgets[1], 100)
    series = {line.get_label(): list(line.get_xdata()) for line in ax.get_lines() if line.get_linestyle() == "-"}
    assert set(series) == {"cpu width 0.25 fp32", "cuda width 0.25 fp16"}
    assert series["cpu width 0.25 fp32"] == sorted(series["cpu width 0.25 fp32"])


def test_line_plot_writes_a_real_chart(tmp_path):
    path = line_plot([1, 2, 3], {"a": [1.0, 10.0, 100.0], "b": [2.0, float("nan"), 3.0]}, tmp_path / "p.png",
                     title="t", log_y=True, size=(400, 300), x_label="x", y_label="y")
    image = np.asarray(Image.open(path).convert("RGB"))
    assert 250 <= image.shape[0] <= 350 and 350 <= image.shape[1] <= 450
    assert (image < 128).any() and (image > 250).mean() > 0.5  # ink on a mostly white page
    assert not list(tmp_path.glob(".*tmp"))


def test_curves_figure_keeps_each_curves_own_x_values_and_drops_non_positive_points_on_a_log_axis():
    fig = curves_figure({"fast": ([1.0, 2.0, 3.0], [9.0, 4.0, 0.0]), "slow": ([5.0, 50.0], [8.0, 2.0])},
                        "loss against seconds", log_y=True)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["fast"].get_xdata()) == [1.0, 2.0] and list(lines["slow"].get_xdata()) == [5.0, 50.0]
    assert ax.get_yscale() == "log" and ax.get_legend() is not None
