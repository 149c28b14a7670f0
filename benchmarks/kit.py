"""The benchmark kit: the registry every benchmark module registers into, and each helper they share, once:
the machine description and markdown tables, effort levels, data paths, interleaved timing (:func:`interleaved_ms`),
process memory (:func:`rss_mb`), a demo server for a bench (:func:`serve`, :func:`free_port`) and the webcam run
(:func:`webcam_run` as a subprocess, :func:`pipeline_run` in this process). It imports no benchmark module, so
registering never creates an import cycle; ``python -m benchmarks`` imports the benchmark modules and runs them."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MULTISTYLE_DATA", ROOT.parent / "shared" / "data"))
CLIP = DATA / "video" / "bunny.mp4"
HELD_OUT = ("tubingen.jpg", "kodak_lighthouse.jpg")  # DATA/content photos the quality benches judge on
CPU_CLASSES = {"native": {},  # the CPU this runs on
               "avx512": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"},  # AVX-512 without BF16
               "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}  # AVX2 laptops

CHILD_TIMEOUT_S = 1800  # no bench's subprocess may run longer (the slowest, a class's camera worker, takes minutes)
BenchFn = Callable[[argparse.Namespace], dict]
BENCHES: dict[str, BenchFn] = {}
HEADLINE: list[str] = []  # the benches ``python -m benchmarks all`` runs, in registration order


def register(name: str, fn: BenchFn | None = None, headline: bool = True):
    """Add a benchmark under ``name`` (usable as a decorator); ``headline=False`` keeps it out of ``all``."""
    def add(f: BenchFn) -> BenchFn:
        BENCHES[name] = f
        if headline and name not in HEADLINE:
            HEADLINE.append(name)
        return f
    return add(fn) if fn is not None else add


def devices(args: argparse.Namespace) -> list[str]:
    """Devices a benchmark runs on: every one present for ``--device all`` (the default), else the one named."""
    if args.device in ("all", "auto"):
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {args.device}, but torch sees no CUDA device here")
    return [args.device]


def effort(args: argparse.Namespace, full, quick, smoke):
    """The setting for this run's effort: ``--smoke`` (tiny, only proves it runs), ``--quick`` or full."""
    return smoke if getattr(args, "smoke", False) else quick if getattr(args, "quick", False) else full


# ---- the machine and the tables ---------------------------------------------------------------------------------

def cpu_flags() -> str:
    """The AVX flags of this CPU (``lscpu | grep -o 'avx[^ ]*' | sort -u``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return " ".join(sorted({w for w in out.split() if w.startswith("avx")})) or "no AVX"


def machine() -> dict:
    """CPU, cores, GPU and torch version, for the header of every table."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "gpu": gpu,
            "torch": torch.__version__, "python": platform.python_version()}


def table(title: str, headers: list[str], rows: list[list]) -> str:
    """Markdown table; floats get 3 significant digits."""
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---- data and models --------------------------------------------------------------------------------------------

def content_path() -> Path:
    return ROOT / "examples" / "tubingen.jpg"


def style_path(name: str = "starry_night") -> Path:
    path = DATA / "styles" / f"{name}.jpg"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; set MULTISTYLE_DATA to the folder holding styles/")
    return path


def compared_model(args: argparse.Namespace) -> Path:
    """The model the benches measure: ``--model``, else the packaged default (v2)."""
    from multistyle.modelfile import resolve_model_path

    return resolve_model_path(args.model or "v2")


@torch.no_grad()
def render(net, index: int, photo: torch.Tensor) -> torch.Tensor:
    """Style ``index`` of ``net`` on ``photo`` [1, 3, H, W]: padded to the net's multiple, run, cropped back."""
    from multistyle.stylizer import pad_to_multiple

    out = net(pad_to_multiple(photo)[0], torch.tensor([index], device=photo.device))
    return out[..., : photo.shape[-2], : photo.shape[-1]]


# ---- timing and memory ------------------------------------------------------------------------------------------

