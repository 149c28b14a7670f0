"""A roomy alternate signal stack for a thread, so Ctrl-C cannot crash a process that ran AMX code.

CPython installs its signal handlers with ``SA_ONSTACK``: once a library has given the thread a small alternate
signal stack (OpenVINO's ``compile_model`` sets a 20 KB one on the calling thread, replacing any there), every
Ctrl-C (SIGINT) or SIGTERM runs on it. On a CPU with AMX, a thread that has used the tile
registers needs a signal frame of ~11 KB (the XSAVE area with 8 KB of tile data); when that frame does not fit
the alternate stack, the kernel cannot deliver the signal and kills the process with SIGSEGV (``si_code``
SI_KERNEL). Seen as ``multistyle demo`` dying with exit -11 on Ctrl-C after OpenVINO's bf16 (AMX) engine had run
in the main thread, leaving its temp folder behind (2026-12-07, a 2-core Xeon with AMX). The OpenVINO runner
calls :func:`ensure_roomy_signal_stack` right after compiling."""

from __future__ import annotations

import ctypes
import sys

SIZE = 1 << 20  # bytes: far above any signal frame (AMX: ~11 KB)
_kept: list[ctypes.Array] = []  # the stack's memory lives as long as the process


class _Stack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def ensure_roomy_signal_stack(size: int = SIZE) -> bool:
    """Give the calling thread an alternate signal stack of ``size`` bytes unless it has one at least that big
    (Linux; elsewhere nothing). Returns whether the thread now has one that big."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        current = _Stack()
        if libc.sigaltstack(None, ctypes.byref(current)) != 0:
            return False
        if current.ss_sp and current.ss_size >= size:
            return True
        memory = ctypes.create_string_buffer(size)
        stack = _Stack(ctypes.cast(memory, ctypes.c_void_p), 0, size)
        if libc.sigaltstack(ctypes.byref(stack), None) != 0:
            return False
        _kept.append(memory)
        return True
    except (OSError, AttributeError):
        return False
