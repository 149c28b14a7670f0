"""Training of the multi-style network against the Gatys teacher's losses (single device or torchrun DDP).

The loss is the same :class:`~multistyle.loss.PerceptualLoss` that Gatys optimises, with style targets from
:class:`~multistyle.loss.StyleTargets` (each style image at its own scale, cached). Each batch mixes styles:
one label is drawn per example. Everything random is drawn from a generator seeded by (seed, step, rank), so a
resumed run continues exactly as if it had never stopped.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..errors import MultistyleError
from ..images import resize_long_side
from ..loss import LossConfig, PerceptualLoss
from ..modelfile import ModelFile, StyleInfo, load_model
from ..nets import StyleNet
from ..progress import ProgressFn
from .data import ContentImages, StepBatches, augment, load_styles, step_generator
from .state import load_optimizer_tensors, save_state, state_path

AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class TrainConfig:
    """Settings of a training run (stored in the model file)."""

    size: int = 256
    batch: int = 8
    steps: int = 20000
    lr: float = 1e-3
    width: float = 1.0
    style_size: int = 256  # long side of each style image when its Gram targets are computed
    photo_size: int | None = None  # scale photos are seen at (None: = size); crops of `size` are cut from it
    seed: int = 0
    amp: str | None = None  # None, "fp16" (CUDA: with a gradient scaler) or "bf16"; Grams stay float32
    checkpoint_every: int = 200
    sample_every: int = 1000
    workers: int = 2
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        checks = {"size": (16, 4096), "batch": (1, 4096), "steps": (1, 10_000_000), "style_size": (16, 4096),
                  "checkpoint_every": (1, 10_000_000), "sample_every": (1, 10_000_000), "workers": (0, 64)}
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if not (isinstance(value, int) and lo <= value <= hi):
                raise ValueError(f"{name.replace('_', '-')} must be an integer in {lo}..{hi}, not {value!r}")
        if self.photo_size is not None and not (isinstance(self.photo_size, int) and self.size <= self.photo_size <= 4096):
            raise ValueError(f"photo-size must be an integer between size ({self.size}) and 4096")
        if self.size % 4:
            raise ValueError(f"size must be a multiple of 4, not {self.size}")
        if not (math.isfinite(self.lr) and 0 < self.lr < 1):
            raise ValueError(f"lr must be in (0, 1), not {self.lr}")
        if self.amp in (False, True):
            self.amp = "fp16" if self.amp else None
        if self.amp not in (None, *AMP_DTYPES):
            raise ValueError(f"amp must be one of {', '.join(AMP_DTYPES)}, not {self.amp!r}")

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for full float32."""
        return AMP_DTYPES[self.amp] if self.amp else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["loss"] = self.loss.to_dict()
        return d


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group when launched by torchrun (NCCL on CUDA, gloo on CPU). On CUDA each
    process first binds its own GPU (``LOCAL_RANK``), then joins; returns the rank info and the device to use."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return DistInfo(), device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank), device


def finish_distributed(info: DistInfo) -> None:
    """Wait for every rank, then leave the process group (no-op without torchrun)."""
    if info.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def resume_state(path: str | os.PathLike, net: StyleNet, optimizer: torch.optim.Optimizer,
                 style_names: Sequence[str]) -> tuple[int, list[dict]]:
    """Load a training state file into ``net`` and ``optimizer`` (wherever they live) → (step, loss history).
    The file is read on the CPU; the optimizer moves its moments to the parameters' device itself and keeps
    Adam's step counters on the CPU (see :func:`load_optimizer_tensors`)."""
    saved, extra = load_model(path, "cpu")
    if saved.style_names != list(style_names) or saved.net.width != net.width:
        raise MultistyleError(f"{path} was trained with other styles or width; drop --resume or pick another --out")
    net.load_state_dict(saved.net.state_dict())
    load_optimizer_tensors(optimizer, extra)
    return int(saved.extra["step"]), saved.extra.get("history", [])


def train(content_files: Sequence[Path], style_files: Sequence[Path], out: str | os.PathLike,
          config: TrainConfig, device: torch.device, resume: bool = False,
          progress: ProgressFn | None = None, log: Callable[[str], None] = print) -> ModelFile:
    """Train a StyleNet on ``style_files`` with photos ``content_files``; checkpoints to ``out`` atomically."""
    info, device = init_distributed(device)
    try:
        return _train(content_files, style_files, out, config, device, info, resume, progress, log)
    finally:
        finish_distributed(info)


def _network(config: TrainConfig, count: int, device: torch.device, info: DistInfo, resume: bool, out,
             names: list[str], log: Callable[[str], None]):
    """The seeded network (the same on every rank and (re)start), its optimiser, the step and history to continue
    from (the state file's when resuming), and the module the step runs (DDP-wrapped with several ranks)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = StyleNet(count, config.width).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    start, history = 0, []
    if resume and state_path(out).exists():
        start, history = resume_state(state_path(out), net, optimizer, names)
        if info.main:
            log(f"resuming {state_path(out)} at step {start}")
    ddp_net: torch.nn.Module = net
    if info.world > 1:
        ddp_net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    return net, optimizer, start, history, ddp_net


def _loader(dataset: ContentImages, config: TrainConfig, start: int, info: DistInfo, device: torch.device
            ) -> DataLoader:
    """Batches of photo indices from ``start`` on, drawn by (seed, step, rank)."""
    return DataLoader(dataset, batch_sampler=StepBatches(len(dataset), config.batch, start, config.steps,
                                                         config.seed, info.rank),
                      num_workers=config.workers, pin_memory=device.type == "cuda", persistent_workers=False)


def _step_inputs(indices: torch.Tensor, config: TrainConfig, step: int, rank: int, crop_area: float, count: int,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmented batch and its style labels for ``step`` (both drawn from (seed, step, rank))."""
    seed = int(torch.randint(2**31, (1,), generator=step_generator(config.seed, step, rank, 1)))
    batch = augment(indices.to(device, non_blocking=True), config.size, seed, crop_area)
    labels = torch.randint(count, (batch.shape[0],), generator=step_generator(config.seed, step, rank, 2)).to(device)
    return batch, labels


