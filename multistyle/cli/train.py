"""Training subcommands: ``multistyle train``, ``multistyle distill`` and ``multistyle add-style`` (the scripts in
``train/`` call these; ``torchrun -m multistyle train ...`` runs DDP)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import nonneg_float, positive_float, positive_int, tqdm_progress

TRAIN_DESCRIPTION = """Train the multi-style network (v1 architecture) against the Gatys teacher's VGG19 loss.

Several GPUs (or CPU processes): torchrun --nproc_per_node=N -m multistyle train ... (DDP; NCCL/gloo)."""

DISTILL_DESCRIPTION = """Distil a v1 model into the fast v2 network (cin-fast-v2): the first, cheap training phase of
the v2 default. The v2 net learns to reproduce the v1 teacher's output for random styles (and random two-style
mixes) on random crops of the training photos; loss = pixel L1 + grad-weight x L1 of image differences (no VGG
pass). The full state is written atomically to OUT's .train.safetensors twin every --checkpoint-minutes; --resume
continues it exactly (same crops, styles and updates as an unbroken run).

Example (1 thread, in the background):
  OMP_NUM_THREADS=1 nohup multistyle distill --content-dir ../shared/data/train \\
      --out train/checkpoints/v2.safetensors --threads 1 --resume > runs/distill.log 2>&1 &"""

ADD_STYLE_DESCRIPTION = """Teach a model a new painting. Only the new style's γ/β rows are trained (every conv weight
frozen), so all existing styles stay bit-identical. By default the packaged model (or your extended model, if you
added styles before) is read and the result goes to your user model file, which every multistyle command then uses
by default."""


def add_train_commands(sub) -> None:
    """Register ``train``, ``distill`` and ``add-style``."""
    train_options(sub.add_parser("train", help="train a multi-style network from scratch",
                                 description=TRAIN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter))
    distill_options(sub.add_parser("distill", help="distil a v1 model into the fast v2 network",
                                   description=DISTILL_DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    add_style_options(sub.add_parser("add-style", help="teach the model a new painting (only its γ/β rows train)",
                                     description=ADD_STYLE_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter))


# ---- train ------------------------------------------------------------------------------------------------------

def train_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ..loss import LossConfig

    defaults = LossConfig()
    p.add_argument("--content-dir", required=True, nargs="+", help="folder(s) of training photos")
    p.add_argument("--styles", required=True, nargs="+", help="style images, or a folder of them")
    p.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="model file to write (a .train.safetensors state sits beside it)")
    p.add_argument("--size", type=positive_int, default=256, help="training crop size (pixels, multiple of 4)")
    p.add_argument("--photo-size", type=positive_int, default=None,
                   help="scale photos are seen at before cropping (default: --size); e.g. --size 128 "
                        "--photo-size 256 trains on 128 px crops of 256 px photos, 4x cheaper per image")
    p.add_argument("--style-size", type=positive_int, default=256, help="long side of style images for their Grams")
    p.add_argument("--batch", type=positive_int, default=8, help="images per step (per process under torchrun)")
    p.add_argument("--steps", type=positive_int, default=20000, help="total optimisation steps")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--content-weight", type=nonneg_float, default=defaults.content_weight)
    p.add_argument("--style-weight", type=nonneg_float, default=defaults.style_weight)
    p.add_argument("--tv-weight", type=nonneg_float, default=defaults.tv_weight)
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
    p.add_argument("--checkpoint-every", type=positive_int, default=200, help="steps between atomic checkpoints")
    p.add_argument("--sample-every", type=positive_int, default=1000, help="steps between sample grids / loss plots")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--vgg-weights", default=None, help="VGG19 weights file (default: see README)")
    p.set_defaults(run=run_train)
    return p


def log_progress(bar, bar_progress, every: int):
    """A progress callback: the tqdm bar, and without a terminal a log line every ``every`` steps."""

    def progress(step: int, total: int, record: dict) -> None:
        bar_progress(step, total, record)
        if bar.disable and (step % every == 0 or step == total):
            print(f"step {step}/{total}  " + "  ".join(f"{k} {v:.4g}" for k, v in record.items()
                                                       if isinstance(v, (int, float))), flush=True)

    return progress


def run_train(args: argparse.Namespace) -> int:
    import torch

    from ..images import list_images
    from ..loss import LossConfig
    from ..paths import pick_device
    from ..train.loop import TrainConfig, train
    from ..train.state import check_output

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.vgg_weights:
        os.environ["MULTISTYLE_VGG_WEIGHTS"] = args.vgg_weights
    loss = LossConfig(content_weight=args.content_weight, style_weight=args.style_weight,
                      tv_weight=args.tv_weight, loss_net=args.loss_net)
    config = TrainConfig(size=args.size, batch=args.batch, steps=args.steps, lr=args.lr, width=args.width,
                         style_size=args.style_size, photo_size=args.photo_size, seed=args.seed, amp=args.amp,
                         workers=args.workers, checkpoint_every=args.checkpoint_every,
                         sample_every=args.sample_every, loss=loss)
    check_output(args.out, args.overwrite, args.resume)
    device = pick_device(args.device)
    contents, styles = list_images(args.content_dir), list_images(args.styles)
    bar, bar_progress = tqdm_progress(config.steps, "train")
    model = train(contents, styles, args.out, config, device, resume=args.resume,
                  progress=log_progress(bar, bar_progress, 50), log=bar.write)
    bar.close()
    checksum = sum(float(p.detach().double().sum()) for p in model.net.parameters())
    rank = int(os.environ.get("RANK", "0"))
    print(f"rank {rank} done: {model.extra['step']} steps, {len(styles)} styles -> {args.out} "
          f"(parameter checksum {checksum:.10e})")
    return 0


# ---- distill ----------------------------------------------------------------------------------------------------

def distill_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ..modelfile import PACKAGED_V1
    from ..nets import BLOCK_KINDS, PADDINGS
    from ..train.distill import DistillConfig

    d = DistillConfig()
    p.add_argument("--content-dir", required=True, nargs="+", help="folder(s) of training photos")
    p.add_argument("--out", required=True, help="v2 model file to write (its .train.safetensors state sits beside it)")
    p.add_argument("--teacher", default=str(PACKAGED_V1),
                   help="model file to distil: a v1 (default: the packaged v1), or a v2 (v2 = the packaged one) to "
                        "fine-tune a copy of it")
    p.add_argument("--eval-dir", default=None,
                   help="folder with the held-out photos (kodak_houses, kodak_parrots, coffee) for the evaluation "
                        "L1 logged at each checkpoint, e.g. ../shared/data/content (default: none)")
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
    p.add_argument("--temporal-weight", type=nonneg_float, default=d.temporal_weight,
                   help="weight of the warp-consistency term |S(W(x)+n) - W(S(x))| (temporal stability from still "
                        "photos; use a v2 --teacher to fine-tune the shipped model, e.g. --teacher v2)")
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
    p.set_defaults(run=run_distill)
    return p


def run_distill(args: argparse.Namespace) -> int:
    import torch

    from ..images import list_images
    from ..paths import pick_device
    from ..train.distill import DistillConfig, distill
    from ..train.state import check_output

    if args.threads:
        torch.set_num_threads(args.threads)
    config = DistillConfig(size=args.size, photo_size=args.photo_size, batch=args.batch, steps=args.steps,
                           lr=args.lr, grad_weight=args.grad_weight, mix_fraction=args.mix_fraction,
                           perceptual_weight=args.perceptual_weight, distill_weight=args.distill_weight,
                           temporal_weight=args.temporal_weight, width=args.width, blocks=args.blocks, block=args.block,
                           cond_encoder=not args.plain_encoder, padding=args.padding, seed=args.seed,
                           checkpoint_seconds=max(1.0, args.checkpoint_minutes * 60), workers=args.workers)
    check_output(args.out, args.overwrite, args.resume)
    from ..modelfile import resolve_model_path

    bar, bar_progress = tqdm_progress(config.steps, "distill")
    model = distill(resolve_model_path(args.teacher), list_images(args.content_dir), args.out, config,
                    resume=args.resume, eval_dir=args.eval_dir, cpu_budget=args.cpu_budget,
                    wall_budget=None if args.minutes is None else args.minutes * 60,
                    progress=log_progress(bar, bar_progress, 100), log=bar.write, device=pick_device(args.device))
    bar.close()
    print(f"done: step {model.extra['step']}, {model.net.num_styles} styles -> {args.out}")
    return 0


# ---- add-style --------------------------------------------------------------------------------------------------

def add_style_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ..train.add_style import PRECISIONS, PRESETS

    fast, best = PRESETS["fast"], PRESETS["best"]
    p.add_argument("style", help="the painting to learn")
    p.add_argument("--model", help="model to extend (default: your user model if it exists, else the packaged one)")
    p.add_argument("-o", "--output", "--out", dest="out",
                   help="where to write the extended model (default: your user model file)")
    p.add_argument("--name", help="style name (default: the file name)")
    p.add_argument("--quality", choices=tuple(PRESETS), default="fast",
                   help="fast (default): warm start from the closest blend of the existing styles, "
                        f"{_stage_text(fast)}: the same work and picture on every CPU, about 8 s of training on two "
                        f"laptop cores (AVX2), 4 s with native bf16; best: {_stage_text(best)} (4x the work, a lower "
                        "training loss, about the same picture at 512 px); legacy: the old recipe (mean start, 200 "
                        "Adam steps, 5+ minutes)")
    p.add_argument("--steps", type=positive_int, help=f"optimiser steps over all sizes, split as the preset splits "
                                                      f"them (default {fast.steps})")
    p.add_argument("--size", type=positive_int, help="photo size the stages divide (fast: 1/4 and 1/2 of it; best "
                                                     "also all of it), multiple of 8 (default 256)")
    p.add_argument("--batch", type=positive_int, help="photos per Adam step (default: the preset's)")
    p.add_argument("--lr", type=positive_float, help=f"Adam's learning rate (default {fast.lr}; it decays to "
                                                     f"{fast.lr_decay:g}x by the end)")
    p.add_argument("--time-budget", type=nonneg_float, metavar="SECONDS",
                   help="stop training after this many seconds (the set-up before the first step not counted) and "
                        "keep the rows reached; a run it cuts short says so (default: none, the recipe's steps)")
    p.add_argument("--content-dir", nargs="+", help="photos to train on (default: photos packaged with multistyle)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="auto (default): bf16 where the CPU computes it natively (AVX-512 BF16/AMX, ~1.7x faster), "
                        "else fp32 with the loss network's wide convolutions by Winograd (fewer multiplies, the same "
                        "loss to ~1e-5); fp32: plain; never oneDNN's emulated bf16 (slower than fp32)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ... (default auto)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for torch (default: $MULTISTYLE_THREADS, else one per core)")
    p.add_argument("-v", "--verbose", action="store_true", help="say which precision and threads are used and why")
    p.set_defaults(run=run_add_style)
    return p


def _stage_text(config) -> str:
    """A recipe's stages in words: "10 L-BFGS evaluations at 64 px, then 48 Adam steps at 128 px"."""
    names = {"lbfgs": "L-BFGS evaluations", "adam": "Adam steps"}
    return ", then ".join(f"{n} {names[opt]} at {size} px" for size, n, opt in config.levels())


