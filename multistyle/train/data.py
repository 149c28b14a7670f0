"""Training data: photos decoded in DataLoader workers, seeded batch sampling (resumable), kornia augmentation,
and the style images with their model-file records."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import kornia.augmentation as K
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ImageError
from ..images import load_image, open_rgb, pil_to_tensor
from ..modelfile import StyleInfo, make_painting, make_thumbnail


class ContentImages(Dataset):
    """Photos decoded in DataLoader workers: shorter side resized to ``size × 1.15``, centre square crop.
    The random crop and flip happen on the batch with kornia. ``size`` is the photo scale (``photo_size``)."""

    def __init__(self, files: Sequence[Path], size: int) -> None:
        self.files = list(files)
        self.load_size = int(round(size * 1.15))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        img = open_rgb(self.files[index])
        scale = self.load_size / min(img.size)
        img = img.resize((max(self.load_size, round(img.width * scale)), max(self.load_size, round(img.height * scale))))
        left, top = (img.width - self.load_size) // 2, (img.height - self.load_size) // 2
        img = img.crop((left, top, left + self.load_size, top + self.load_size))
        return pil_to_tensor(img)[0]


class StepBatches(Sampler[list[int]]):
    """Batch indices for steps ``start..steps-1``, drawn from a generator seeded by (seed, step, rank)."""

    def __init__(self, n: int, batch: int, start: int, steps: int, seed: int, rank: int = 0) -> None:
        self.n, self.batch, self.start, self.steps, self.seed, self.rank = n, batch, start, steps, seed, rank

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield torch.randint(self.n, (self.batch,), generator=step_generator(self.seed, step, self.rank)).tolist()


def step_generator(seed: int, step: int, rank: int, stream: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(((seed * 1_000_003 + step) * 97 + rank) * 7 + stream)


def augment(batch: torch.Tensor, size: int, generator_seed: int, area: float = 1.0) -> torch.Tensor:
    """Random resized crop (``area`` × 0.5–1 of the image) to ``size``×``size`` and horizontal flip (kornia),
    seeded."""
    pipeline = K.AugmentationSequential(
        K.RandomResizedCrop((size, size), scale=(0.5 * area, area), ratio=(0.9, 1.1)),
        K.RandomHorizontalFlip(),
    )
    state = torch.random.get_rng_state()
    torch.manual_seed(generator_seed)
    try:
        return pipeline(batch).clamp(0, 1)
    finally:
        torch.random.set_rng_state(state)


def load_styles(files: Sequence[Path], style_size: int) -> tuple[list[torch.Tensor], list[StyleInfo]]:
    """Style images at ``style_size`` (long side) and their :class:`StyleInfo` (name = file stem)."""
    images, infos = [], []
    for f in files:
        image = load_image(f, max_size=style_size)
        images.append(image)
        infos.append(StyleInfo(f.stem, f.name, make_thumbnail(image), painting=make_painting(image)))
    names = [i.name for i in infos]
    if len(set(names)) != len(names):
        raise ImageError(f"style names must be unique, got {names}")
    return images, infos
