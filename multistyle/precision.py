"""The one place that decides how this machine computes: bf16 autocast only where the hardware does bf16 natively,
and the torch thread count (``--threads`` / ``MULTISTYLE_THREADS``).

oneDNN *emulates* bf16 on any AVX-512 CPU without AVX512_BF16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is
true there), and the emulation is about 2.3× slower than fp32, so that flag is not asked. Native means: CUDA with
bf16, or a CPU with AVX512_BF16 or AMX tiles that neither ``ONEDNN_MAX_CPU_ISA`` (oneDNN's kernels) nor
``ATEN_CPU_CAPABILITY`` (ATen's vector kernels) caps below them — ``torch.cpu._is_avx512_bf16_supported()`` reads
CPUID and ignores both caps, so they are read here too. Where the CPU is native, :func:`measured_bf16` can also time
two evaluations of the caller's network in each precision and keep bf16 only if it is faster (cached per machine in
the user cache, so it is paid once).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .paths import atomic_write, cache_dir

# oneDNN's ISA names in increasing order (the values ONEDNN_MAX_CPU_ISA takes; DEFAULT/ALL = no cap)
ONEDNN_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
               "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX", "AVX512_CORE_AMX",
               "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2")
THREADS_ENV = "MULTISTYLE_THREADS"


@dataclass(frozen=True)
class PrecisionChoice:
    """Whether to run a network under bf16 autocast, and why (printed with ``-v``, kept in training records)."""

    bf16: bool
    reason: str

    @property
    def name(self) -> str:
        return "bf16" if self.bf16 else "fp32"


def onednn_isa_cap() -> str | None:
    """The ISA oneDNN is capped at (``ONEDNN_MAX_CPU_ISA``, or the older ``DNNL_MAX_CPU_ISA``), upper-case; None
    when uncapped."""
    value = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    return None if value in ("", "ALL", "DEFAULT") else value


def _cap_allows(cap: str | None, isa: str) -> bool:
    """Whether oneDNN capped at ``cap`` may use ``isa`` (an unknown cap name is taken as a cap below it)."""
    if cap is None:
        return True
    return cap in ONEDNN_ISAS and ONEDNN_ISAS.index(cap) >= ONEDNN_ISAS.index(isa)


def _cpu_has(probe: str) -> bool:
    fn = getattr(torch.cpu, probe, None)
    return bool(fn()) if fn is not None else False


def bf16_autocast_native(device: torch.device | str = "cpu") -> PrecisionChoice:
    """bf16 where ``device`` computes it natively (CUDA with bf16; a CPU with AVX512_BF16 or AMX, not capped below
    them), else fp32 — never emulated bf16."""
    device = torch.device(device)
    if device.type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return PrecisionChoice(ok, "CUDA device with bf16" if ok else "this CUDA device lacks bf16")
    if device.type != "cpu":
        return PrecisionChoice(False, f"fp32 on {device.type} (bf16 autocast only chosen on CPU and CUDA)")
    amx, avx512_bf16 = _cpu_has("_is_amx_tile_supported"), _cpu_has("_is_avx512_bf16_supported")
    if not (amx or avx512_bf16):
        isa = "AVX-512 without BF16" if _cpu_has("_is_avx512_supported") else "no AVX-512"
        return PrecisionChoice(False, f"CPU has {isa} and no AMX: bf16 would be emulated (slower than fp32)")
    cap = onednn_isa_cap()
    if not _cap_allows(cap, "AVX512_CORE_AMX" if amx and not avx512_bf16 else "AVX512_CORE_BF16"):
        return PrecisionChoice(False, f"ONEDNN_MAX_CPU_ISA={cap} caps oneDNN below its bf16 kernels")
    aten = torch.backends.cpu.get_cpu_capability().upper()
    if "AVX512" not in aten and "AMX" not in aten:
        return PrecisionChoice(False, f"ATen's CPU capability is {aten} (ATEN_CPU_CAPABILITY): bf16 ops emulated")
    return PrecisionChoice(True, "CPU computes bf16 natively (" + ("AMX" if amx else "AVX512_BF16") + ")")


def choose_precision(requested: str = "auto", device: torch.device | str = "cpu") -> PrecisionChoice:
    """``requested`` is ``auto`` (:func:`bf16_autocast_native`), ``fp32`` or ``bf16`` (as asked, even if emulated)."""
    if requested == "auto":
        return bf16_autocast_native(device)
    if requested not in ("fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, not {requested!r}")
    return PrecisionChoice(requested == "bf16", f"{requested} as asked (--precision {requested})")


def machine_key(what: str) -> str:
    """What a measured choice depends on: the CPU, its caps, torch, the thread count, and ``what`` was timed."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), cpu)
    except OSError:
        pass
    caps = ",".join(f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
                    if os.environ.get(k))
    return f"{cpu}|{caps}|torch {torch.__version__}|{torch.get_num_threads()} threads|{what}"


def measured_bf16(device: torch.device | str, evaluate: Callable[[bool], object], what: str,
                  repeat: int = 1) -> PrecisionChoice:
    """:func:`bf16_autocast_native`, then — only where that says bf16 on a CPU — ``evaluate(bf16)`` timed in both
    precisions (one untimed call each, then ``repeat`` timed, interleaved): bf16 only if it is faster. The outcome
    is cached in ``cache_dir()/precision.json`` under :func:`machine_key` (``what``: the network and size timed)."""
    native = bf16_autocast_native(device)
    if not native.bf16 or torch.device(device).type != "cpu":
        return native
    path, key = cache_dir() / "precision.json", machine_key(what)
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache.get(key), dict):
        times = {False: [], True: []}
        for i in range(repeat + 1):
            for bf16 in (False, True):
                start = time.perf_counter()
                evaluate(bf16)
                if i:
                    times[bf16].append(time.perf_counter() - start)
        cache[key] = {"fp32_ms": 1000 * min(times[False]), "bf16_ms": 1000 * min(times[True]),
                      "measured": time.strftime("%Y-%m-%d %H:%M")}
        try:
            atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(cache, indent=1)))
        except OSError:
            pass  # a read-only cache: measure again next time
    fp32, bf16 = cache[key]["fp32_ms"], cache[key]["bf16_ms"]
    faster = bf16 < fp32
    return PrecisionChoice(faster, f"{native.reason}; measured {what}: bf16 {bf16:.0f} ms vs fp32 {fp32:.0f} ms"
                           + ("" if faster else ", so fp32"))


def torch_threads(requested: int | None = None, default: int | None = None) -> int | None:
    """The torch thread count to use: ``requested`` (``--threads``), else ``$MULTISTYLE_THREADS``, else
    ``default``; None = leave torch's own (one per core)."""
    if requested:
        return int(requested)
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"{THREADS_ENV} must be a whole number ≥ 1, not {env!r}")
        return int(env)
    return default


def set_threads(requested: int | None = None, default: int | None = None) -> int:
    """Apply :func:`torch_threads` (when it names a count) and return the count torch now uses."""
    threads = torch_threads(requested, default)
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
