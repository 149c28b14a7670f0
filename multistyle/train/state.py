"""Training state files: the resumable ``*.train.safetensors`` twin of a model file (weights, Adam moments, step,
history), written atomically together with the model file, and the one check that a run may write its output."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..modelfile import ModelFile, model_extra, save_model


def state_path(out: str | os.PathLike) -> Path:
    """Where the resumable training state of model file ``out`` lives."""
    out = Path(out)
    return out.with_name(out.stem + ".train" + out.suffix)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam state as flat tensors (safetensors cannot hold Python objects)."""
    out = {}
    for i, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            out[f"optimizer.{i}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Restore state saved by :func:`optimizer_tensors`. Pass the tensors as loaded (on the CPU): the optimizer
    moves its moments to each parameter's device and keeps Adam's ``step`` counters on the CPU, where reading
    them costs no device synchronisation (moving them to CUDA costs one sync per parameter per step)."""
    sd = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    sd["state"] = state
    optimizer.load_state_dict(sd)


def save_state(model: ModelFile, out: str | os.PathLike, optimizer: torch.optim.Optimizer) -> None:
    """Write the training state (``model.extra`` is the full record, history included; plus the optimizer) to
    :func:`state_path` ``(out)`` and the model file (without the training-only record) to ``out``, both atomically."""
    save_model(model, state_path(out), optimizer_tensors(optimizer))
    save_model(ModelFile(model.net, model.styles, model.loss, model_extra(model.extra)), out)


def check_output(out: str | os.PathLike, overwrite: bool, resume: bool) -> None:
    """Refuse to start over an existing model file unless asked to (``--overwrite``) or continuing it (``--resume``
    with its state file present)."""
    if Path(out).exists() and not overwrite and not (resume and state_path(out).exists()):
        raise ValueError(f"{out} already exists; pass --resume to continue its training, --overwrite to "
                         "replace it, or choose another --out")