def run_add_style(args: argparse.Namespace) -> int:
    from ..modelfile import PACKAGED_CONTENT, PACKAGED_MODEL, resolve_model_path, user_model_path
    from ..paths import pick_device
    from ..precision import set_threads
    from ..train.add_style import add_style, preset

    model = resolve_model_path(args.model)
    out = Path(args.out) if args.out else user_model_path()
    if out.resolve() == PACKAGED_MODEL.resolve():
        raise ValueError("refusing to overwrite the packaged model; give another --out")
    config = preset(args.quality, steps=args.steps, size=args.size, batch=args.batch, lr=args.lr,
                    time_budget=args.time_budget or None, precision=args.precision)
    device, threads = pick_device(args.device), set_threads(args.threads)
    bar, progress = tqdm_progress(config.steps, "add-style")
    result = add_style(args.style, model, out, args.content_dir or [PACKAGED_CONTENT], args.name, config,
                       device, progress)
    bar.close()
    new, record = result.styles[-1], result.styles[-1].training
    if args.verbose:
        print(f"precision: {record['precision']} ({record['precision_reason']}); device {device}, "
              f"{threads} torch threads; set-up {record['setup_seconds']}s")
    if record["steps"] < record["steps_requested"]:
        print(f"note: --time-budget {config.time_budget:g} s ended training after {record['steps']} of "
              f"{record['steps_requested']} steps; the style is further from the painting than the full recipe's "
              "(--time-budget 0: no limit)", file=sys.stderr)
    scores = "  ".join(f"{k} {record['final'][k]:.4g}" for k in ("content", "style") if k in record["final"])
    print(f"added style {new.name!r} (index {len(result.styles) - 1}) in {record['seconds']}s, "
          f"{record['steps']} steps, {scores} -> {out}")
    return 0
