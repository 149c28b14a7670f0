"""Flicker reduction after the network: the previous stylized frame, warped onto the current one by dense optical
flow of the input frames (OpenCV DIS, at a coarser size) and blended in where the warped previous input matches
the current one; and the flicker metric the benchmarks and tests measure it with (full-size flows both ways and a
forward-backward consistency mask: the judge is stricter than the reducer)."""

from __future__ import annotations

import time

import cv2
import numpy as np


def _gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def _grid(h: int, w: int) -> np.ndarray:
    """The pixel grid (x, y) as float32 [H, W, 2], built once per size."""
    grid = _GRIDS.get((h, w))
    if grid is None:
        if len(_GRIDS) > 8:  # a few sizes at a time (the webcam's, the metric's)
            _GRIDS.clear()
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        grid = _GRIDS[(h, w)] = np.dstack([xs, ys])
    return grid


def _sampling_map(flow: np.ndarray) -> np.ndarray:
    """``x + flow(x)`` as one float32 [H, W, 2] map for ``cv2.remap``."""
    return flow + _grid(*flow.shape[:2])


def _remap(image: np.ndarray, sampling_map: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``sampling_map`` (bilinear, border replicated): a warp along the map's flow."""
    return cv2.remap(image, sampling_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _norm(flow: np.ndarray) -> np.ndarray:
    return cv2.magnitude(*cv2.split(flow))


_KERNEL = np.ones((3, 3), np.uint8)  # an untrusted pixel's neighbours are not trusted either


class FlowEstimator:
    """Dense optical flow with OpenCV's DIS (fast preset)."""

    def __init__(self) -> None:
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow f with ``source(x) ≈ target(x + f(x))``."""
        return self.dis.calc(_gray(source), _gray(target), None)


def consistency_mask(backward: np.ndarray, forward: np.ndarray, current: np.ndarray, warped_prev: np.ndarray,
                     flow_tol: float = 1.0, color_tol: float = 30.0,
                     sampling_map: np.ndarray | None = None) -> np.ndarray:
    """1 where the previous frame's pixel is trustworthy: forward-backward flow agrees (not occluded) and the
    warped previous input looks like the current input; 0 elsewhere. Float32 [H, W] softened by a blur.
    ``sampling_map``: ``_sampling_map(backward)`` when the caller has it (it warped ``warped_prev`` with it).
    (OpenCV primitives throughout: at 640x360 this was 28 ms in NumPy, the costliest part of the pipeline's
    flicker stage.)"""
    if sampling_map is None:
        sampling_map = _sampling_map(backward)
    round_trip = backward + _remap(forward, sampling_map)
    bad_flow = _norm(round_trip) > flow_tol + 0.05 * (_norm(backward) + _norm(forward))
    diff = cv2.absdiff(current, warped_prev)
    if diff.ndim == 3:
        channels = cv2.split(diff)
        diff = channels[0]
        for c in channels[1:]:
            diff = cv2.max(diff, c)
    mask = np.logical_not(bad_flow | (diff > color_tol)).astype(np.float32)
    return cv2.GaussianBlur(mask, (5, 5), 0)


PARTS = ("gray", "flow", "mask", "map", "warp", "blend")  # the reducer's parts, timed per frame (ms_by_part)


class FlickerReducer:
    """Blend each stylized frame with the previous stylized frame warped onto it by optical flow of the input
    frames, where the warped previous input matches the current one; new or occluded pixels keep the fresh
    stylization.

    Per frame (measured at 640x480 on one AVX2-capped core, BENCHMARKS.md): one gray image at ``flow_side``
    (the previous frame's is kept), one DIS flow (current → previous, ``preset``; the forward flow and its
    round-trip check cost as much again and the photometric check alone keeps the flicker ratio), the trust mask
    from that gray warp, then at full size one fixed-point remap of the previous output and one blend:
    ``keep`` × warped + (1 − ``keep``) × fresh, fresh where the mask does not trust the flow."""

    def __init__(self, keep: float = 0.7, flow_side: int | None = 320,
                 preset: int = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, color_tol: int = 30) -> None:
        self.keep = keep
        self.flow_side = flow_side  # flow and mask at most this long side, then upsampled (None: full size)
        self.color_tol = color_tol  # gray levels a warped previous pixel may differ by and still be trusted
        self.dis = cv2.DISOpticalFlow_create(preset)
        self.prev_gray: np.ndarray | None = None
        self.prev_output: np.ndarray | None = None
        self._ms = dict.fromkeys(PARTS, 0.0)  # summed ms of each part over the blended frames (bounded)
        self._frames = 0

    def reset(self) -> None:
        self.prev_gray = self.prev_output = None

    def ms_by_part(self) -> dict[str, float]:
        """Mean ms per blended frame of each part (:data:`PARTS`) and their ``total``, since construction."""
        ms = {k: v / max(self._frames, 1) for k, v in self._ms.items()}
        return {**ms, "total": sum(ms.values())}

    def _lap(self, part: str, began: float) -> float:
        now = time.perf_counter()
        self._ms[part] += 1000 * (now - began)
        return now

    def __call__(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """``frame`` and ``stylized``: uint8 [H, W, 3] of the same size → the temporally smoothed stylization."""
        t = time.perf_counter()
        h, w = frame.shape[:2]
        scale = min(1.0, self.flow_side / max(h, w)) if self.flow_side else 1.0
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = _gray(frame)
        if size != (w, h):  # flow and mask at low resolution: DIS and the mask cost scale with the pixels
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        previous, self.prev_gray = self.prev_gray, gray
        if previous is None or previous.shape != gray.shape or self.prev_output.shape != stylized.shape:
            self.prev_output = stylized
            return stylized
        t = self._lap("gray", t)
        backward = self.dis.calc(gray, previous, None)  # gray(x) ≈ previous(x + backward(x))
        t = self._lap("flow", t)
        sampling_map = _sampling_map(backward)
        warped = _remap(previous, sampling_map)
        untrusted = cv2.dilate((cv2.absdiff(gray, warped) > self.color_tol).view(np.uint8), _KERNEL)
        t = self._lap("mask", t)
        if size != (w, h):  # the flow in full-size pixels on the full grid (resize, then one fused pass)
            flow = cv2.resize(backward, (w, h), interpolation=cv2.INTER_LINEAR)
            sampling_map = cv2.scaleAdd(flow, w / size[0], _grid(h, w))
            untrusted = cv2.resize(untrusted, (w, h), interpolation=cv2.INTER_NEAREST)
        fixed = cv2.convertMaps(sampling_map, None, cv2.CV_16SC2)  # fixed-point: a cheaper remap, 1/32 px steps
        t = self._lap("map", t)
        out = cv2.remap(self.prev_output, *fixed, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        t = self._lap("warp", t)
        cv2.addWeighted(out, self.keep, stylized, 1.0 - self.keep, 0.0, dst=out)  # in place: rounded, saturated
        cv2.copyTo(stylized, untrusted, out)  # fresh where the previous pixel is not trusted
        self._lap("blend", t)
        self._frames += 1
        self.prev_output = out
        return out


def flicker_metric(frames: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    """Mean absolute difference (0–255) between consecutive stylized frames after warping the earlier one onto
    the later by the input frames' flow, over pixels where that flow is consistent."""
    flow = FlowEstimator()
    total, count = 0.0, 0
    for t in range(1, len(frames)):
        backward = flow(frames[t], frames[t - 1])
        forward = flow(frames[t - 1], frames[t])
        sampling_map = _sampling_map(backward)  # shared by the three warps along the backward flow
        mask = consistency_mask(backward, forward, frames[t], _remap(frames[t - 1], sampling_map),
                                sampling_map=sampling_map) > 0.99
        diff = np.abs(outputs[t].astype(np.float32) - _remap(outputs[t - 1], sampling_map).astype(np.float32)).mean(2)
        total += float(diff[mask].sum())
        count += int(mask.sum())
    return total / max(count, 1)