def _snapshot(net, optimizer, styles: list[StyleInfo], history: list[dict], step: int, config: TrainConfig,
              photo_size: int, info: DistInfo, device: torch.device, out) -> None:
    """The resumable state and the model file at ``step``, atomically."""
    record = {"step": step, "history": history, "config": config.to_dict(),
              "seconds": history[-1]["seconds"] if history else 0.0, "world_size": info.world, "device": str(device)}
    for s in styles:
        s.training = {"steps": step, "size": config.size, "photo_size": photo_size, "style_size": config.style_size}
    save_state(ModelFile(net, styles, config.loss.to_dict(), record), out, optimizer)


def _train(content_files: Sequence[Path], style_files: Sequence[Path], out: str | os.PathLike,
           config: TrainConfig, device: torch.device, info: DistInfo, resume: bool,
           progress: ProgressFn | None, log: Callable[[str], None]) -> ModelFile:
    """Set up (styles and their targets, network, data), then the step loop with its checkpoint/sample cadence."""
    style_images, styles = load_styles(style_files, config.style_size)
    loss_fn = PerceptualLoss(config.loss).to(device)
    targets = loss_fn.style_targets([s.to(device) for s in style_images], [s.name for s in styles])
    net, optimizer, start, history, ddp_net = _network(config, len(styles), device, info, resume, out,
                                                       [s.name for s in styles], log)
    photo_size = config.photo_size or config.size
    dataset = ContentImages(content_files, photo_size)
    crop_area = min(1.0, (config.size / photo_size) ** 2)
    loader = _loader(dataset, config, start, info, device)
    scaler = amp_scaler(device, config.amp)
    samples = _sample_inputs(dataset, photo_size)
    elapsed_before = history[-1]["seconds"] if history else 0.0
    started = time.perf_counter()
    net.train()
    last_step = start  # a resumed run that had already finished does no step
    for step, indices in enumerate(loader, start=start):
        batch, labels = _step_inputs(indices, config, step, info.rank, crop_area, len(styles), device)
        terms = training_step(ddp_net, loss_fn, batch, labels, targets, optimizer, scaler, config.amp_dtype)
        record = {"step": step + 1, **terms.item(), "seconds": elapsed_before + time.perf_counter() - started,
                  "lr": config.lr, "style_weight": config.loss.style_weight}
        history.append(record)
        last_step = step + 1
        if progress is not None and info.main:
            progress(step + 1, config.steps, record)
        if info.main and ((step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps):
            _snapshot(net, optimizer, styles, history, step + 1, config, photo_size, info, device, out)
        if info.main and ((step + 1) % config.sample_every == 0 or step + 1 == config.steps):
            write_samples(net, samples, styles, Path(out).with_suffix(".samples.png"))
            write_loss_curve(history, Path(out).with_suffix(".loss.png"))
    net.eval()
    return ModelFile(net, styles, config.loss.to_dict(), {"step": last_step})


def amp_scaler(device: torch.device, amp: str | None) -> torch.amp.GradScaler:
    """A gradient scaler for float16 autocast (disabled otherwise). It starts at 2**-8, not 2**16: the perceptual
    loss is 1e5–1e6 on Caffe-scale VGG features, and gradients of the loss times 2**16 overflow float16 in the
    loss network's backward pass, so the default scale would skip the first ~25 steps while backing off."""
    return torch.amp.GradScaler(device.type, init_scale=2.0 ** -8, enabled=amp == "fp16")


def training_step(net: torch.nn.Module, loss_fn: PerceptualLoss, batch: torch.Tensor, labels: torch.Tensor,
                  targets, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                  amp_dtype: torch.dtype | None = None):
    """One optimisation step on ``batch`` with style ``labels``; returns the loss terms (float32).

    With ``amp_dtype`` the network and the loss network run under autocast; the Grams and the loss stay
    float32 (see :func:`~multistyle.loss.gram_matrix`), so float16 cannot overflow to inf."""
    with torch.autocast(batch.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        output = net(batch, labels)
        terms = loss_fn(output, loss_fn.content_targets(batch), targets.select(labels))
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(terms.total).backward()
    scaler.step(optimizer)
    scaler.update()
    return terms


def _sample_inputs(dataset: ContentImages, size: int, count: int = 3) -> torch.Tensor:
    picks = torch.linspace(0, len(dataset) - 1, min(count, len(dataset))).long().tolist()
    return torch.stack([resize_long_side(dataset[i][None], size)[0] for i in picks])


@torch.no_grad()
def write_samples(net: StyleNet, photos: torch.Tensor, styles: Sequence[StyleInfo], path: Path) -> None:
    """A grid: one row per sample photo, one column per style (first column: the photo)."""
    from torchvision.utils import make_grid

    from ..images import save_image

    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    tiles = []
    for photo in photos:
        x = photo[None].to(device)
        tiles.append(photo)
        for i in range(len(styles)):
            tiles.append(net(x, torch.tensor([i], device=device))[0].cpu())
    net.train(was_training)
    grid = make_grid(torch.stack(tiles), nrow=len(styles) + 1, padding=2, pad_value=1.0)
    save_image(grid[None], path)


def write_loss_curve(history: Sequence[dict], path: Path) -> None:
    """Training-loss chart: raw curves faint, EMA on top, log y, phase changes (lr, style weight) marked."""
    from ..plots import training_plot

    training_plot(history, path)
