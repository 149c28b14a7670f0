"""Quantization-aware fine-tuning of a model's convolutions for OpenVINO int8, then the per-style check on held-out
photos (the model's perceptual loss, OpenVINO int8 against the float network); the int8 file is written beside the
model only when every style passes. ``python train/quantize.py --help`` lists the options. Run it niced, on one core:
  nice -n 19 python train/quantize.py --content-dir ../shared/data/train --held-out ../shared/data/content"""

from __future__ import annotations

import argparse
import sys

import torch

from multistyle.engine.int8 import MAX_LOSS_RATIO, SUFFIX, passes, save_int8
from multistyle.images import list_images
from multistyle.modelfile import load_model, resolve_model_path
from multistyle.train.quantize import QuantizeConfig, check_int8, quantization_aware


def main(argv: list[str] | None = None) -> int:
    d = QuantizeConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model file (default: the packaged one)")
    p.add_argument("--content-dir", required=True, nargs="+", help="training photos (crops are cut from them)")
    p.add_argument("--held-out", required=True, nargs="+", help="held-out photos (files or folders) for the check")
    p.add_argument("--out", default=None, help=f"int8 file (default: beside the model, NAME{SUFFIX})")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--size", type=int, default=d.size, help="crop size (px)")
    p.add_argument("--photo-sizes", type=int, nargs="+", default=list(d.photo_sizes),
                   help="scales the photos are seen at before cropping, in turn (px)")
    p.add_argument("--keep-float", nargs="*", default=[], help="conv names left in float, e.g. encoder.0.conv head")
    p.add_argument("--check-sizes", type=int, nargs="+", default=[256, 480],
                   help="long sides of the held-out photos in the check (px)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = resolve_model_path(args.model)
    model, _ = load_model(path)
    config = QuantizeConfig(steps=args.steps, lr=args.lr, batch=args.batch, size=args.size,
                            photo_sizes=tuple(args.photo_sizes), keep_float=tuple(args.keep_float))

    def progress(step: int, steps: int, record: dict) -> None:
        if step % 25 == 0 or step == steps:
            print(f"step {step}/{steps}: loss {record['total']:.0f} ({record['seconds']:.0f} s)", flush=True)

    qnet = quantization_aware(model, list_images(args.content_dir), config, progress)
    check = check_int8(model, qnet, list_images(args.held_out), args.check_sizes)
    check["recipe"] = {k: v for k, v in vars(config).items()}
    for name, row in check["styles"].items():
        print(f"{name:24s} fp32 {row['fp32']}  int8 {row['int8']}  worst ratio {row['ratio']:.4f}  "
              f"pixel diff {row['diff']}")
    if not passes(check):
        print(f"not written: the largest ratio {check['max_ratio']:.4f} is over {MAX_LOSS_RATIO}")
        return 1
    out = save_int8(qnet, model.net, check, args.out or path.with_name(path.name.split(".")[0] + SUFFIX))
    print(f"every style within {MAX_LOSS_RATIO}: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
