"""Image subcommands: stylize, styles, sheet, export-onnx (all take --model and --device)."""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

from ..errors import ImageError
from .common import (
    add_engine_argument,
    fail,
    model_options,
    nonneg_float,
    positive_float,
    positive_int,
    say_engine,
    style_option,
    tqdm_progress,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def add_image_commands(sub) -> None:
    """Register stylize, styles, sheet and export-onnx."""
    p = sub.add_parser("stylize", help="stylize photos with the fast network",
                       description="Stylize image files, folders of images, or stdin ('-') with a trained model.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, or - for stdin")
    style_option(p)
    p.add_argument("-o", "--output", required=True,
                   help="output file (one input), a folder (several inputs), or - for PNG on stdout")
    p.add_argument("--strength", type=float, default=1.0, help="0 = the photo, 1 = fully stylized (default 1)")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
    p.add_argument("--max-size", type=positive_int, help="downscale so the long side is at most this")
    add_scale_option(p)
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="then N Gatys iterations from the network's output with the model's own loss and stored "
                        "paintings (bf16 where the CPU has it natively): closer to best quality, slower (e.g. 20; "
                        "default 0 = off)")
    p.add_argument("--best", action="store_true",
                   help="the best picture in the time given: the network, then refine (--seconds: as many "
                        "iterations as fit, keeping the best; without it: a short fixed schedule that aims at the "
                        "loss of the default `multistyle gatys` run in about a third of its time)")
    p.add_argument("--seconds", type=positive_float, metavar="S",
                   help="wall-clock budget per image for the network + refine (with --best or --refine)")
    p.add_argument("--painting", metavar="FILE",
                   help="any painting at once, no training: the style mix that best matches its Gram statistics, "
                        "then that row fitted for about 1.5 s (replaces -s; the model file is not changed)")
    p.add_argument("--json", action="store_true", help="print one JSON object per output")
    model_options(p)
    add_engine_argument(p)
    p.set_defaults(run=run_stylize)

    p = sub.add_parser("styles", help="list the styles of a model")
    p.add_argument("--json", action="store_true", help="print JSON")
    model_options(p)
    p.set_defaults(run=run_styles)

    p = sub.add_parser("sheet", help="one photo in every style, labelled, on one contact sheet")
    p.add_argument("photo")
    p.add_argument("-o", "--output", required=True, help="sheet image to write")
    p.add_argument("--tile", type=positive_int, default=256, help="long side of each tile (default 256)")
    p.add_argument("--columns", type=positive_int, default=5, help="tiles per row (default 5)")
    model_options(p)
    p.set_defaults(run=run_sheet)

    p = sub.add_parser("export-onnx", help="export the model to ONNX (dynamic size, style weights as input)")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=positive_int, default=17)
    model_options(p)
    p.set_defaults(run=run_export_onnx)


def add_scale_option(p) -> None:
    """``--scale``: stroke scale, the same on stylize and video."""
    p.add_argument("--scale", type=nonneg_float, default=1.0,
                   help="stroke scale 0.1..4: the network runs at scale x the image size and the result is brought "
                        "back to full size (0.5: bolder strokes, ~4x cheaper; 2: finer strokes; default 1)")


