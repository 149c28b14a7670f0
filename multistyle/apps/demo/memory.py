"""Give freed heap memory back to the system: :func:`trim_heap`, at most once every ``every_s`` seconds.

Sessions come and go by the thousand on a shared page; what they leave is freed, but glibc keeps the freed pages
in its heaps (one per thread), so the server's RSS climbs with the session count unless the heaps are trimmed.
Elsewhere than glibc (macOS, Windows, musl) this does nothing."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

_LOCK = threading.Lock()
_LAST = [0.0]
_LIBC: list = []


def _malloc_trim():
    """glibc's ``malloc_trim``, or None where there is none."""
    if not _LIBC:
        try:
            _LIBC.append(getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "malloc_trim", None))
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]


def trim_heap(every_s: float = 30.0) -> bool:
    """Return freed heap pages to the system if ``every_s`` seconds have passed since the last time → started.
    The trim runs in a thread of its own (on a large heap it takes tens of ms; the caller may be the event loop)."""
    now = time.monotonic()
    with _LOCK:
        if now - _LAST[0] < every_s:
            return False
        _LAST[0] = now
    trim = _malloc_trim()
    if trim is None:
        return False
    threading.Thread(target=trim, args=(0,), name="multistyle-trim-heap", daemon=True).start()
    return True
