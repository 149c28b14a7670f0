"""Distillation of a v1 model (:class:`~multistyle.nets.StyleNet`) into the fast v2 network
(:class:`~multistyle.nets.FastStyleNet`): the cheap first training phase of the v2 default model.

The target is the teacher's own output for a random style (or, for a fraction of the examples, a random mix of
two styles) on random crops of the training photos; the loss is pixel L1 plus an L1 on horizontal/vertical
image differences (a cheap low-level texture term, no VGG pass). The student starts from every v1 weight whose
shape matches (the stride-2 conv, the residual blocks, the upsampling conv and their γ/β rows); only the
space-to-depth stem and the pixel-shuffle head start from scratch. Style names, thumbnails, paintings and loss
settings are copied from the teacher's file.

Phase 2 (``perceptual_weight`` > 0) adds the model's own perceptual loss (VGG19 content + style + TV, the
settings and stored paintings of the teacher file, as in :mod:`multistyle.train.loop`) so the student can improve
beyond its teacher; it costs a VGG pass per step. With ``distill_weight`` 0 the perceptual loss is the only loss
(the shipped v2's last phase, on a GPU: the teacher network is then not run at all).

With a v2 teacher (the shipped model) the student is a copy of it: a fine-tune towards its own output, e.g. with
``temporal_weight`` > 0, the warp-consistency term of :mod:`multistyle.train.temporal` (temporal stability
learned from still images; no VGG pass, so it fits a CPU).

Everything random comes from generators seeded by (seed, step), like :mod:`multistyle.train.loop`, so a run
resumed from its state file continues exactly as if it had never stopped.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..errors import MultistyleError
from ..images import load_image
from ..modelfile import ModelFile, load_model
from ..nets import FastStyleNet, StyleNet
from ..progress import ProgressFn
from .data import ContentImages, StepBatches, augment, step_generator
from .state import load_optimizer_tensors, save_state, state_path
from .temporal import temporal_loss

EVAL_PHOTOS = ("kodak_houses.jpg", "kodak_parrots.jpg", "coffee.jpg")  # held out: not in the training photos
PERCEPTUAL_SCALE = 1e5  # about v1's final training loss (MODEL.md), so the perceptual term is O(1) per unit weight


@dataclass
class DistillConfig:
    """Settings of a distillation run (stored in the state file; a resumed run keeps the architecture)."""

    size: int = 128  # crop size (multiple of 4)
    photo_size: int = 256  # scale photos are seen at before cropping
    batch: int = 8
    steps: int = 100_000
    lr: float = 2e-3
    grad_weight: float = 1.0  # weight of the L1 on image differences
    mix_fraction: float = 0.25  # share of examples whose target is a random two-style mix
    perceptual_weight: float = 0.0  # phase 2: weight of the model's own perceptual loss / PERCEPTUAL_SCALE (VGG)
    distill_weight: float = 1.0  # weight of the distillation loss (0 with perceptual_weight > 0: pure perceptual)
    temporal_weight: float = 0.0  # weight of the warp-consistency term |S(W(x)+n) - W(S(x))| (train/temporal.py)
    width: float = 0.25
    blocks: int = 3
    block: str = "conv"
    cond_encoder: bool = True
    padding: str = "replicate"  # v2 conv padding; a resumed state may switch it (the weights carry over)
    seed: int = 0
    checkpoint_seconds: float = 180.0  # wall time between atomic checkpoints
    log_every: int = 25  # steps per history record (mean losses)
    workers: int = 1

    def __post_init__(self) -> None:
        for name, lo, hi in (("size", 16, 4096), ("photo_size", 16, 4096), ("batch", 1, 4096),
                             ("steps", 1, 100_000_000), ("log_every", 1, 1_000_000), ("workers", 0, 64),
                             ("blocks", 0, 16)):
            value = getattr(self, name)
            if not (isinstance(value, int) and lo <= value <= hi):
                raise ValueError(f"{name.replace('_', '-')} must be an integer in {lo}..{hi}, not {value!r}")
        if self.size % 4 or self.size > self.photo_size:
            raise ValueError(f"size must be a multiple of 4 and at most photo-size ({self.photo_size}), "
                             f"not {self.size}")
        if not (math.isfinite(self.lr) and 0 < self.lr < 1):
            raise ValueError(f"lr must be in (0, 1), not {self.lr}")
        if not (0 <= self.mix_fraction <= 1 and 0 <= self.grad_weight < 1e6 and self.checkpoint_seconds > 0
                and 0 <= self.perceptual_weight < 1e6 and 0 <= self.distill_weight < 1e6
                and 0 <= self.temporal_weight < 1e6):
            raise ValueError("mix-fraction must be in [0, 1], grad-weight, perceptual-weight, distill-weight and "
                             "temporal-weight >= 0, checkpoint-seconds > 0")
        if self.distill_weight == 0 and self.perceptual_weight == 0:
            raise ValueError("distill-weight and perceptual-weight are both 0: nothing to train on")

    def to_dict(self) -> dict:
        return asdict(self)


def make_student(teacher: StyleNet | FastStyleNet, config: DistillConfig, seed: int = 0) -> FastStyleNet:
    """A v2 net for the teacher's styles, seeded, initialised from the teacher (:func:`init_from_teacher`); a v2
    teacher is copied whole (a fine-tune of the shipped v2 towards its own output, e.g. with the temporal term)."""
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


def target_weights(num_styles: int, batch: int, mix_fraction: float, generator: torch.Generator) -> torch.Tensor:
    """[batch, num_styles] style weights: one-hot rows, and with probability ``mix_fraction`` a random convex mix
    of two different styles."""
    labels = torch.randint(num_styles, (batch,), generator=generator)
    weights = F.one_hot(labels, num_styles).float()
    if num_styles > 1:
        mixed = torch.rand(batch, generator=generator) < mix_fraction
        other = (labels + torch.randint(1, num_styles, (batch,), generator=generator)) % num_styles
        share = torch.rand(batch, generator=generator)
        for i in torch.nonzero(mixed).flatten().tolist():
            weights[i] = 0
            weights[i, labels[i]] = share[i]
            weights[i, other[i]] = 1 - share[i]
    return weights


def distill_loss(student_out: torch.Tensor, teacher_out: torch.Tensor, grad_weight: float) -> dict[str, torch.Tensor]:
    """Pixel L1 plus ``grad_weight`` × L1 of horizontal and vertical differences; returns the terms and total."""
    pixel = (student_out - teacher_out).abs().mean()
    dx = lambda x: x[..., :, 1:] - x[..., :, :-1]  # noqa: E731
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]  # noqa: E731
    grad = ((dx(student_out) - dx(teacher_out)).abs().mean() + (dy(student_out) - dy(teacher_out)).abs().mean()) / 2
    return {"pixel": pixel, "grad": grad, "total": pixel + grad_weight * grad}


def perceptual_setup(model: ModelFile, device: torch.device | str = "cpu"):
    """(PerceptualLoss with the model's loss settings, Gram targets of its stored paintings) for phase 2."""
    from ..loss import LossConfig, PerceptualLoss

    missing = [s.name for s in model.styles if s.painting is None]
    if missing:
        raise MultistyleError(f"styles {', '.join(missing[:3])} have no stored painting in the teacher file, so "
                              "--perceptual-weight cannot build their style targets")
    loss_fn = PerceptualLoss(LossConfig.from_dict(model.loss)).to(device)
    images = [s.painting.permute(2, 0, 1)[None].float().to(device) / 255 for s in model.styles]
    return loss_fn, loss_fn.style_targets(images, model.style_names)


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


def step_loss(student: torch.nn.Module, teacher: torch.nn.Module, batch: torch.Tensor, weights: torch.Tensor,
              config: DistillConfig, perceptual=None, generator: torch.Generator | None = None
              ) -> dict[str, torch.Tensor]:
    """The loss terms of one step: ``distill_weight`` × the distillation loss to the teacher's output, plus
    ``perceptual_weight`` × the perceptual loss / PERCEPTUAL_SCALE when ``perceptual`` = (loss, style targets), plus
    ``temporal_weight`` × the warp-consistency term (its random warp drawn from ``generator``)."""
    output = student(batch, weights)
    if config.distill_weight > 0:
        with torch.no_grad():
            target = teacher(batch, weights)
        terms = distill_loss(output, target, config.grad_weight)
        terms["total"] = config.distill_weight * terms["total"]
    else:
        terms = {"total": output.new_zeros(())}
    if perceptual is not None:
        loss_fn, style_targets = perceptual
        p_terms = loss_fn(output, loss_fn.content_targets(batch), style_targets.mix(weights))
        terms["perceptual"] = p_terms.total / PERCEPTUAL_SCALE
        terms["total"] = terms["total"] + config.perceptual_weight * terms["perceptual"]
    if config.temporal_weight > 0:
        terms["temporal"] = temporal_loss(student, batch, output, weights, generator or torch.Generator())
        terms["total"] = terms["total"] + config.temporal_weight * terms["temporal"]
    return terms


def _resume(path: Path, teacher_model: ModelFile, student: FastStyleNet, optimizer: torch.optim.Optimizer,
            log: Callable[[str], None]) -> tuple[int, list[dict], list[dict], float]:
    """Load a distillation state into ``student`` and ``optimizer`` → (step, history, evals, seconds so far)."""
    saved, extra = load_model(path)
    if (saved.style_names != teacher_model.style_names  # the padding may differ: it is switched below
            or {**saved.net.arch_params(), "padding": student.padding} != student.arch_params()):
        raise MultistyleError(f"{path} holds other styles or another architecture; drop --resume or pick another --out")
    if saved.net.padding != student.padding:
        log(f"padding {saved.net.padding} -> {student.padding}: the weights carry over, borders will re-adapt")
    student.load_state_dict(saved.net.state_dict())
    load_optimizer_tensors(optimizer, extra)
    step = int(saved.extra["step"])
    log(f"resuming {path} at step {step}")
    return step, saved.extra.get("history", []), saved.extra.get("evals", []), float(saved.extra.get("seconds", 0.0))


def distill(teacher_path: str | os.PathLike, content_files: Sequence[Path], out: str | os.PathLike,
            config: DistillConfig, resume: bool = False, eval_dir: str | os.PathLike | None = None,
            cpu_budget: float | None = None, wall_budget: float | None = None, progress: ProgressFn | None = None,
            log: Callable[[str], None] = print, device: str | torch.device = "cpu") -> ModelFile:
    # ~75 lines on purpose: set-up, then the step loop with its logging, evaluation and checkpoint cadence, read top
    # to bottom like train.loop._train (the loss of a step is step_loss, resuming is _resume)
    """Distil the v1 model at ``teacher_path`` into a v2 net written to ``out``. The state (weights, Adam
    moments, step, loss history) goes to :func:`~multistyle.train.state.state_path` ``(out)`` atomically every
    ``config.checkpoint_seconds`` and at the end; ``resume`` continues it exactly. ``cpu_budget``: stop (with a
    checkpoint) once this process has used that many CPU seconds (for equal-cost recipe comparisons). ``device``:
    where teacher, student and the loss run (the state file is the same on any device)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest kernels once
    teacher_model, _ = load_model(teacher_path, device)
    teacher = teacher_model.net
    if not isinstance(teacher, (StyleNet, FastStyleNet)):
        raise MultistyleError(f"{teacher_path} is a {teacher.architecture} model; the teacher must be a v1 or v2 "
                              f"model")
    teacher.eval().requires_grad_(False)
    student = make_student(teacher, config, config.seed).to(device)
    optimizer = torch.optim.Adam(student.parameters(), lr=config.lr)
    start, history, evals, elapsed_before = 0, [], [], 0.0
    if resume and state_path(out).exists():
        start, history, evals, elapsed_before = _resume(state_path(out), teacher_model, student, optimizer, log)
    if start >= config.steps:
        return ModelFile(student.eval(), teacher_model.styles, teacher_model.loss, {"step": start})
    dataset = ContentImages(content_files, config.photo_size)
    crop_area = min(1.0, (config.size / config.photo_size) ** 2)
    loader = DataLoader(dataset, batch_sampler=StepBatches(len(dataset), config.batch, start, config.steps,
                                                           config.seed), num_workers=config.workers)
    references = teacher_eval_outputs(teacher, [p.to(device) for p in eval_photos(eval_dir)])
    perceptual = perceptual_setup(teacher_model, device) if config.perceptual_weight > 0 else None
    started, cpu_started = time.perf_counter(), time.process_time()
    last_save = time.perf_counter()
    sums: dict[str, float] = {}
    count = 0
    student.train()

    def snapshot(step: int) -> None:
        record = {"step": step, "history": history, "evals": evals, "config": config.to_dict(),
                  "teacher": str(teacher_path), "seconds": elapsed_before + time.perf_counter() - started,
                  "kind": "distill-from-v1"}
        for s in teacher_model.styles:
            s.training = {**s.training, "distilled_steps": step}
        save_state(ModelFile(student, teacher_model.styles, teacher_model.loss, record), out, optimizer)

    step = start
    for step, indices in enumerate(loader, start=start):
        seed = int(torch.randint(2**31, (1,), generator=step_generator(config.seed, step, 0, 1)))
        batch = augment(indices.to(device), config.size, seed, crop_area)
        weights = target_weights(teacher.num_styles, batch.shape[0], config.mix_fraction,
                                 step_generator(config.seed, step, 0, 2)).to(device)
        terms = step_loss(student, teacher, batch, weights, config, perceptual,
                          step_generator(config.seed, step, 0, 3))
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        values = dict(zip(terms, torch.stack([v.detach() for v in terms.values()]).tolist()))  # one device sync
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        done = step + 1
        seconds = elapsed_before + time.perf_counter() - started
        if done % config.log_every == 0 or done == config.steps:
            history.append({"step": done, **{k: v / count for k, v in sums.items()}, "seconds": round(seconds, 1)})
            sums, count = {}, 0
        if progress is not None:
            progress(done, config.steps, values)
        out_of_budget = ((cpu_budget is not None and time.process_time() - cpu_started >= cpu_budget)
                         or (wall_budget is not None and time.perf_counter() - started >= wall_budget))
        if time.perf_counter() - last_save >= config.checkpoint_seconds or done == config.steps or out_of_budget:
            if references:
                evals.append({"step": done, "eval_l1": evaluate(student, references), "seconds": round(seconds, 1)})
            snapshot(done)
            last_save = time.perf_counter()
        if out_of_budget:
            log(f"time budget used at step {done}")
            break
    student.eval()
    return ModelFile(student, teacher_model.styles, teacher_model.loss, {"step": step + 1})
