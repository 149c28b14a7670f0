"""The engine layer: a model's network as a runner compiled for one frame size, on the engine and precision that
measure fastest here without changing the picture (torch eager is the reference and the fallback).

The style is an input of every compiled graph (``affine``: the mixed γ/β of each conditional instance norm, from
:func:`style_affine`), so switching or mixing styles, a visitor's added style and a zero-shot row never recompile;
runners are cached per network weights (:func:`fingerprint`, style tables excluded), graph kind, shape and threads.

Entry points:

- :func:`choose_engine` (``requested`` in :data:`CHOICES`, device, net) → :class:`EngineChoice` (engine, precision,
  reason); ``auto`` is measured once per machine and cached in ``cache_dir()/engine.json``.
- :func:`check_engine` validates a user's ``--engine`` / ``engine=`` (:class:`EngineError`, a one-line
  :class:`~multistyle.errors.MultistyleError`).
- :func:`compiled_runner` (net, kind, shape, choice) → a callable on NumPy arrays: ``"image"``: (float32
  [B, 3, H, W] in 0..1, affine [B, K]) → float32 [B, 3, H, W]; ``"frame"``: (uint8 [H, W, 3] BGR, affine [1, K],
  strength float32 [1]) → uint8 [H, W, 3] BGR; ``"rgb8"``: the same in RGB order. H, W multiples of the net's
  ``multiple``.

:class:`multistyle.Stylizer` (``engine=``) and :class:`multistyle.video.frames.FrameStylizer` use these; most
callers need nothing else.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future

import torch

from .choice import CHOICES, MAX_MEAN_DIFF, EngineChoice, check_engine, choose_engine
from .graph import affine_width, fingerprint, style_affine
from .runners import ENGINES, EngineError, Runner, RunnerSpec, build_runner, installed

__all__ = ["CHOICES", "ENGINES", "MAX_MEAN_DIFF", "EngineChoice", "EngineError", "Runner", "RunnerSpec",
           "affine_width", "check_engine", "choose_engine", "compiled_runner", "fingerprint", "installed",
           "style_affine"]

MAX_RUNNERS = 12  # compiled graphs kept (a few frame sizes × kinds × models); the oldest goes first
_RUNNERS: OrderedDict[tuple, Runner] = OrderedDict()
_COMPILING: dict[tuple, Future] = {}  # keys being compiled now, each by the one thread that asked first
_LOCK = threading.Lock()  # guards the two tables only; never held while a graph compiles


def compiled_runner(net: torch.nn.Module, kind: str, shape: tuple[int, ...], choice: EngineChoice,
                    key: str | None = None, threads: int | None = None) -> Runner:
    """The runner of graph ``kind`` for ``net`` at ``shape`` on ``choice``'s engine and precision, compiled on
    first use and cached. ``key``: ``fingerprint(net)`` when the caller keeps it (hashing the weights costs a few
    ms); ``threads``: the engine's thread count (default: torch's). A graph compiles once per key, outside the
    lock: callers wanting the same key wait for that compile, every other key (a stream at another size) goes on."""
    key = key or fingerprint(net)
    spec = RunnerSpec(choice.engine, choice.precision, kind, tuple(int(s) for s in shape),
                      threads or torch.get_num_threads())
    entry = (key, spec)
    with _LOCK:
        runner = _RUNNERS.get(entry)
        if runner is not None:
            _RUNNERS.move_to_end(entry)
            return runner
        pending = _COMPILING.get(entry)
        mine = pending is None
        if mine:
            pending = _COMPILING[entry] = Future()
    if not mine:
        return pending.result()  # the first asker's runner, or its error
    try:
        runner = build_runner(net, spec, key)
    except BaseException as exc:
        with _LOCK:
            del _COMPILING[entry]
        pending.set_exception(exc)
        raise
    with _LOCK:
        _RUNNERS[entry] = runner
        while len(_RUNNERS) > MAX_RUNNERS:
            _RUNNERS.popitem(last=False)
        del _COMPILING[entry]
    pending.set_result(runner)
    return runner
