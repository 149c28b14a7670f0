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
from ..modelfile import ModelFile, load_model
from ..nets import FastStyleNet, StyleNet
from ..progress import ProgressFn
from .data import ContentImages, StepBatches, augment, step_generator
from .state import load_optimizer_tensors, save_state, state_path
from .student import eval_photos, evaluate, init_from_teacher, make_student, teacher_eval_outputs  # noqa: F401
from .temporal import temporal_loss

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


@dataclass
class _Run:
    """What the step loop of one distillation carries: the teacher, the student and its optimiser, the records so
    far, the clocks and the running means between history records."""

    teacher_model: ModelFile
    student: FastStyleNet
    optimizer: torch.optim.Optimizer
    start: int
    history: list[dict]
    evals: list[dict]
    elapsed_before: float
    started: float = 0.0
    cpu_started: float = 0.0
    last_save: float = 0.0
    sums: dict[str, float] | None = None
    count: int = 0

    def seconds(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started


def _setup(teacher_path, out, config: DistillConfig, resume: bool, device: torch.device,
           log: Callable[[str], None]) -> _Run:
    """Load the teacher, build the student (from the state file when resuming) and its optimiser."""
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
    return _Run(teacher_model, student, optimizer, start, history, evals, elapsed_before, sums={})


def _train_step(run: _Run, step: int, indices: torch.Tensor, config: DistillConfig, perceptual, crop_area: float,
                device: torch.device) -> dict[str, float]:
    """One optimiser step on the batch ``indices`` (augmentation, style targets and warp drawn from (seed, step))
    → its loss terms."""
    seed = int(torch.randint(2**31, (1,), generator=step_generator(config.seed, step, 0, 1)))
    batch = augment(indices.to(device), config.size, seed, crop_area)
    teacher = run.teacher_model.net
    weights = target_weights(teacher.num_styles, batch.shape[0], config.mix_fraction,
                             step_generator(config.seed, step, 0, 2)).to(device)
    terms = step_loss(run.student, teacher, batch, weights, config, perceptual, step_generator(config.seed, step, 0, 3))
    run.optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    run.optimizer.step()
    return dict(zip(terms, torch.stack([v.detach() for v in terms.values()]).tolist()))  # one device sync


def _record(run: _Run, done: int, values: dict[str, float], config: DistillConfig) -> None:
    """Add a step's terms to the running means; every ``log_every`` steps (and at the end) a history record."""
    for k, v in values.items():
        run.sums[k] = run.sums.get(k, 0.0) + v
    run.count += 1
    if done % config.log_every == 0 or done == config.steps:
        run.history.append({"step": done, **{k: v / run.count for k, v in run.sums.items()},
                            "seconds": round(run.seconds(), 1)})
        run.sums, run.count = {}, 0


def _checkpoint(run: _Run, done: int, references, teacher_path, out, config: DistillConfig) -> None:
    """The evaluation loss on the held-out photos (when there are any), then the state file, atomically."""
    if references:
        run.evals.append({"step": done, "eval_l1": evaluate(run.student, references),
                          "seconds": round(run.seconds(), 1)})
    record = {"step": done, "history": run.history, "evals": run.evals, "config": config.to_dict(),
              "teacher": str(teacher_path), "seconds": run.seconds(), "kind": "distill-from-v1"}
    styles = run.teacher_model.styles
    for s in styles:
        s.training = {**s.training, "distilled_steps": done}
    save_state(ModelFile(run.student, styles, run.teacher_model.loss, record), out, run.optimizer)
    run.last_save = time.perf_counter()


def distill(teacher_path: str | os.PathLike, content_files: Sequence[Path], out: str | os.PathLike,
            config: DistillConfig, resume: bool = False, eval_dir: str | os.PathLike | None = None,
            cpu_budget: float | None = None, wall_budget: float | None = None, progress: ProgressFn | None = None,
            log: Callable[[str], None] = print, device: str | torch.device = "cpu") -> ModelFile:
    """Distil the v1 model at ``teacher_path`` into a v2 net written to ``out``. The state (weights, Adam
    moments, step, loss history) goes to :func:`~multistyle.train.state.state_path` ``(out)`` atomically every
    ``config.checkpoint_seconds`` and at the end; ``resume`` continues it exactly. ``cpu_budget``: stop (with a
    checkpoint) once this process has used that many CPU seconds (for equal-cost recipe comparisons). ``device``:
    where teacher, student and the loss run (the state file is the same on any device)."""
    device = torch.device(device)
    run = _setup(teacher_path, out, config, resume, device, log)
    model = run.teacher_model
    if run.start >= config.steps:
        return ModelFile(run.student.eval(), model.styles, model.loss, {"step": run.start})
    dataset = ContentImages(content_files, config.photo_size)
    crop_area = min(1.0, (config.size / config.photo_size) ** 2)
    loader = DataLoader(dataset, batch_sampler=StepBatches(len(dataset), config.batch, run.start, config.steps,
                                                           config.seed), num_workers=config.workers)
    references = teacher_eval_outputs(model.net, [p.to(device) for p in eval_photos(eval_dir)])
    perceptual = perceptual_setup(model, device) if config.perceptual_weight > 0 else None
    run.started, run.cpu_started = time.perf_counter(), time.process_time()
    run.last_save = time.perf_counter()
    run.student.train()
    step = run.start
    for step, indices in enumerate(loader, start=run.start):
        values = _train_step(run, step, indices, config, perceptual, crop_area, device)
        done = step + 1
        _record(run, done, values, config)
        if progress is not None:
            progress(done, config.steps, values)
        out_of_budget = ((cpu_budget is not None and time.process_time() - run.cpu_started >= cpu_budget)
                         or (wall_budget is not None and time.perf_counter() - run.started >= wall_budget))
        if time.perf_counter() - run.last_save >= config.checkpoint_seconds or done == config.steps or out_of_budget:
            _checkpoint(run, done, references, teacher_path, out, config)
        if out_of_budget:
            log(f"time budget used at step {done}")
            break
    run.student.eval()
    return ModelFile(run.student, model.styles, model.loss, {"step": step + 1})
