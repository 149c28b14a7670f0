"""Architecture study for the v2 default model (registered into ``python -m benchmarks`` as ``arch``): parameters,
GFLOPs and CPU latency of candidate networks against v1, and inference engines for the chosen v2 net.

Latency: channels_last, inference_mode, median of repeated single-frame passes after warm-up. The candidates are
timed interleaved (round-robin inside each resolution), so load from other processes hits all of them alike;
ratios are against v1 measured in the same run. GFLOPs count convolutions and matmuls (FlopCounterMode: 2 per
multiply-add); norms, padding and activations are memory-bound and not counted.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from multistyle.nets import FastStyleNet, StyleBankNet, StyleNet

from .kit import (
    DATA,
    HELD_OUT,
    compared_model,
    cpu_flags,
    effort,
    interleaved_ms,
    register,
    table,
)

RESOLUTIONS = [(320, 240), (640, 480), (1280, 720)]
NUM_STYLES = 13


def candidates(num_styles: int = NUM_STYLES) -> dict[str, Callable[[], StyleBankNet]]:
    """Name → constructor of each candidate; "v1" is today's default, "v2" the chosen v2 configuration."""
    return {
        "v1 (StyleNet w0.25)": lambda: StyleNet(num_styles, 0.25),
        "v2 (FastStyleNet w0.25, 3 conv blocks)": lambda: FastStyleNet(num_styles, 0.25, 3, "conv"),
        "v2 w0.25, 2 conv blocks": lambda: FastStyleNet(num_styles, 0.25, 2, "conv"),
        "v2 w0.25, 5 conv blocks": lambda: FastStyleNet(num_styles, 0.25, 5, "conv"),
        "v2 w0.25, 5 dw blocks": lambda: FastStyleNet(num_styles, 0.25, 5, "dw"),
        "v2 w0.375, 4 dw blocks": lambda: FastStyleNet(num_styles, 0.375, 4, "dw"),
    }


def gflops(net: torch.nn.Module, size: tuple[int, int]) -> float:
    """Conv/matmul GFLOPs of one [1, 3, H, W] forward pass."""
    from torch.utils.flop_counter import FlopCounterMode

    w, h = size
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        net(torch.rand(1, 3, h, w), torch.tensor([0]))
    return counter.get_total_flops() / 1e9


