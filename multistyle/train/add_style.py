"""Teach an existing model a new style by training only that style's γ/β rows (every conv weight frozen).

Old styles stay bit-identical: their rows never receive a gradient (masked), and are checked after training.
The recipe (``--quality fast``, the default; MODEL.md, "Adding a style") is fixed work, the same picture on every
CPU: the new rows start as the NNLS blend of the existing rows that best matches the painting's Gram statistics
(:mod:`.style_init`); the optimisers move them in steps scaled by how much each entry varies between the existing
styles; 10 full-batch L-BFGS evaluations over the packaged photos at 64 px, then 48 Adam steps on one whole photo
per step at 128 px with a decaying rate. The loss network runs in bf16 where the CPU has it natively and without
style layers too deep to matter. ``time_budget`` is the user's cap on the fit (the set-up is not counted).
``--quality best`` is the 25 s recipe of 2026-12-03 by its work; ``legacy`` the first recipe (mean start, 200 Adam
steps on centre squares), kept for comparison.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from filelock import FileLock, Timeout
from PIL import Image, ImageOps

from ..errors import ModelFileError, StyleError
from ..images import list_images, load_image, open_rgb, pil_to_tensor, resize_long_side
from ..loss import PerceptualLoss
from ..modelfile import ModelFile, StyleInfo, load_model, make_painting, make_thumbnail, save_model
from ..nets import StyleBankNet
from ..precision import PrecisionChoice, choose_precision, measured_bf16
from ..progress import ProgressFn
from .data import ContentImages
from .row_fit import PRECISIONS, PRESETS, AddStyleConfig, fit_rows, preset  # noqa: F401 (PRECISIONS, PRESETS: re-exported)
from .style_init import blend_weights, init_rows


def sanitize_style_name(name: str) -> str:
    """A style name safe in file names and menus: letters, digits, '_' and '-' only, ≤ 40 characters."""
    clean = "".join(c if c.isalnum() or c in "_-" else "_" for c in name.strip().lower())[:40].strip("_")
    if not clean:
        raise StyleError(f"{name!r} is not a usable style name; use letters, digits, '_' or '-'")
    return clean


def model_lock(path: str | os.PathLike) -> FileLock:
    """An exclusive lock on a model file, taken without waiting: a hidden ``.NAME.lock`` beside it (the lock file
    stays after release, as lock files must, so it is kept out of the user's listing)."""
    path = Path(path)
    return FileLock(str(path.with_name(f".{path.name}.lock")), timeout=0)


def add_style(style_image: str | os.PathLike, model_path: str | os.PathLike, out: str | os.PathLike,
              content: Sequence[str | os.PathLike], name: str | None = None,
              config: AddStyleConfig | None = None, device: torch.device | str = "cpu",
              progress: ProgressFn | None = None) -> ModelFile:
    """Append one style to the model at ``model_path``, train only its rows, write the result to ``out``."""
    config = config or AddStyleConfig()
    device = torch.device(device)
    name = sanitize_style_name(name or Path(style_image).stem)
    style = load_image(style_image)  # fail on a bad image before touching any model file
    lock = model_lock(out)
    try:
        lock.acquire()
    except Timeout:
        raise ModelFileError(f"another add_style is already writing {out}; wait for it to finish") from None
    try:
        model, _ = load_model(model_path, device)
        trained = learn_style(model, style, content, name, Path(style_image).name, config, device, progress)
        save_model(trained, out)
        return trained
    finally:
        lock.release()


def learn_style(model: ModelFile, style: torch.Tensor, content: Sequence[str | os.PathLike], name: str,
                source: str = "", config: AddStyleConfig | None = None, device: torch.device | str = "cpu",
                progress: ProgressFn | None = None, loss_fn: PerceptualLoss | None = None,
                on_step: Callable[[StyleBankNet, int, dict[str, float]], None] | None = None) -> ModelFile:
    """A new :class:`ModelFile` with one more style learned from the painting ``style`` ([1, 3, H, W] in [0, 1]) on
    the photos ``content``; nothing is written anywhere (the demo keeps it in the visitor's session). ``model``'s
    own network is not modified: the new one is a copy, and every existing style's rows stay bit-identical.
    ``loss_fn``: the model's perceptual loss if the caller has it loaded (else it is built from ``model.loss``).
    ``on_step(net, index, record)`` after every step sees the network being trained (for time-to-quality curves:
    copy ``net``'s rows ``index``; do not modify them)."""
    from ..refine import model_loss

    config = config or AddStyleConfig()
    device = torch.device(device)
    name = sanitize_style_name(name)
    if name in model.style_names:
        raise StyleError(f"the model already has a style named {name!r}; pick another --name")
    began = time.perf_counter()
    net = copy.deepcopy(model.net).to(device)
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    style_size = config.style_size or int(model.styles[0].training.get("style_size", 256))
    loss_fn = loss_fn or model_loss(model, device)
    style_small = resize_long_side(style, style_size)
    targets = loss_fn.style_targets([style_small.to(device)])
    weights = blend_weights(model, loss_fn, style_small) if config.init == "blend" else None
    [new] = net.append_styles(1)
    if weights is not None:
        init_rows(net, new, weights)
    tables = net.freeze_except_styles([new])
    net.train()
    photos = [g.to(device) for g in _content_photos(content, config)]

    def report(step: int, total: int, record: dict[str, float]) -> None:
        if on_step is not None:
            on_step(net, new, record)
        if progress is not None:
            progress(step, expected_steps(config, step, record["seconds"]), record)
    grams = targets.select(torch.zeros(1, dtype=torch.long))
    if config.trim:
        with torch.no_grad():
            start_image = net(photos[0][:1], torch.full((1,), new, device=device))
            loss_fn = loss_fn.trimmed(start_image, loss_fn.content_targets(photos[0][:1]), grams, config.trim)
    choice = precision_choice(config, device, _loss_evaluation(loss_fn, photos[0][:1], grams))
    start = time.perf_counter()  # the time budget counts the fit only, never the set-up above
    record = fit_rows(net, tables, new, loss_fn, photos, grams, config, choice.bf16, start, report)
    for p in net.parameters():
        p.requires_grad_(False)
    net.eval()
    _check_old_styles(net, before)
    training = {"added_by": "add_style", "steps": int(record.get("step", 0)), "steps_requested": config.steps,
                "time_budget": config.time_budget, "size": config.size, "style_size": style_size,
                "schedule": [list(level) for level in config.levels()], "lr": config.lr, "init": config.init,
                "frame": config.frame, "loss_layers": list(loss_fn.config.style_layers),
                "precision": choice.name, "precision_reason": choice.reason + (
                    "; the loss network's wide convolutions by Winograd" if config.precision == "auto"
                    and not choice.bf16 and device.type == "cpu" else ""),
                "setup_seconds": round(start - began, 1), "seconds": round(time.perf_counter() - began, 1),
                "final": {k: record[k] for k in ("content", "style", "tv", "total") if k in record}}
    if weights is not None:
        training["blend"] = {model.style_names[i]: round(float(w), 4) for i, w in enumerate(weights) if w > 0}
    info = StyleInfo(name, source, make_thumbnail(style), training, painting=make_painting(style_small))
    return ModelFile(net.cpu(), model.styles + [info], model.loss, model.extra)


def expected_steps(config: AddStyleConfig, step: int, seconds: float) -> int:
    """The steps a run will have made when it ends, as known after ``step`` steps and ``seconds``: ``steps``, or
    fewer when the time budget will end it first (at the rate so far), so ``step / expected`` is how far it is."""
    if config.time_budget is None or step <= 0 or seconds <= 0:
        return config.steps
    return max(step, min(config.steps, round(step * config.time_budget / seconds)))


def _content_photos(content: Sequence[str | os.PathLike], config: AddStyleConfig) -> list[torch.Tensor]:
    """Up to ``config.crops`` photos (a seeded pick) at the finest size, grouped by shape into [N, 3, H, W] batches.
    ``frame="whole"``: each photo fitted to 3:2 (or 2:3 when portrait) with its long side at ``size`` (the scale
    a style is judged and used at); ``"square"``: the centre square (the legacy recipe, which picks with
    replacement when there are fewer photos than ``crops``)."""
    files = list_images(content)
    generator = torch.Generator().manual_seed(config.seed)
    if config.frame == "square":
        dataset = ContentImages(files, config.size)
        if all(opt == "adam" for _, _, opt in config.levels()) and len(dataset) < config.crops:
            picks = torch.randint(len(dataset), (config.crops,), generator=generator)
        else:
            picks = torch.randperm(len(dataset), generator=generator)[: config.crops]
        return [torch.stack([resize_long_side(dataset[int(i)][None], config.size)[0] for i in picks])]
    short = max(16, round(config.size * 2 / 3 / 8) * 8)  # VGG's deepest style layer needs 16 px
    groups: dict[tuple[int, int], list[torch.Tensor]] = {}
    for i in torch.randperm(len(files), generator=generator)[: config.crops]:
        img = open_rgb(files[int(i)])
        shape = (config.size, short) if img.width >= img.height else (short, config.size)
        groups.setdefault(shape, []).append(pil_to_tensor(ImageOps.fit(img, shape, Image.Resampling.BICUBIC))[0])
    return [torch.stack(g) for g in groups.values()]


def uses_bf16(config: AddStyleConfig, device: torch.device) -> bool:
    """Whether the loss evaluations would run under bf16 autocast, by capability alone (:func:`precision_choice`
    without a measurement)."""
    return precision_choice(config, device).bf16


def precision_choice(config: AddStyleConfig, device: torch.device,
                     evaluate: Callable[[bool], object] | None = None) -> PrecisionChoice:
    """``config.precision`` resolved on ``device``: ``auto`` is bf16 only where it is native (AVX-512 BF16 or AMX:
    1.7× faster per evaluation on a 2-core Zen 4, same held-out loss; MODEL.md), never oneDNN's emulation; given
    ``evaluate(bf16)``, a native CPU also has to prove bf16 faster on it (timed once per machine, then cached)."""
    if config.precision != "auto" or evaluate is None:
        return choose_precision(config.precision, device)
    return measured_bf16(device, evaluate, evaluate.__doc__ or "add-style loss")


def _loss_evaluation(loss_fn: PerceptualLoss, photo: torch.Tensor, grams: dict[str, torch.Tensor]
                     ) -> Callable[[bool], object]:
    """One forward + backward of the loss network on ``photo`` [1, 3, H, W], in bf16 autocast or fp32."""
    feats = loss_fn.content_targets(photo)

    def evaluate(bf16: bool) -> None:
        x = photo.clone().requires_grad_(True)
        with torch.autocast(photo.device.type, dtype=torch.bfloat16, enabled=bf16):
            total = loss_fn(x, feats, grams).total
        total.backward()
    evaluate.__doc__ = (f"add-style loss network, {photo.shape[-1]}x{photo.shape[-2]}, "
                        f"{len(loss_fn.config.style_layers)} style layers")
    return evaluate


def _check_old_styles(net, before: dict[str, torch.Tensor]) -> None:
    """Every conv weight and every existing style's rows exactly as they were (a guard on the masking)."""
    after = net.state_dict()
    for key, old in before.items():
        now = after[key][: old.shape[0]] if key.endswith((".gamma", ".beta")) else after[key]
        if not torch.equal(now, old):
            raise RuntimeError(f"internal error: {key} of an existing style changed while adding a style")
