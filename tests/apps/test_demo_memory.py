"""multistyle.apps.demo.memory: freed heap pages go back to the system, at most once per interval."""

from __future__ import annotations

import sys

import pytest

from multistyle.apps.demo.memory import trim_heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_trim_heap_runs_once_per_interval():
    trim_heap(0.0)  # whatever ran before, this call starts the interval
    assert trim_heap(3600.0) is False  # within the interval: nothing done
    assert trim_heap(0.0) is True  # glibc's malloc_trim started
