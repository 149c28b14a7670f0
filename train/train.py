"""Train the multi-style network: ``python train/train.py --content-dir DIR --styles DIR|FILES --out MODEL``.

Several GPUs (or CPU processes): ``torchrun --nproc_per_node=N train/train.py ...`` (DDP; NCCL/gloo).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from multistyle.cliutil import run_guarded, tqdm_progress  # noqa: E402
from multistyle.losses import LossConfig  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--content-dir", required=True, nargs="+", help="folder(s) of training photos")
    p.add_argument("--styles", required=True, nargs="+", help="style images, or a folder of them")
    p.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="model file to write (a .train.safetensors state sits beside it)")
    p.add_argument("--size", type=int, default=256, help="training crop size (pixels, multiple of 4)")
    p.add_argument("--photo-size", type=int, default=None,
                   help="scale photos are seen at before cropping (default: --size); e.g. --size 128 "
                        "--photo-size 256 trains on 128 px crops of 256 px photos, 4x cheaper per image")
    p.add_argument("--style-size", type=int, default=256, help="long side of style images for their Gram targets")
    p.add_argument("--batch", type=int, default=8, help="images per step (per process under torchrun)")
    p.add_argument("--steps", type=int, default=20000, help="total optimisation steps")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    defaults = LossConfig()
    p.add_argument("--content-weight", type=float, default=defaults.content_weight)
    p.add_argument("--style-weight", type=float, default=defaults.style_weight)
    p.add_argument("--tv-weight", type=float, default=defaults.tv_weight)
    p.add_argument("--loss-net", default="vgg19", choices=("vgg19", "efficientnet_lite0", "vgg16", "resnet50"),
                   help="loss network")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier (0.25 = fast CPU model)")
    p.add_argument("--resume", action="store_true", help="continue from the state file beside --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out model file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--amp", nargs="?", const="fp16", choices=("fp16", "bf16"),
                   help="mixed precision: --amp (= fp16, with a gradient scaler; for CUDA) or --amp bf16 "
                        "(CUDA or recent CPUs); Gram matrices and losses stay float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="DataLoader decoding processes")
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between atomic checkpoints")
    p.add_argument("--sample-every", type=int, default=1000, help="steps between sample grids / loss plots")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--vgg-weights", default=None, help="VGG19 weights file (default: see README)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    def job() -> int:
        import torch

        from multistyle.gatys import pick_device
        from multistyle.training import TrainConfig, list_images, train

        if args.threads:
            torch.set_num_threads(args.threads)
        if args.vgg_weights:
            import os
            os.environ["MULTISTYLE_VGG_WEIGHTS"] = args.vgg_weights
        loss = LossConfig(content_weight=args.content_weight, style_weight=args.style_weight,
                          tv_weight=args.tv_weight, loss_net=args.loss_net)
        config = TrainConfig(size=args.size, batch=args.batch, steps=args.steps, lr=args.lr, width=args.width,
                             style_size=args.style_size, photo_size=args.photo_size, seed=args.seed, amp=args.amp,
                             workers=args.workers,
                             checkpoint_every=args.checkpoint_every, sample_every=args.sample_every, loss=loss)
        from multistyle.training import state_path

        if Path(args.out).exists() and not args.overwrite and not (args.resume and state_path(args.out).exists()):
            raise ValueError(f"{args.out} already exists; pass --resume to continue its training, --overwrite to "
                             "replace it, or choose another --out")
        device = pick_device(args.device)
        contents, styles = list_images(args.content_dir), list_images(args.styles)
        bar, bar_progress = tqdm_progress(config.steps, "train")

        def progress(step: int, total: int, record: dict) -> None:
            bar_progress(step, total, record)
            if bar.disable and (step % 50 == 0 or step == total):  # no terminal: a log line now and then
                print(f"step {step}/{total}  " + "  ".join(f"{k} {record[k]:.4g}" for k in
                      ("content", "style", "tv", "total", "seconds")), flush=True)

        model = train(contents, styles, args.out, config, device, resume=args.resume, progress=progress,
                      log=bar.write)
        bar.close()
        checksum = sum(float(p.detach().double().sum()) for p in model.net.parameters())
        rank = int(__import__("os").environ.get("RANK", "0"))
        print(f"rank {rank} done: {model.extra['step']} steps, {len(styles)} styles -> {args.out} "
              f"(parameter checksum {checksum:.10e})")
        return 0

    return run_guarded(job)


if __name__ == "__main__":
    sys.exit(main())
