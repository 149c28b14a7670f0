"""``multistyle quantize``: quantization-aware fine-tuning of a model's convolutions for OpenVINO int8, then the
per-style check on held-out photos; the int8 file is written only when every style passes
(:mod:`multistyle.train.quantize`, :mod:`multistyle.engine.int8`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import fail, positive_float, positive_int, tqdm_progress

DESCRIPTION = """Fine-tune a model's convolutions for int8 (OpenVINO, u8 x i8 convolutions; the instance norms and
every style's rows stay float and unchanged), then check every style on held-out photos: the model's own
perceptual loss of OpenVINO's int8 graph must stay within 0.5 % of the float network's at every --check-sizes.
Only then is the int8 file written, and `--engine auto` takes int8 for that model where it measures faster. A style
added later is not covered: run this again after add-style. The default 240 steps and the check take about 15
minutes of one core (2026-12-07, a 2-core Xeon); run it niced, e.g.
  nice -n 19 multistyle quantize --content-dir ../shared/data/train --held-out ../shared/data/content"""


def add_quantize(sub) -> None:
    """Register ``quantize``."""
    from ..engine.int8 import SUFFIX
    from ..train.quantize import QuantizeConfig

    d = QuantizeConfig()
    p = sub.add_parser("quantize", help="fine-tune a model for int8 inference and check every style",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model file (default: your user model if it exists, else the "
                                                 "packaged one)")
    p.add_argument("--content-dir", required=True, nargs="+", help="training photos (crops are cut from them)")
    p.add_argument("--held-out", required=True, nargs="+", help="held-out photos (files or folders) for the check")
    p.add_argument("-o", "--out", default=None,
                   help=f"int8 file to write, NAME{SUFFIX} (default: beside a packaged model, else in your user "
                        "data folder, where --engine auto looks; an existing file is never replaced)")
    p.add_argument("--steps", type=positive_int, default=d.steps, help=f"Adam steps (default {d.steps})")
    p.add_argument("--lr", type=positive_float, default=d.lr, help=f"Adam's learning rate (default {d.lr:g})")
    p.add_argument("--batch", type=positive_int, default=d.batch, help=f"crops per step (default {d.batch})")
    p.add_argument("--size", type=positive_int, default=d.size, help=f"crop size, px (default {d.size})")
    p.add_argument("--photo-sizes", type=positive_int, nargs="+", default=list(d.photo_sizes),
                   help="scales the photos are seen at before cropping, in turn, px (default: "
                        f"{' '.join(map(str, d.photo_sizes))})")
    p.add_argument("--keep-float", nargs="*", default=[], help="conv names left in float, e.g. encoder.0.conv head")
    p.add_argument("--check-sizes", type=positive_int, nargs="+", default=[256, 480],
                   help="long sides of the held-out photos in the check, px (default: 256 480)")
    p.add_argument("--threads", type=positive_int, default=1, help="CPU threads for torch (default 1)")
    p.set_defaults(run=run_quantize)


def default_out(model_path: Path) -> Path:
    """Beside a packaged model (how the shipped file is made), else in the user's data folder (searched by
    :func:`multistyle.engine.int8.int8_folders`)."""
    from ..engine.int8 import INT8_DIR, SUFFIX
    from ..paths import user_data_dir

    folder = INT8_DIR if model_path.resolve().parent == Path(INT8_DIR).resolve() else user_data_dir()
    return folder / (model_path.name.split(".")[0] + SUFFIX)


def run_quantize(args: argparse.Namespace) -> int:
    import torch

    from ..engine.int8 import MAX_LOSS_RATIO, SUFFIX, passes, save_int8
    from ..engine.runners import installed
    from ..images import list_images
    from ..modelfile import load_model, resolve_model_path
    from ..train.quantize import QuantizeConfig, check_int8, quantization_aware

    if not installed("openvino"):
        return fail("quantize needs OpenVINO to run and check the int8 graph (pip install openvino)")
    path = resolve_model_path(args.model)
    out = Path(args.out) if args.out else default_out(path)
    if not out.name.endswith(SUFFIX):
        return fail(f"--out must end in {SUFFIX} (that is how --engine auto finds it), not {out.name!r}")
    if out.exists():
        return fail(f"{out} already exists; remove it or give another --out")
    model, _ = load_model(path)
    photos, held_out = list_images(args.content_dir), list_images(args.held_out)
    torch.set_num_threads(args.threads)
    config = QuantizeConfig(steps=args.steps, lr=args.lr, batch=args.batch, size=args.size,
                            photo_sizes=tuple(args.photo_sizes), keep_float=tuple(args.keep_float))
    bar, progress = tqdm_progress(config.steps, "int8 fine-tuning")
    with bar:
        qnet = quantization_aware(model, photos, config, progress)
    check = check_int8(model, qnet, held_out, args.check_sizes)
    check["recipe"] = dict(vars(config))
    for name, row in check["styles"].items():
        print(f"{name:24s} float {row['fp32']}  int8 {row['int8']}  worst ratio {row['ratio']:.4f}  "
              f"pixel diff {row['diff']}")
    if not passes(check):
        return fail(f"not written: the largest ratio {check['max_ratio']:.4f} is over {MAX_LOSS_RATIO}; try more "
                    "--steps, a lower --lr or --keep-float for the convs that move most", code=1)
    save_int8(qnet, model.net, check, out)
    print(f"every style within {MAX_LOSS_RATIO}: {out}")
    return 0
