"""Quantization-aware fine-tuning of a model's convolutions for OpenVINO int8 (:mod:`multistyle.engine.int8`):
every conv fake-quantized as the CPU runs it, the input ranges calibrated on training crops, then the conv weights
fine-tuned with the model's own perceptual loss (its :class:`~multistyle.loss.LossConfig`, the Gram targets of its
stored paintings), every style sampled. The instance norms and every style's γ/β row stay float and frozen.
:func:`check_int8` is the check an int8 file records (:func:`multistyle.engine.int8.save_int8`): OpenVINO runs the
int8 graph on held-out photos for every style, scored by the same loss as the float network."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..engine.graph import style_affine
from ..engine.int8 import calibrate, int8_key, quantize_convs
from ..engine.runners import RunnerSpec, build_runner
from ..images import load_image
from ..modelfile import ModelFile
from ..optim import Adam
from ..progress import ProgressFn
from .data import ContentImages, augment, step_generator
from .distill import PERCEPTUAL_SCALE, perceptual_setup


@dataclass(frozen=True)
class QuantizeConfig:
    """Settings of one fine-tune: ``steps`` Adam steps on ``batch`` crops of ``size`` px cut from photos seen at
    each of ``photo_sizes`` in turn (the scales the picture must hold at), one random style per crop;
    ``calibration`` batches set the input ranges first."""

    steps: int = 240
    batch: int = 4
    size: int = 192
    photo_sizes: tuple[int, ...] = (256, 480)
    lr: float = 1e-5
    calibration: int = 8
    seed: int = 0
    keep_float: tuple[str, ...] = ()  # conv names left in float (e.g. "encoder.0.conv", "head")


def _batch(datasets: list[ContentImages], config: QuantizeConfig, step: int, num_styles: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops and one-hot style weights for ``step`` (drawn from (seed, step)), at the step's photo scale."""
    g = step_generator(config.seed, step, 0, 3)
    dataset = datasets[step % len(datasets)]
    picks = torch.randint(len(dataset), (config.batch,), generator=g).tolist()
    crop_area = min(1.0, (config.size / config.photo_sizes[step % len(datasets)]) ** 2)
    seed = int(torch.randint(2**31, (1,), generator=g))
    images = augment(torch.stack([dataset[i] for i in picks]), config.size, seed, crop_area)
    labels = torch.randint(num_styles, (config.batch,), generator=g)
    return images, nn.functional.one_hot(labels, num_styles).float()


def quantization_aware(model: ModelFile, photos: Sequence[Path], config: QuantizeConfig = QuantizeConfig(),
                       progress: ProgressFn | None = None) -> nn.Module:
    """``model``'s network with int8-simulated convs, calibrated and fine-tuned as ``config`` says (a copy; the
    model is not changed). Only conv weights and biases train; every γ/β table is frozen."""
    datasets = [ContentImages(photos, size) for size in config.photo_sizes]
    num_styles = model.net.num_styles
    qnet = quantize_convs(model.net.float().cpu(), config.keep_float).train()
    calibrate(qnet, (_batch(datasets, config, -1 - i, num_styles) for i in range(config.calibration)))
    for p in qnet.parameters():
        p.requires_grad_(False)
    convs = [m for m in qnet.modules() if isinstance(m, nn.Conv2d)]
    params = [p for conv in convs for p in (conv.weight, conv.bias) if p is not None]
    for p in params:
        p.requires_grad_(True)
    loss_fn, targets = perceptual_setup(model)
    optimizer = Adam(params, lr=config.lr)
    started = time.perf_counter()
    for step in range(config.steps):
        images, weights = _batch(datasets, config, step, num_styles)
        terms = loss_fn(qnet(images, weights), loss_fn.content_targets(images), targets.mix(weights))
        for p in params:
            p.grad = None
        (terms.total / PERCEPTUAL_SCALE).backward()
        optimizer.step()
        if progress is not None:
            progress(step + 1, config.steps, {**terms.item(), "seconds": time.perf_counter() - started})
    for p in qnet.parameters():
        p.requires_grad_(False)
    return qnet.eval()



@torch.no_grad()
def check_int8(model: ModelFile, qnet: nn.Module, photos: Sequence[Path], sizes: Sequence[int] = (256, 480)) -> dict:
    """Per style and size: the model's perceptual loss of the float network's output and of the int8 graph's as
    OpenVINO runs it (the fake-quantized ONNX graph, int8 convs), summed over ``photos`` at that long side (cut to
    multiples of 4), and the mean pixel difference; plus the largest ratio and difference."""
    loss_fn, targets = perceptual_setup(model)
    net = model.net.float().cpu().eval()
    key = int8_key(qnet)
    styles = {name: {"fp32": [], "int8": [], "diff": []} for name in model.style_names}
    for size in sizes:
        images = []
        for path in photos:
            image = load_image(path, max_size=size)
            images.append(image[..., : image.shape[-2] // 4 * 4, : image.shape[-1] // 4 * 4])
        runners = {tuple(x.shape): build_runner(qnet, RunnerSpec("openvino", "fp32", "image", tuple(x.shape), 1), key)
                   for x in images}
        feats = [loss_fn.content_targets(x) for x in images]
        for s, name in enumerate(model.style_names):
            weights = nn.functional.one_hot(torch.tensor([s]), net.num_styles).float()
            affine, grams = style_affine(net, weights), targets.select(torch.tensor([s]))
            fp32 = int8 = diff = 0.0
            for x, f in zip(images, feats):
                ref = net(x, weights)
                out = torch.from_numpy(runners[tuple(x.shape)](x.numpy(), affine))
                fp32 += float(loss_fn(ref, f, grams).total)
                int8 += float(loss_fn(out, f, grams).total)
                diff += float((out - ref).abs().mean()) / len(images)
            row = styles[name]
            row["fp32"].append(round(fp32, 1))
            row["int8"].append(round(int8, 1))
            row["diff"].append(round(diff, 5))
    for row in styles.values():
        row["ratio"] = round(max(i / f for i, f in zip(row["int8"], row["fp32"])), 5)
    return {"styles": styles, "photos": [Path(p).name for p in photos], "sizes": list(sizes),
            "max_ratio": max(r["ratio"] for r in styles.values()),
            "max_diff": max(max(r["diff"]) for r in styles.values())}