def interleaved_ms(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 1, gap_s: float = 0.0,
                   sync: bool = False) -> dict[str, float]:
    """Median ms per call of each function, timed round-robin so load from elsewhere hits all alike: ``warmup``
    untimed rounds, then ``repeat`` timed ones. ``gap_s``: an untimed pause before every call (a thread pool
    that spins after its run, e.g. onnxruntime's, would otherwise take a core from the next call: measured 62 ms
    alone, 94 ms right after the peer's). ``sync``: wait for CUDA after every call."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + repeat):
        for name, fn in fns.items():
            if gap_s:
                time.sleep(gap_s)
            start = time.perf_counter()
            fn()
            if sync and torch.cuda.is_available():
                torch.cuda.synchronize()
            if i >= warmup:
                times[name].append((time.perf_counter() - start) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def rss_mb(pid: int | None = None, peak: bool = False) -> float:
    """Resident memory of process ``pid`` (default: this one) in MB; ``peak``: its high-water mark instead."""
    key = "VmHWM:" if peak else "VmRSS:"
    with open(f"/proc/{pid or 'self'}/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return 0.0


# ---- a demo server for a bench ----------------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DemoServer:
    """A running ``multistyle demo`` subprocess (see :func:`serve`)."""

    proc: subprocess.Popen
    port: int
    log: object  # the file its stderr goes to

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, chars: int = 400) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-chars:]


def start_demo(flags: Sequence[str] = (), device: str = "cpu", env: dict | None = None,
               timeout_s: float = 180) -> DemoServer:
    """``multistyle demo --port P --device DEVICE *flags`` on a free port of 127.0.0.1 (``env`` added to this
    process's), returned once the page answers; raises RuntimeError if it exits or stays silent."""
    port, log = free_port(), tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "multistyle", "demo", "--port", str(port), "--device", device, *flags]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    server, deadline = DemoServer(proc, port, log), time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"multistyle demo exited: {server.stderr_tail()}")
        try:
            urllib.request.urlopen(server.url, timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    stop_demo(server)
    raise RuntimeError(f"multistyle demo did not answer within {timeout_s:.0f} s")


def stop_demo(server: DemoServer, timeout_s: float = 60) -> None:
    """Ctrl-C (SIGINT: the demo's own clean-up runs), then a kill after ``timeout_s``."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    server.log.close()


@contextlib.contextmanager
def serve(flags: Sequence[str] = (), device: str = "cpu", env: dict | None = None,
          timeout_s: float = 180) -> Iterator[DemoServer]:
    """``with serve(["--live-size", "480"]) as demo:`` a demo for the block (:func:`start_demo`), stopped after."""
    server = start_demo(flags, device, env, timeout_s)
    try:
        yield server
    finally:
        stop_demo(server)


# ---- the webcam run ---------------------------------------------------------------------------------------------

@dataclass
class WebcamRun:
    """What one ``multistyle webcam --headless`` run printed: steady fps, frames out, and the latency in ms when
    the app reports one (a line with ``latency N ms``)."""

    fps: float
    frames: int
    latency_ms: float | None
    stdout: str


def parse_webcam_output(text: str) -> WebcamRun:
    """The app's summary line ``N frames in S s (X fps, D dropped)`` (and ``latency N ms`` if there) → a run."""
    match = re.search(r"(\d+) frames in [\d.]+ ?s \(([\d.]+) fps", text)
    if not match:
        raise RuntimeError(f"no fps in the output: {text[-300:]}")
    latency = re.search(r"latency ([\d.]+) ms", text)
    return WebcamRun(float(match.group(2)), int(match.group(1)), float(latency.group(1)) if latency else None, text)


def webcam_run(size: int = 640, frames: int = 90, style: str = "udnie", model: str | None = None,
               device: str = "cpu", threads: int | None = None, env: dict | None = None,
               flags: Sequence[str] = (), source: str | os.PathLike = CLIP) -> WebcamRun:
    """``multistyle webcam --headless`` in a subprocess on ``source`` (bunny.mp4) at ``--size size`` for ``frames``
    frames → its :class:`WebcamRun`. ``threads`` sets OMP_NUM_THREADS and MULTISTYLE_THREADS; ``env`` is added
    to this process's environment (e.g. an ISA cap); ``flags`` go after the others."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MULTISTYLE_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "multistyle", "webcam", "--headless", "--source", str(source), "--output",
               f"{tmp}/out.mp4", "--size", str(size), "--max-frames", str(frames), "--style", style,
               "--device", device, *(["--model", model] if model else []), *flags]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False,
                              timeout=CHILD_TIMEOUT_S)
    if done.returncode:
        raise RuntimeError(f"multistyle webcam: {done.stderr.strip()[-300:]}")
    return parse_webcam_output(done.stdout)


def pipeline_run(stylizer, size: int, frames: int, flicker: bool = True, timer=None,
                 camera: tuple[int, int] | None = None, source: str | os.PathLike = CLIP):
    """The headless webcam app's pipeline in this process (its stages, its sink writing an MP4) on ``source`` at
    ``size`` px, style 0, flicker reduction on or off → the pipeline's RunStats. ``camera`` (w, h): each decoded
    frame is first resized to it (a camera of that size); ``timer``: a StageTimer for per-stage times."""
    import cv2

    from multistyle.apps.webcam import Controls, WebcamOptions, WebcamSink
    from multistyle.video.frames import FrameStylizer
    from multistyle.video.pipeline import run_pipeline

    controls = Controls.for_style(stylizer.names, flicker=flicker)
    process = FrameStylizer(stylizer, controls, size, timer)
    stages = process.stages()
    if camera is not None:
        infer = stages[0]
        stages = [lambda frame: infer(cv2.resize(frame, camera, interpolation=cv2.INTER_LINEAR)), *stages[1:]]
    with tempfile.TemporaryDirectory() as tmp:
        sink = WebcamSink(WebcamOptions(headless=True, output=f"{tmp}/out.mp4"), controls, str(stylizer.device))
        try:
            return run_pipeline(str(source), stages, sink, frames, log=lambda _m: None, timer=timer)
        finally:
            sink.close()
