"""multistyle.signal_stack: the main thread gets (and keeps) an alternate signal stack roomy enough for AMX frames."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from multistyle.signal_stack import SIZE, _Stack, ensure_roomy_signal_stack


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack is only set on Linux")
def test_a_small_alternate_stack_is_replaced_and_a_roomy_one_kept():
    code = """
import ctypes, signal
from multistyle.signal_stack import SIZE, _Stack, ensure_roomy_signal_stack
libc = ctypes.CDLL(None)
small = ctypes.create_string_buffer(20144)  # the size a library had set in the demo server
assert libc.sigaltstack(ctypes.byref(_Stack(ctypes.cast(small, ctypes.c_void_p), 0, 20144)), None) == 0
assert ensure_roomy_signal_stack() and ensure_roomy_signal_stack()
now = _Stack(); libc.sigaltstack(None, ctypes.byref(now))
assert now.ss_size >= SIZE
signal.raise_signal(signal.SIGINT)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "KeyboardInterrupt" in result.stderr and result.returncode in (1, -2), result.stderr[-2000:]  # not -11


def test_this_process_gets_a_roomy_one():
    libc = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
    assert ensure_roomy_signal_stack() == bool(libc)
    if libc:
        now = _Stack()
        libc.sigaltstack(None, ctypes.byref(now))
        assert now.ss_size >= SIZE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack is only set on Linux")
def test_an_openvino_runner_leaves_its_thread_a_roomy_stack():
    """OpenVINO's compile_model gives the calling thread a 20 KB alternate stack; the runner puts a roomy one back."""
    from multistyle.engine.runners import OpenVinoRunner, RunnerSpec
    from multistyle.modelfile import get_model

    runner = OpenVinoRunner(get_model(None).net, RunnerSpec("openvino", "fp32", "image", (1, 3, 32, 32), 1))
    now = _Stack()
    ctypes.CDLL(None).sigaltstack(None, ctypes.byref(now))
    assert now.ss_size >= SIZE and runner.compiled is not None