def _expand_inputs(inputs: list[str]) -> list[str]:
    files: list[str] = []
    for item in inputs:
        path = Path(item)
        if item == "-":
            files.append(item)
        elif path.is_dir():
            found = sorted(str(f) for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImageError(f"{path}: folder holds no images")
            files += found
        else:
            files.append(item)  # missing files are reported when read
    return files


def _read_input(item: str):
    from PIL import Image, UnidentifiedImageError

    from ..images import open_rgb, pil_to_rgb

    if item != "-":
        return open_rgb(item)
    data = sys.stdin.buffer.read()
    if not data:
        raise ImageError("stdin is empty; pipe an image into `multistyle stylize -`")
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return pil_to_rgb(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"stdin is not an image this tool can read ({exc.__class__.__name__})") from None


def _output_problem(items: list[str], args: argparse.Namespace) -> str | None:
    """Why ``-o`` cannot take ``items`` (a one-line message), or None when it can."""
    from ..images import SAVE_FORMATS

    out = Path(args.output)
    if args.output == "-" and len(items) != 1:
        return "-o - (stdout) takes exactly one input"
    if not _single_file(items, args) and args.output != "-" and out.suffix.lower() in SAVE_FORMATS:
        return f"{len(items)} inputs need an output folder, not the file name {out}"
    if len(items) == 1 and args.output != "-" and not _single_file(items, args) and out.suffix:
        return f"{out}: unknown image extension; use one of {', '.join(sorted(SAVE_FORMATS))}"
    return None


def _single_file(items: list[str], args: argparse.Namespace) -> bool:
    from ..images import SAVE_FORMATS

    return len(items) == 1 and args.output != "-" and Path(args.output).suffix.lower() in SAVE_FORMATS


def _stylizer_and_weights(args: argparse.Namespace, refine: int):
    """The stylizer (a zero-shot one for ``--painting``), the style spec and weights; fails before any work on a
    bad painting or a model file that cannot refine."""
    from ..refine import style_paintings
    from ..styles import parse_style_arg, style_weights
    from ..stylizer import get_stylizer, zero_shot_stylizer

    stylizer = get_stylizer(args.model, args.device, args.engine)
    spec = parse_style_arg(args.style)
    if args.painting:
        stylizer = zero_shot_stylizer(stylizer, args.painting)
        spec = len(stylizer.names) - 1
    weights = style_weights(spec, stylizer.names)
    if refine:
        style_paintings(stylizer.model, [i for i, w in enumerate(weights[0].tolist()) if w > 0])
    return stylizer, spec, weights


def _write_result(result, item: str, args: argparse.Namespace, single_file: bool, label: str) -> str:
    """Write one stylized image (PNG on stdout for ``-o -``) and return where it went."""
    from ..images import SAVE_FORMATS, save_image, tensor_to_uint8

    if args.output == "-":
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(tensor_to_uint8(result)).save(buffer, format="PNG")
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.buffer.flush()
        return "-"
    out = Path(args.output)
    if not single_file:
        stem = "stdin" if item == "-" else Path(item).stem
        suffix = Path(item).suffix.lower() if Path(item).suffix.lower() in SAVE_FORMATS else ".png"
        out = out / f"{stem}_{_safe(label)}{suffix}"
    save_image(result, out)
    return str(out)


def run_stylize(args: argparse.Namespace) -> int:
    """Stylize every input into ``-o``: check the settings and outputs, load the stylizer, then per image read,
    stylize (with a refine progress bar), write and report."""
    from ..images import limit_size, pil_to_tensor
    from ..refine import BEST_STEPS, MAX_REFINE, check_refine
    from ..stylizer import check_scale, check_strength

    strength, scale, refine = check_strength(args.strength), check_scale(args.scale), check_refine(args.refine)
    if args.best and not refine:
        refine = MAX_REFINE if args.seconds else BEST_STEPS
    items = _expand_inputs(args.inputs)
    problem = _output_problem(items, args)
    if problem:
        return fail(problem)
    stylizer, spec, weights = _stylizer_and_weights(args, refine)
    say_engine(args, stylizer)
    label = "painting" if args.painting else args.style if isinstance(spec, str) else "mix"
    for item in items:
        start = time.perf_counter()
        image = limit_size(pil_to_tensor(_read_input(item)), args.max_size)
        bar, progress = tqdm_progress(refine, "refine") if refine else (None, None)
        try:
            result = stylizer(image, weights, strength, args.preserve_color, scale, refine=refine, progress=progress,
                              seconds=args.seconds)
        finally:
            if bar is not None:
                bar.close()
        target = _write_result(result, item, args, _single_file(items, args), label)
        seconds = time.perf_counter() - start
        h, w = result.shape[-2:]
        if args.json:
            print(json.dumps({"input": item, "output": target, "style": spec, "width": w, "height": h,
                              "seconds": round(seconds, 4), "device": str(stylizer.device),
                              "engine": stylizer.choice.name}))
        elif args.output != "-":
            print(f"{item} -> {target} ({w}x{h}, {seconds * 1000:.0f} ms, {stylizer.device})")
    return 0


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text)[:60]


def run_styles(args: argparse.Namespace) -> int:
    from ..modelfile import get_model, resolve_model_path

    model = get_model(args.model)
    rows = [{"index": i, "name": s.name, "source": s.source, "steps": s.training.get("steps"),
             "added_by": s.training.get("added_by", "train")} for i, s in enumerate(model.styles)]
    if args.json:
        print(json.dumps({"model": str(resolve_model_path(args.model)), "styles": rows}, indent=2))
        return 0
    print(f"model: {resolve_model_path(args.model)} (width {model.net.width})")
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['index']:>3}  {r['name']:<{width}}  {r['source']}")
    return 0


def run_sheet(args: argparse.Namespace) -> int:
    from ..images import load_image, save_image
    from ..sheet import contact_sheet
    from ..styles import style_weights
    from ..stylizer import get_stylizer

    stylizer = get_stylizer(args.model, args.device)
    photo = load_image(args.photo, max_size=args.tile)
    tiles = [("photo", photo)]
    for i, name in enumerate(stylizer.names):
        tiles.append((name, stylizer(photo, style_weights(i, stylizer.names))))
    save_image(contact_sheet(tiles, args.columns), args.output)
    print(f"{len(tiles) - 1} styles -> {args.output}")
    return 0


def run_export_onnx(args: argparse.Namespace) -> int:
    from ..export import export_onnx
    from ..modelfile import get_model

    model = get_model(args.model)
    export_onnx(model, args.output, args.opset)
    print(f"{len(model.styles)} styles -> {args.output} (inputs: image [B,3,H,W] in 0..1 with H, W multiples of 4; "
          f"style_weights [B,{len(model.styles)}])")
    return 0
