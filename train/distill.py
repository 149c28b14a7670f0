"""Distil a v1 model into the fast v2 network (cin-fast-v2): the first, cheap training phase of the v2 default.

The v2 net learns to reproduce the v1 teacher's output for random styles (and random two-style mixes) on random
crops of the training photos; loss = pixel L1 + grad-weight x L1 of image differences (no VGG pass). Every v1
weight whose shape matches starts the student; style names, thumbnails and loss settings come from the teacher.
The full state (weights, Adam moments, step, history) is written atomically to OUT's .train.safetensors twin
every --checkpoint-minutes; --resume continues it exactly (same crops, styles and updates as an unbroken run).

Example (1 thread, in the background):
  OMP_NUM_THREADS=1 nohup python train/distill.py --content-dir ../shared/data/train \\
      --out train/checkpoints/v2.safetensors --threads 1 --resume > runs/distill.log 2>&1 &
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from multistyle.cliutil import Parser, nonneg_float, positive_int, run_guarded, tqdm_progress  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def parser() -> argparse.ArgumentParser:
    from multistyle.distill import DistillConfig
    from multistyle.models import PACKAGED_V1
    from multistyle.network import BLOCK_KINDS, PADDINGS

    d = DistillConfig()
    p = Parser(prog="train/distill.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content-dir", required=True, nargs="+", help="folder(s) of training photos")
    p.add_argument("--out", required=True, help="v2 model file to write (its .train.safetensors state sits beside it)")
    p.add_argument("--teacher", default=str(PACKAGED_V1),
                   help="v1 model file to distil (default: the packaged v1)")
    p.add_argument("--eval-dir", default=str(ROOT.parent / "shared" / "data" / "content"),
                   help="folder with the held-out photos for the evaluation L1 logged at each checkpoint")
    p.add_argument("--size", type=positive_int, default=d.size, help="crop size in pixels (multiple of 4)")
    p.add_argument("--photo-size", type=positive_int, default=d.photo_size, help="photo scale before cropping")
    p.add_argument("--batch", type=positive_int, default=d.batch, help="crops per step")
    p.add_argument("--steps", type=positive_int, default=d.steps, help="total optimisation steps")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument("--grad-weight", type=nonneg_float, default=d.grad_weight,
                   help="weight of the L1 on horizontal/vertical image differences")
    p.add_argument("--mix-fraction", type=nonneg_float, default=d.mix_fraction,
                   help="share of crops whose target is a random mix of two styles")
    p.add_argument("--perceptual-weight", type=nonneg_float, default=d.perceptual_weight,
                   help="phase 2: add the teacher file's perceptual loss (VGG19, its stored paintings) / 1e5 "
                        "with this weight (0 = pure distillation; a VGG pass per step)")
    p.add_argument("--distill-weight", type=nonneg_float, default=d.distill_weight,
                   help="weight of the distillation loss (0 with --perceptual-weight: train on the perceptual "
                        "loss alone, the student no longer tied to its teacher)")
    p.add_argument("--width", type=float, default=d.width, help="v2 channel width multiplier")
    p.add_argument("--blocks", type=int, default=d.blocks, help="v2 residual blocks at 1/4 resolution")
    p.add_argument("--block", default=d.block, choices=BLOCK_KINDS, help="residual block kind")
    p.add_argument("--padding", default=d.padding, choices=PADDINGS,
                   help="conv padding of the v2 net (zeros: a few pixels of bright band along the borders); a "
                        "resumed state may switch it")
    p.add_argument("--plain-encoder", action="store_true", help="unconditioned (plain instance norm) encoder")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--checkpoint-minutes", type=nonneg_float, default=d.checkpoint_seconds / 60,
                   help="wall minutes between atomic checkpoints")
    p.add_argument("--cpu-budget", type=nonneg_float, default=None,
                   help="stop after this many CPU seconds of this process (for equal-cost comparisons)")
    p.add_argument("--minutes", type=nonneg_float, default=None,
                   help="stop (with a checkpoint) after this many wall-clock minutes of training")
    p.add_argument("--workers", type=int, default=d.workers, help="DataLoader decoding processes")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, auto ...")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: torch's)")
    p.add_argument("--resume", action="store_true", help="continue from the state file beside --out")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --out exists")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def job() -> int:
        import torch

        from multistyle.distill import DistillConfig, distill
        from multistyle.gatys import pick_device
        from multistyle.training import list_images, state_path

        if args.threads:
            torch.set_num_threads(args.threads)
        config = DistillConfig(size=args.size, photo_size=args.photo_size, batch=args.batch, steps=args.steps,
                               lr=args.lr, grad_weight=args.grad_weight, mix_fraction=args.mix_fraction,
                               perceptual_weight=args.perceptual_weight, distill_weight=args.distill_weight,
                               width=args.width, blocks=args.blocks, block=args.block,
                               cond_encoder=not args.plain_encoder, padding=args.padding, seed=args.seed,
                               checkpoint_seconds=max(1.0, args.checkpoint_minutes * 60), workers=args.workers)
        if Path(args.out).exists() and not args.overwrite and not (args.resume and state_path(args.out).exists()):
            raise ValueError(f"{args.out} already exists; pass --resume to continue its training, --overwrite to "
                             "replace it, or choose another --out")
        bar, bar_progress = tqdm_progress(config.steps, "distill")

        def progress(step: int, total: int, record: dict) -> None:
            bar_progress(step, total, record)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()}, refresh=False)
            if bar.disable and step % 100 == 0:  # no terminal: a log line now and then
                print(f"step {step}/{total}  " + "  ".join(f"{k} {v:.4g}" for k, v in record.items()), flush=True)

        model = distill(args.teacher, list_images(args.content_dir), args.out, config, resume=args.resume,
                        eval_dir=args.eval_dir, cpu_budget=args.cpu_budget,
                        wall_budget=None if args.minutes is None else args.minutes * 60, progress=progress, log=bar.write,
                        device=pick_device(args.device))
        bar.close()
        print(f"done: step {model.extra['step']}, {model.net.num_styles} styles -> {args.out}")
        return 0

    return run_guarded(job)


if __name__ == "__main__":
    sys.exit(main())
