"""Which engine and precision run the network on this machine: ``--engine`` one of :data:`ENGINES` as asked,
or ``auto``: every installed candidate timed once on a real photo at 640×480 against torch fp32, the fastest whose
picture stays within :data:`MAX_MEAN_DIFF` of it, kept in ``cache_dir()/engine.json`` with its reason (``-v``).
OpenVINO int8 is a candidate only for a network whose int8 file's per-style perceptual check covers every style it
holds (:mod:`multistyle.engine.int8`); its limit is that check's pixel difference × ``DIFF_SLACK``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..paths import atomic_write, cache_dir
from ..precision import bf16_autocast_native, machine_key
from .graph import style_affine
from .int8 import DIFF_SLACK, int8_record
from .runners import (ENGINES, OPTIONAL, PRECISIONS, EngineError, RunnerSpec, build_runner, engine_module,
                      engine_version, installed)

CHOICES = ("auto", *ENGINES)
MAX_MEAN_DIFF = 0.005  # mean |engine - torch fp32| on 0..1 a candidate may differ by (bf16 measures ~0.0023)
PROBE_SHAPE = (1, 3, 480, 640)  # the webcam's and a phone photo's size
PROBE_PHOTO = Path(__file__).resolve().parent.parent / "assets" / "content" / "kodak_parrots.jpg"
PROBE_ROUNDS = 5  # timed calls per candidate, after two untimed; the fastest counts


@dataclass(frozen=True)
class EngineChoice:
    """The engine and precision a network runs with, and why (printed with ``-v``)."""

    engine: str
    precision: str
    reason: str

    @property
    def name(self) -> str:
        return f"{self.engine} {self.precision}"


def check_engine(requested: str | EngineChoice) -> str | EngineChoice:
    """``requested`` if it is one of :data:`CHOICES` and, when an optional engine is named, installed (or an
    already resolved :class:`EngineChoice`); else :class:`EngineError` (one line: the CLI exits 2)."""
    if isinstance(requested, EngineChoice):
        return requested
    if requested not in CHOICES:
        raise EngineError(f"engine must be one of {', '.join(CHOICES)}, not {requested!r}")
    if requested in OPTIONAL:
        engine_module(requested)
    return requested


def choose_engine(requested: str | EngineChoice = "auto", device: torch.device | str = "cpu",
                  net: torch.nn.Module | None = None) -> EngineChoice:
    """The engine for ``net`` on ``device``: as ``requested``, or for ``auto`` the measured choice (CPU only; CUDA
    and other devices run torch). A named optional engine takes bf16 where the CPU computes it natively. An
    :class:`EngineChoice` (one resolved before, e.g. ``auto``'s measured one) is kept as it is."""
    if isinstance(check_engine(requested), EngineChoice):
        if requested.precision == "int8" and (net is None or int8_record(net) is None):
            if net is None:
                raise ValueError("an int8 choice needs the network, to check that its styles were checked")
            return measured_choice(net)  # e.g. auto's choice for a model with a style added since: no int8
        return requested
    device = torch.device(device)
    if requested == "torch":
        return EngineChoice("torch", "fp32", "torch eager, as asked (--engine torch)")
    if device.type != "cpu":
        if requested != "auto":
            raise EngineError(f"--engine {requested} runs on the CPU; the network is on {device} (use --device cpu)")
        return EngineChoice("torch", "fp32", f"the network runs on {device}: torch")
    if requested != "auto":
        native = bf16_autocast_native("cpu")
        precision = "bf16" if "bf16" in PRECISIONS[requested] and native.bf16 else "fp32"
        return EngineChoice(requested, precision, f"{requested} as asked (--engine {requested}); {precision}: "
                            f"{native.reason}")
    if net is None:
        raise ValueError("choose_engine('auto') needs the network to measure")
    return measured_choice(net)


def candidates(net: torch.nn.Module | None = None) -> list[tuple[str, str]]:
    """(engine, precision) pairs to time here: torch fp32, each installed optional engine in fp32, OpenVINO
    bf16 only where the CPU computes bf16 natively (:func:`multistyle.precision.bf16_autocast_native`), and OpenVINO
    int8 only for a ``net`` whose checked int8 file covers all its styles (:func:`multistyle.engine.int8.int8_record`)."""
    bf16 = bf16_autocast_native("cpu").bf16
    int8 = net is not None and int8_record(net) is not None
    allowed = {"fp32": True, "bf16": bf16, "int8": int8}
    return [(engine, precision) for engine in ENGINES if installed(engine)
            for precision in PRECISIONS[engine] if allowed[precision]]


def _probe_photo() -> np.ndarray:
    """A packaged photo at :data:`PROBE_SHAPE`, float32 NCHW in 0..1."""
    import cv2

    rgb = cv2.cvtColor(cv2.imread(str(PROBE_PHOTO)), cv2.COLOR_BGR2RGB)
    h, w = PROBE_SHAPE[2:]
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255


def measure(net: torch.nn.Module, pairs: list[tuple[str, str]]) -> dict:
    """Milliseconds (best of :data:`PROBE_ROUNDS`) and mean difference from torch fp32 of each
    (engine, precision) on the probe photo with style 0; a pair that fails to compile is left out. ``limit``:
    each pair's allowed difference (:data:`MAX_MEAN_DIFF`; int8: its check's largest × ``DIFF_SLACK``)."""
    photo = _probe_photo()
    weights = torch.zeros(1, net.norms()[-1].gamma.shape[0])
    weights[0, 0] = 1
    affine = style_affine(net, weights)
    threads = torch.get_num_threads()
    runners = {}
    for engine, precision in pairs:
        try:
            runners[f"{engine} {precision}"] = build_runner(net, RunnerSpec(engine, precision, "image", PROBE_SHAPE,
                                                                          threads))
        except EngineError:
            continue
    outputs, times = {}, {}
    for name, run in runners.items():  # one block each: engines' idle thread pools spin for a while after a call
        time.sleep(0.2)
        outputs[name] = run(photo, affine)
        run(photo, affine)  # untimed: first-call set-up
        times[name] = []
        for _ in range(PROBE_ROUNDS):
            start = time.perf_counter()
            run(photo, affine)
            times[name].append(1000 * (time.perf_counter() - start))
    reference = outputs["torch fp32"]
    found = int8_record(net)
    int8_limit = DIFF_SLACK * found[1]["check"]["max_diff"] if found else 0.0
    return {"ms": {n: round(min(t), 2) for n, t in times.items()},
            "mean_diff": {n: round(float(np.abs(o - reference).mean()), 5) for n, o in outputs.items()},
            "limit": {n: round(int8_limit, 5) if n.endswith("int8") else MAX_MEAN_DIFF for n in outputs},
            "measured": time.strftime("%Y-%m-%d %H:%M")}


def pick(record: dict) -> tuple[str, str]:
    """The fastest measured (engine, precision) within its limit of torch fp32 (:func:`measure`)."""
    limits = record.get("limit", {})
    ok = [n for n in record["ms"] if record["mean_diff"][n] <= limits.get(n, MAX_MEAN_DIFF)]
    engine, precision = min(ok, key=lambda n: record["ms"][n]).split()
    return engine, precision


def explain(record: dict, chosen: tuple[str, str]) -> str:
    """One line: every candidate's time and difference, and which was chosen."""
    h, w = PROBE_SHAPE[2:]
    parts = [f"{n} {ms:.1f} ms (diff {record['mean_diff'][n]:.4f})"
             for n, ms in sorted(record["ms"].items(), key=lambda kv: kv[1])]
    limit = record.get("limit", {}).get(" ".join(chosen), MAX_MEAN_DIFF)
    why = " (its per-style perceptual check passed)" if chosen[1] == "int8" else ""
    return (f"measured {record['measured']} at {w}x{h}: " + ", ".join(parts)
            + f"; {' '.join(chosen)} is the fastest within {limit} of torch fp32{why}")


def _arch(net: torch.nn.Module) -> str:
    params = getattr(net, "arch_params", dict)()
    return f"{type(net).__name__} {json.dumps(params, sort_keys=True)}"


def _read(path: Path) -> dict:
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def cached_record(path: Path, key: str, valid: Callable[[object], bool], compute: Callable[[], dict]) -> dict:
    """``path``'s JSON entry ``key`` if ``valid``, else ``compute()`` stored there: the read-modify-write holds
    ``PATH.lock`` (a :class:`filelock.FileLock`, so processes sharing the cache keep each other's entries and
    measure once) and writes atomically. A cache that cannot be written: computed, not stored."""
    from filelock import FileLock

    record = _read(path).get(key)
    if valid(record):
        return record
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock")
        lock.acquire()
    except OSError:
        return compute()  # a read-only cache: measure again next time
    try:
        cache = _read(path)  # as it is now, under the lock: another process may have added to it
        record = cache.get(key)
        if not valid(record):
            record = cache[key] = compute()
            with contextlib.suppress(OSError):
                atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(cache, indent=1)))
        return record
    finally:
        lock.release()


def measured_choice(net: torch.nn.Module) -> EngineChoice:
    """The ``auto`` choice for ``net``'s architecture on this machine: from ``cache_dir()/engine.json`` (keyed by
    :func:`multistyle.precision.machine_key`: CPU, ISA caps, torch, threads; plus the installed engines'
    versions), else measured now (a few seconds, once) and written there (:func:`cached_record`)."""
    pairs = candidates(net)
    names = {f"{e} {p}" for e, p in pairs}
    versions = ", ".join(engine_version(e) for e in OPTIONAL if installed(e))
    found = int8_record(net)
    int8 = f" int8 {hashlib.sha1(json.dumps(found[1], sort_keys=True).encode()).hexdigest()[:10]}" if found else ""
    key = machine_key(f"engine {_arch(net)} [{versions or 'torch only'}]{int8}")

    def valid(record: object) -> bool:
        return (isinstance(record, dict) and isinstance(record.get("ms"), dict) and set(record["ms"]) <= names
                and "torch fp32" in record["ms"])

    record = cached_record(cache_dir() / "engine.json", key, valid, lambda: measure(net, pairs))
    chosen = pick(record)
    return EngineChoice(*chosen, explain(record, chosen))