def frame(size: tuple[int, int], channels_last: bool = True) -> torch.Tensor:
    w, h = size
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _runner(net: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    style = torch.tensor([0])

    def run() -> object:
        with torch.inference_mode():
            return net(x, style)
    return run


def bench_arch(args: argparse.Namespace) -> dict:
    """Candidates × resolutions × {2, 1} threads, then engines for the chosen v2 at 640×480."""
    threads_before = torch.get_num_threads()
    nets = {}
    for name, make in candidates().items():
        torch.manual_seed(0)
        nets[name] = make().eval().to(memory_format=torch.channels_last)
    sizes = effort(args, RESOLUTIONS, RESOLUTIONS[:2], [(64, 48)])
    rows = {name: {"params": sum(p.numel() for p in net.parameters()), "gflops": gflops(net, (640, 480))}
            for name, net in nets.items()}
    thread_counts = effort(args, [2, 1], [2, 1], [1])
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for size in sizes:
            x = frame(size)
            repeat = effort(args, {320: 15, 640: 9, 1280: 5}.get(size[0], 9), 3, 1)
            ms = interleaved_ms({n: _runner(net, x) for n, net in nets.items()}, repeat)
            for name, value in ms.items():
                rows[name][f"{size[0]}x{size[1]}@{threads}"] = value
    torch.set_num_threads(threads_before)
    v1 = next(iter(rows))
    headers = ["candidate", "params", "GFLOPs 640x480"]
    keys = [f"{w}x{h}@{t}" for t in thread_counts for w, h in sizes]
    headers += [f"ms {k.replace('@', ', ')} thr" for k in keys] + [f"vs v1 {k.replace('@', ', ')} thr" for k in keys]
    body = [[name, r["params"], r["gflops"], *[r[k] for k in keys], *[r[k] / rows[v1][k] for k in keys]]
            for name, r in rows.items()]
    print(f"CPU flags: {cpu_flags()}\n")
    print(table("Architecture candidates: CPU latency (channels_last, median, interleaved)", headers, body))
    engines = bench_engines(args)
    return {"arch": [{"candidate": n, **r} for n, r in rows.items()], "arch_engines": engines}


def _onnx_session(net: torch.nn.Module, threads: int):
    import warnings

    import onnxruntime as ort

    from multistyle.export import OnnxWrapper

    path = Path(tempfile.mkdtemp(prefix="multistyle-arch-")) / "net.onnx"
    example = (torch.rand(1, 3, 64, 64), torch.full((1, NUM_STYLES), 1.0 / NUM_STYLES))
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "style_weights": {0: "batch"},
            "stylized": {0: "batch", 2: "height", 3: "width"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(OnnxWrapper(net.to(memory_format=torch.contiguous_format)), example, str(path),
                          input_names=["image", "style_weights"], output_names=["stylized"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def bench_engines(args: argparse.Namespace) -> list[dict]:
    """The chosen v2 (and v1 for reference) at 640×480 in eager NCHW / channels_last, onnxruntime and
    torch.compile, on 2 and 1 threads; agreement with eager is checked (max abs difference)."""
    import numpy as np

    size = effort(args, (640, 480), (640, 480), (64, 48))
    makers = list(candidates().items())[:2]
    rows = []
    threads_before = torch.get_num_threads()
    for threads in effort(args, (2, 1), (2, 1), (1,)):
        torch.set_num_threads(threads)
        fns, outs = {}, {}
        for label, make in makers:
            torch.manual_seed(0)
            net = make().eval()
            short = label.split(" ")[0]
            x_nchw, x_cl = frame(size, False), frame(size, True)
            fns[f"{short} eager NCHW"] = _runner(net, x_nchw)
            net_cl = make().eval()
            net_cl.load_state_dict(net.state_dict())
            net_cl = net_cl.to(memory_format=torch.channels_last)
            fns[f"{short} eager channels_last"] = _runner(net_cl, x_cl)
            reference = fns[f"{short} eager NCHW"]()
            session = _onnx_session(copy.deepcopy(net), threads)
            session_net = session  # keep alive in the closure
            feed = {"image": x_nchw.numpy(), "style_weights": np.eye(NUM_STYLES, dtype=np.float32)[:1]}
            fns[f"{short} onnxruntime"] = lambda s=session_net, f=feed: s.run(None, f)
            onnx_out = torch.from_numpy(fns[f"{short} onnxruntime"]()[0])
            outs[f"{short} onnxruntime"] = float((onnx_out - reference).abs().max())
            if not args.quick and not getattr(args, "smoke", False):
                compiled = _compiled(make, net)
                if compiled is not None:
                    fns[f"{short} torch.compile (inductor)"] = _runner(compiled, x_cl)
                    outs[f"{short} torch.compile (inductor)"] = float(
                        (fns[f"{short} torch.compile (inductor)"]() - reference).abs().max())
            outs[f"{short} eager channels_last"] = float(
                (fns[f"{short} eager channels_last"]() - reference).abs().max())
            outs[f"{short} eager NCHW"] = 0.0
        ms = interleaved_ms(fns, effort(args, 9, 5, 1))
        base = ms["v1 eager channels_last"]
        for name, value in ms.items():
            rows.append({"engine": name, "threads": threads, "ms": value, "vs_v1_eager_cl": value / base,
                         "max_abs_diff": outs.get(name, float("nan"))})
    torch.set_num_threads(threads_before)
    print(table("Engines at 640x480 (median ms, interleaved; ratio vs v1 eager channels_last on the same threads)",
                ["engine", "threads", "ms", "vs v1 eager channels_last", "max |diff| vs eager NCHW"],
                [[r["engine"], r["threads"], r["ms"], r["vs_v1_eager_cl"], r["max_abs_diff"]] for r in rows]))
    return rows


def _compiled(make: Callable[[], StyleBankNet], net: torch.nn.Module):
    """torch.compile'd channels_last copy of ``net`` (warmed up on a 640×480 frame), or None if it fails."""
    try:
        clone = make().eval()
        clone.load_state_dict(net.state_dict())
        clone = clone.to(memory_format=torch.channels_last)
        compiled = torch.compile(clone, dynamic=False)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(frame((640, 480)), torch.tensor([0]))
        print(f"torch.compile warm-up: {time.perf_counter() - start:.1f} s")
        return compiled
    except Exception as exc:  # noqa: BLE001 — a compiler failure is a result of the study, not a crash
        print(f"torch.compile failed: {exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}")
        return None


def bench_arch_quality(args: argparse.Namespace) -> dict:
    """A cheap quality proxy for a v2 model (``--model``): per style, its perceptual loss (the model's own loss
    settings, as in the ``quality`` bench) over the packaged v1's on the same held-out photos. No Gatys
    runs: multiply by v1's Gatys ratio (MODEL.md) to estimate v2's. Below 1: v2 is closer to the teacher's optimum."""
    from multistyle.images import load_image
    from multistyle.loss import LossConfig, PerceptualLoss
    from multistyle.modelfile import PACKAGED_V1, load_model
    from multistyle.stylizer import pad_to_multiple

    other = compared_model(args)
    v1, v2 = load_model(PACKAGED_V1)[0], load_model(other)[0]
    if v1.style_names != v2.style_names:
        raise SystemExit("error: the two models hold different styles")
    loss = PerceptualLoss(LossConfig.from_dict(v1.loss))
    size = effort(args, 256, 128, 32)
    photos = [load_image(DATA / "content" / n, max_size=size) for n in HELD_OUT]
    rows = []
    for index, style in enumerate(v1.styles[: effort(args, None, None, 1)]):
        style_file = DATA / "styles" / style.source
        if not style_file.is_file():
            continue
        style_size = int(style.training.get("style_size", 256) * size / style.training.get("photo_size", 256))
        grams = loss.style_targets([load_image(style_file, max_size=style_size)]).blend()
        totals = {}
        for label, model in (("v1", v1), ("v2", v2)):
            totals[label] = 0.0
            for photo in photos:
                padded, (h, w) = pad_to_multiple(photo, model.net.multiple)
                with torch.no_grad():
                    out = model.net(padded, torch.tensor([index]))[..., :h, :w]
                    totals[label] += float(loss(out, loss.content_targets(photo), grams).total) / len(photos)
        rows.append({"style": style.name, "v1_loss": totals["v1"], "v2_loss": totals["v2"],
                     "ratio": totals["v2"] / totals["v1"]})
    ratios = sorted(r["ratio"] for r in rows)
    print(table(f"v2 / v1 perceptual loss ({other}; {len(photos)} held-out photos, {size} px; median "
                f"{statistics.median(ratios):.3g})", ["style", "v1 loss", "v2 loss", "v2 / v1"],
                [[r["style"], r["v1_loss"], r["v2_loss"], r["ratio"]] for r in rows]))
    return {"arch_quality": rows}


def bench_arch_api(args: argparse.Namespace) -> dict:
    """The public API on a 640×480 uint8 frame (``stylize(array, model=...)``: conversion, padding, network,
    clamp, uint8 out): the packaged v1 against ``--model`` (default: the packaged v2), interleaved, 2 and 1 threads."""
    import numpy as np

    from multistyle.modelfile import PACKAGED_V1
    from multistyle.stylizer import stylize

    other = compared_model(args)
    w, h = effort(args, (640, 480), (640, 480), (64, 48))
    frame_u8 = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    models = {"packaged (v1)": str(PACKAGED_V1), str(other): str(other)}
    threads_before = torch.get_num_threads()
    rows = []
    for threads in effort(args, (2, 1), (2, 1), (1,)):
        torch.set_num_threads(threads)
        fns = {k: (lambda m=m: stylize(frame_u8, 0, model=m, device="cpu")) for k, m in models.items()}
        ms = interleaved_ms(fns, effort(args, 11, 5, 1))
        base = ms["packaged (v1)"]
        rows += [{"model": k, "threads": threads, "ms": v, "vs_v1": v / base} for k, v in ms.items()]
    torch.set_num_threads(threads_before)
    print(f"CPU flags: {cpu_flags()}\n")
    print(table("Public API, 640x480 uint8 frame (stylize(); median ms, interleaved)",
                ["model", "threads", "ms", "vs packaged v1"],
                [[r["model"], r["threads"], r["ms"], r["vs_v1"]] for r in rows]))
    return {"arch_api": rows}


register("arch", bench_arch)
register("arch-quality", bench_arch_quality)
register("arch-api", bench_arch_api)
