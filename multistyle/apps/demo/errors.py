"""One-line errors: :func:`guarded` and :func:`guard_components` make every error of the page a one-line message —
ours reach the visitor, any other is logged on the server in one line and the visitor reads "something went
wrong". No tracebacks for anything a client can send.

(No ``from __future__ import annotations``: see :mod:`.page`.)"""

import functools
import inspect
import logging
import sys

from ...errors import MultistyleError
from .lanes import Cancelled

log = logging.getLogger("multistyle.demo")
SOMETHING_WRONG = "something went wrong on the server (it is logged there); try again, perhaps with a smaller image"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced after the server starts)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging() -> None:
    """One line per refused or failed request on stderr (``multistyle demo: ...``)."""
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("multistyle demo: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def one_line(text: object, limit: int = 300) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else type(text).__name__
    return line[:limit]


def visitor_error(message: str):
    """The error a visitor sees: one line, and Gradio prints no traceback for it."""
    import gradio as gr

    return gr.Error(one_line(message), print_exception=False)


def to_visitor(what: str, exc: BaseException, unexpected: str, level: int = logging.WARNING):
    """The one-line error a visitor sees for ``exc``, raised while doing ``what``, logged on the server in one
    line: ours (and Gradio's own checks) as they are, a job whose visitor left as "stopped", anything else as
    ``unexpected`` (its type and message go to the log at ``level`` only)."""
    import gradio as gr

    if isinstance(exc, Cancelled):
        log.info("%s stopped: the visitor left", what)
        return visitor_error("stopped: you left the page")
    if isinstance(exc, (gr.Error, MultistyleError)):
        message = exc.message if isinstance(exc, gr.Error) else str(exc)
        log.info("%s refused: %s", what, one_line(message))
        return visitor_error(message)
    log.log(level, "%s failed: %s: %s", what, type(exc).__name__, one_line(exc))
    return visitor_error(unexpected)


def guarded(what: str):
    """Decorate a handler: our errors reach the visitor as one line, anything else is logged (one line, with its
    type) and the visitor reads :data:`SOMETHING_WRONG`; a job whose visitor left ends quietly."""

    def wrap(handler):
        if inspect.isgeneratorfunction(handler):  # a handler that shows its steps: Gradio must still see a generator
            @functools.wraps(handler)
            def steps(*args, **kwargs):
                try:
                    yield from handler(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - a public page shows no internals
                    raise to_visitor(what, exc, SOMETHING_WRONG) from None

            return steps

        @functools.wraps(handler)
        def wrapper(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a public page shows no internals
                raise to_visitor(what, exc, SOMETHING_WRONG) from None

        return wrapper

    return wrap


def guard_components(blocks) -> None:
    """Make every component's input check (Gradio's own, e.g. a slider's range, or ours, e.g. an image's size)
    fail with one line and no traceback, like the handlers."""
    for block in list(blocks.blocks.values()):
        preprocess = getattr(block, "preprocess", None)
        if preprocess is None or getattr(preprocess, "_guarded", False):
            continue
        name = getattr(block, "label", None) or type(block).__name__

        def checked(payload, _pre=preprocess, _name=name):
            try:
                return _pre(payload)
            except Exception as exc:  # noqa: BLE001
                raise to_visitor(f"input {_name!r}", exc, f"{_name}: this value cannot be used "
                                 f"({type(exc).__name__})", logging.INFO) from None

        checked._guarded = True
        block.preprocess = checked
