"""One frame through the network: :class:`FrameStylizer` (BGR uint8 in, BGR uint8 out, at the processing size,
flicker reduction as a second stage), the :class:`FrameSettings` it reads, per-stage timing and torch.compile."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..errors import MultistyleError
from ..stylizer import Stylizer
from .flicker import FlickerReducer
from .sources import resize_for_processing


class StageTimer:
    """Per-stage wall times of the video pipeline (each stage runs in one thread; appends are thread-safe)."""

    def __init__(self, sync: bool = False) -> None:
        self.sync = sync  # wait for the GPU at each stage boundary so device work is charged to its stage
        self.times: dict[str, list[float]] = defaultdict(list)

    def add(self, stage: str, seconds: float) -> None:
        self.times[stage].append(seconds)

    def mean_ms(self, skip: int = 2) -> dict[str, float]:
        """Mean milliseconds per frame of each stage, after ``skip`` warm-up frames."""
        return {k: 1000 * float(np.mean(v[skip:] or v)) for k, v in self.times.items() if v}


@dataclass
class FrameSettings:
    """What every frame is stylized with. The webcam's keys (:class:`multistyle.apps.webcam.Controls`), the demo's
    sliders or a command's flags edit it between frames; the next frame uses the new values."""

    weights: torch.Tensor  # [1, S] style weights summing to 1 (:func:`multistyle.styles.style_weights`)
    strength: float = 1.0
    preserve_color: bool = False
    flicker: bool = True  # flow-based flicker reduction
    scale: float = 1.0  # stroke scale: the network runs at scale × the processing size


class FrameStylizer:
    """BGR uint8 frame → stylized BGR uint8 frame at processing size, with optional flicker reduction.

    On a compiled engine (:attr:`Stylizer.compiled`) the frame goes through one graph, uint8 BGR in and out, with the
    conversions and the strength blend inside it. Otherwise the frame goes to the device as uint8 and comes back as
    uint8 BGR (converted on the device: a quarter of the float traffic); the style weights stay on the device until
    the mix changes, so the network's γ/β cache holds.
    :meth:`infer` and :meth:`deflicker` are separate stages (:meth:`stages`), run in separate threads.
    ``compile``: run the network through ``torch.compile`` (CUDA graphs on CUDA) for the fixed frame size.
    """

    def __init__(self, stylizer: Stylizer, settings: FrameSettings, size: int, timer: StageTimer | None = None,
                 compile: bool = False) -> None:
        self.stylizer = stylizer
        self.settings = settings
        self.size = size
        self.flicker = FlickerReducer()
        self.timer = timer
        self.device = stylizer.device
        self._cuda = self.device.type == "cuda"
        self._weights: tuple[tuple[float, ...], torch.Tensor] | None = None
        self._affine: tuple[tuple[float, ...], np.ndarray] | None = None
        self.net = None
        if self._cuda:
            torch.backends.cudnn.benchmark = True  # fixed frame size: let cuDNN pick the fastest kernels
        if compile:
            self.net = compile_net(stylizer.net, self.device)

    def weights(self) -> torch.Tensor:
        """The settings' style weights on the device; the same tensor until the mix changes."""
        w = self.settings.weights
        key = tuple(w.reshape(-1).tolist())
        if self._weights is None or self._weights[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                self._weights = (key, w.to(self.device, copy=True))  # a plain tensor: the cache can key on it
        return self._weights[1]

    def affine(self) -> np.ndarray:
        """The settings' style as the compiled graph's input; computed again only when the mix changes."""
        w = self.settings.weights
        key = tuple(w.reshape(-1).tolist())
        if self._affine is None or self._affine[0] != key:
            self._affine = (key, self.stylizer.affine(w))
        return self._affine[1]

    def _in_graph(self, small: np.ndarray) -> bool:
        """Whether the whole frame runs as one compiled graph: a compiled engine, stroke scale 1, no colour
        preservation and a frame the net takes without padding."""
        c, multiple = self.settings, getattr(self.stylizer.net, "multiple", 4)
        return (self.stylizer.compiled and self.net is None and c.scale == 1.0 and not c.preserve_color
                and small.shape[0] % multiple == 0 and small.shape[1] % multiple == 0 and min(small.shape[:2]) >= 8)

    def _lap(self, stage: str, start: float) -> float:
        if self.timer is None:
            return start
        if self._cuda and self.timer.sync:
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.timer.add(stage, now - start)
        return now

    @torch.inference_mode()
    def infer(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Resize to processing size, stylize → (small input, stylized) both uint8 BGR, without flicker reduction."""
        c = self.settings
        t = time.perf_counter()
        small = resize_for_processing(frame, self.size)
        if self._in_graph(small):
            out = self.stylizer.uint8(small, self.affine(), c.strength, bgr=True)
            self._lap("model", t)
            return small, out
        host = torch.from_numpy(np.ascontiguousarray(small))
        if self._cuda:
            host = host.pin_memory()
        dev = host.to(self.device, non_blocking=True)
        t = self._lap("upload", t)
        x = dev.permute(2, 0, 1).flip(0)[None].to(self.stylizer.dtype).div_(255)  # BGR HWC uint8 → RGB NCHW
        out = self.stylizer.raw(x, self.weights(), c.scale, net=self.net)
        out = self.stylizer.finish(out, x, c.strength, c.preserve_color)
        bgr8 = out.mul_(255).add_(0.5).to(torch.uint8)[0].flip(0).permute(1, 2, 0).contiguous()
        t = self._lap("model", t)
        bgr = bgr8.cpu().numpy()
        self._lap("download", t)
        return small, bgr

    def deflicker(self, small: np.ndarray, stylized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flicker reduction (when on in the settings) → (small input, output)."""
        t = time.perf_counter()
        if self.settings.flicker:
            stylized = self.flicker(small, stylized)
        else:
            self.flicker.reset()
        self._lap("flow", t)
        return small, stylized

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.deflicker(*self.infer(frame))

    def stages(self) -> list[Callable]:
        """The pipeline stages, each run in its own thread by :func:`~multistyle.video.pipeline.run_pipeline`:
        the network, then flicker reduction on its (small input, stylized) pair."""
        return [self.infer, lambda item: self.deflicker(*item)]


def compile_net(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``torch.compile`` for a fixed frame size: CUDA graphs ("reduce-overhead") on CUDA, Inductor's C++ code on
    the CPU. Compilation happens on the first frame; a failure there becomes a clear :class:`MultistyleError`."""
    try:
        compiled = torch.compile(net, mode="reduce-overhead" if device.type == "cuda" else "default", dynamic=False)
    except Exception as exc:  # noqa: BLE001 - any backend problem becomes one clear line
        raise MultistyleError(f"--compile is not available here ({_first_line(exc)}); run without --compile") from None
    return _GuardedCompiled(compiled, device)


class _GuardedCompiled(torch.nn.Module):
    """Turns a compiler failure (missing C++ compiler, unsupported GPU ...) into a one-line MultistyleError."""

    def __init__(self, compiled, device: torch.device) -> None:
        super().__init__()
        self.compiled, self.device = compiled, device

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        try:
            out = self.compiled(x, style)
        except MultistyleError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise MultistyleError(f"--compile failed on {self.device} ({exc.__class__.__name__}: "
                                  f"{_first_line(exc)}); run without --compile") from None
        return out.clone() if self.device.type == "cuda" else out  # CUDA graph outputs are reused by the next call


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else exc.__class__.__name__
