"""The one place that decides how this machine computes: bf16 autocast only where the hardware does bf16 natively,
and the torch thread count (``--threads`` / ``MULTISTYLE_THREADS``).

oneDNN *emulates* bf16 on any AVX-512 CPU without AVX512_BF16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is
true there), and the emulation is about 2.3× slower than fp32, so that flag is not asked. Native means: CUDA with
bf16, or a CPU with AVX512_BF16 or AMX tiles that neither ``ONEDNN_MAX_CPU_ISA`` (oneDNN's kernels) nor
``ATEN_CPU_CAPABILITY`` (ATen's vector kernels) caps below them — ``torch.cpu._is_avx512_bf16_supported()`` reads
CPUID and ignores both caps, so they are read here too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

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
