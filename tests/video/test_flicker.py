"""Flicker reduction: the reducer's blend, that it lowers the flicker metric on the test clip, and that the reduced
over raw flicker ratio stays within the camera goal (≤ 0.4) with one coarse flow per frame."""

from __future__ import annotations

import cv2
import numpy as np
from conftest import DATA

from multistyle.styles import style_weights
from multistyle.stylizer import get_stylizer
from multistyle.video.flicker import PARTS, FlickerReducer, flicker_metric
from multistyle.video.frames import FrameSettings, FrameStylizer
from multistyle.video.sources import resize_for_processing

CLIP = DATA / "video" / "bunny.mp4"


def read_frames(count: int, size: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        assert ok
        frames.append(resize_for_processing(frame, size))
    cap.release()
    return frames


def test_flicker_reduction_lowers_flicker_metric():
    frames = read_frames(16, 160)
    stylizer = get_stylizer(device="cpu")
    results = {}
    for flicker in (False, True):
        settings = FrameSettings(style_weights("starry_night", stylizer.names), flicker=flicker)
        process = FrameStylizer(stylizer, settings, 160)
        results[flicker] = flicker_metric(frames, [process(f)[1] for f in frames])
    assert results[True] < 0.8 * results[False], results


def test_flicker_reducer_blends_as_documented():
    """The OpenCV form of the reducer: keep × mask × warped previous output + the rest of the fresh frame,
    rounded; a static scene (zero flow, identical inputs) keeps 70 % of the previous output everywhere."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    first, second = (rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2))
    expected = 0.7 * first.astype(np.float32) + 0.3 * second.astype(np.float32)
    for flow_side in (None, 32):  # flows and mask at full size, and at half size upsampled
        reducer = FlickerReducer(keep=0.7, flow_side=flow_side)
        assert np.array_equal(reducer(frame, first), first)  # nothing to blend with yet
        out = reducer(frame.copy(), second)
        assert out.shape == second.shape and np.abs(out.astype(np.float32) - expected).max() <= 1.0


RATIO_GOAL = 0.4  # reduced / raw flicker metric, the camera goal (BENCHMARKS.md; 0.375 at 640x480, 0.37 here)


def test_reduced_flicker_ratio_meets_the_goal_on_a_real_clip():
    """bunny.mp4 at 320x180, the network's frames without and with the reducer (its default: the flow at the
    processing size here, at half size from 640 up); the reducer timed its parts on every blended frame."""
    frames = read_frames(16, 320)
    stylizer = get_stylizer(device="cpu")
    settings = FrameSettings(style_weights("starry_night", stylizer.names), flicker=False)
    raw = [FrameStylizer(stylizer, settings, 320)(f)[1] for f in frames]
    reducer = FlickerReducer()
    reduced = [reducer(f, r) for f, r in zip(frames, raw)]
    ratio = flicker_metric(frames, reduced) / flicker_metric(frames, raw)
    assert ratio <= RATIO_GOAL, ratio
    coarse = FlickerReducer(flow_side=160)  # the 640x480 path: flow and mask at half size, the map upsampled
    ratio_coarse = flicker_metric(frames, [coarse(f, r) for f, r in zip(frames, raw)]) / flicker_metric(frames, raw)
    assert ratio_coarse < 0.5, ratio_coarse
    parts = reducer.ms_by_part()
    assert set(parts) == {*PARTS, "total"} and all(parts[k] > 0 for k in PARTS)
