"""Temporal stability of the network (``python -m benchmarks flicker``): raw and flow-reduced flicker per style on
the test clip and on a synthetic clip with exact motion (a photo panned and zoomed), for the packaged model and
``--compare`` models in one run (the webcam bench gives the fps with and without the reducer)."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import cv2
import numpy as np

from .kit import DATA, ROOT, effort, register, table


def clip_frames(count: int, size: int) -> list[np.ndarray]:
    """The first ``count`` frames of bunny.mp4 at ``size`` px (long side)."""
    from multistyle.video.sources import resize_for_processing

    cap = cv2.VideoCapture(str(DATA / "video" / "bunny.mp4"))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(resize_for_processing(frame, size))
    cap.release()
    return frames


def panned_frames(count: int, size: int) -> list[np.ndarray]:
    """A photo panned (1 px per frame) and zoomed (0.2 % per frame): motion the flow can follow exactly."""
    photo = cv2.imread(str(ROOT / "examples" / "tubingen.jpg"))
    h, w = photo.shape[:2]
    scale = size / max(h, w) * 1.3  # room to pan
    photo = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    out_w, out_h = size // 4 * 4, round(size * h / w) // 4 * 4
    frames = []
    for t in range(count):
        zoom = 1 + 0.002 * t
        matrix = np.float32([[zoom, 0, -t * 1.0], [0, zoom, -t * 0.5]])
        frames.append(cv2.warpAffine(photo, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT))
    return frames


def flicker_rows(model_path, label: str, clips: dict[str, list[np.ndarray]], styles: list[str]) -> list[dict]:
    """Raw and reduced flicker of one model for every style on every clip."""
    from multistyle.styles import style_weights
    from multistyle.stylizer import get_stylizer
    from multistyle.video.flicker import flicker_metric
    from multistyle.video.frames import FrameSettings, FrameStylizer

    stylizer = get_stylizer(model_path, "cpu")
    rows = []
    for clip, frames in clips.items():
        for name in styles:
            row = {"model": label, "clip": clip, "style": name}
            for reduce in (False, True):
                settings = FrameSettings(style_weights(name, stylizer.names), flicker=reduce)
                process = FrameStylizer(stylizer, settings, max(frames[0].shape[:2]))
                row["reduced" if reduce else "raw"] = flicker_metric(frames, [process(f)[1] for f in frames])
            rows.append(row)
    return rows


@register("flicker")
def bench_flicker(args: argparse.Namespace) -> dict:
    """Flicker metric (0-255, consistent pixels) per style, raw network and with the flow reducer, on bunny.mp4 and
    on a panned photo, packaged model vs ``--compare`` models; medians per model and clip."""
    from multistyle.modelfile import get_model

    size = effort(args, 320, 320, 64)
    count = effort(args, 72, 24, 3)
    clips = {"bunny.mp4": clip_frames(count, size), "panned photo": panned_frames(count, size)}
    models = [(None, "packaged")] + [(f, Path(f).stem) for f in getattr(args, "compare", None) or []]
    names = get_model(None).style_names
    styles = effort(args, names, names[::4], names[:1])
    rows = [r for path, label in models for r in flicker_rows(path, label, clips, styles)]
    input_flicker = {clip: _input_flicker(frames) for clip, frames in clips.items()}
    print(table(f"Flicker per style ({count} frames at {size} px; the input itself: "
                + ", ".join(f"{c} {v:.2f}" for c, v in input_flicker.items()) + ")",
                ["model", "clip", "style", "raw network", "with flow reducer"],
                [[r["model"], r["clip"], r["style"], r["raw"], r["reduced"]] for r in rows]))
    summary = []
    for _, label in models:
        for clip in clips:
            mine = [r for r in rows if r["model"] == label and r["clip"] == clip]
            summary.append({"model": label, "clip": clip, "median_raw": statistics.median(r["raw"] for r in mine),
                            "median_reduced": statistics.median(r["reduced"] for r in mine)})
    print(table("Flicker medians over the styles", ["model", "clip", "median raw", "median with reducer"],
                [[s["model"], s["clip"], s["median_raw"], s["median_reduced"]] for s in summary]))
    return {"flicker": rows, "flicker_summary": summary, "input_flicker": input_flicker}


def _input_flicker(frames: list[np.ndarray]) -> float:
    from multistyle.video.flicker import flicker_metric

    return flicker_metric(frames, frames)
