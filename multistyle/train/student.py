"""The v2 student of a distillation: a v2 net initialised from a v1 teacher's weights (every tensor whose shape
matches), or a copy of a v2 teacher (a fine-tune towards its own output); and its evaluation loss against the
teacher on held-out photos."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Sequence

import torch

from ..images import load_image
from ..nets import FastStyleNet, StyleNet

EVAL_PHOTOS = ("kodak_houses.jpg", "kodak_parrots.jpg", "coffee.jpg")  # held out: not in the training photos


def make_student(teacher: StyleNet | FastStyleNet, config, seed: int = 0) -> FastStyleNet:
    """A v2 net for the teacher's styles (its shape from ``config``, a DistillConfig), seeded, initialised from the
    teacher (:func:`init_from_teacher`); a v2 teacher is copied whole (a fine-tune of the shipped v2 towards its
    own output, e.g. with the temporal term)."""
    if isinstance(teacher, FastStyleNet):
        return copy.deepcopy(teacher).train().requires_grad_(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        student = FastStyleNet(teacher.num_styles, config.width, config.blocks, config.block, config.cond_encoder,
                               config.padding)
    init_from_teacher(student, teacher)
    return student


@torch.no_grad()
def init_from_teacher(student: FastStyleNet, teacher: StyleNet) -> int:
    """Copy every v1 conv and norm whose shape matches its v2 counterpart: v1's stride-2 conv (16→32), residual
    blocks (evenly spaced when v2 has fewer), first upsampling conv and the output norm's γ/β rows. A plain
    (unconditioned) v2 encoder norm gets the mean of the v1 rows. Returns how many tensors were copied."""
    pairs: list[tuple[torch.nn.Module, torch.nn.Module]] = [
        (student.encoder[1], teacher.layers[2]),
        (student.up, teacher.layers[-2]),
    ]
    v1_blocks = [m for m in teacher.layers if hasattr(m, "conv1")]
    if student.blocks and v1_blocks:
        picks = torch.linspace(0, len(v1_blocks) - 1, student.blocks).round().long().tolist()
        pairs += [(student.body[i], v1_blocks[j]) for i, j in enumerate(picks)]
    copied = 0
    for s_mod, t_mod in pairs:
        s_params, t_params = dict(s_mod.named_parameters()), dict(t_mod.named_parameters())
        for name, value in s_params.items():
            source = t_params.get(name)
            if source is not None and source.shape == value.shape:
                value.copy_(source)
                copied += 1
            elif name.endswith("norm.weight") and name.replace("weight", "gamma") in t_params:
                value.copy_(t_params[name.replace("weight", "gamma")].mean(0))
                copied += 1
            elif name.endswith("norm.bias") and name.replace("bias", "beta") in t_params:
                value.copy_(t_params[name.replace("bias", "beta")].mean(0))
                copied += 1
    student.output_norm.gamma.copy_(teacher.output.norm.gamma)
    student.output_norm.beta.copy_(teacher.output.norm.beta)
    return copied + 2


def eval_photos(folder: str | os.PathLike | None, size: int = 256) -> list[torch.Tensor]:
    """Held-out photos (long side ``size``, cropped to multiples of 4) for the evaluation loss; [] if absent."""
    if folder is None:
        return []
    photos = []
    for name in EVAL_PHOTOS:
        path = Path(folder) / name
        if path.is_file():
            image = load_image(path, max_size=size)
            h, w = image.shape[-2] // 4 * 4, image.shape[-1] // 4 * 4
            photos.append(image[..., :h, :w])
    return photos


@torch.no_grad()
def evaluate(student: torch.nn.Module, teacher_outputs: list[tuple[torch.Tensor, int, torch.Tensor]]) -> float:
    """Mean pixel L1 between student and teacher over (photo, style, teacher output) triples."""
    was_training = student.training
    student.eval()
    total = sum(float((student(photo, torch.tensor([style], device=photo.device)) - target).abs().mean())
                for photo, style, target in teacher_outputs)
    student.train(was_training)
    return total / max(1, len(teacher_outputs))


@torch.no_grad()
def teacher_eval_outputs(teacher: StyleNet, photos: Sequence[torch.Tensor]
                         ) -> list[tuple[torch.Tensor, int, torch.Tensor]]:
    """The teacher's output for every held-out photo in every style."""
    return [(p, s, teacher(p, torch.tensor([s], device=p.device))) for p in photos for s in range(teacher.num_styles)]
