"""The demo server's guards, each enforcing a limit of :class:`~.demo_options.DemoOptions` whatever a client sends:

* :class:`Admission` decides at ``/queue/join`` — before an event is queued, for public and private events alike —
  whether a visitor may add one more event to a lane (per-visitor cap) and whether the lane has room;
* :class:`BodyLimit` refuses any request body over the size cap (uploads, JSON with ``data:`` URLs, live frames)
  before it is read;
* :func:`guarded` and :func:`guard_components` make every error a one-line message: ours reach the visitor, any
  other is logged on the server in one line and the visitor reads "something went wrong". No tracebacks.

(No ``from __future__ import annotations``: see :mod:`.demo`.)"""

import functools
import json
import logging
import sys

from ..errors import ImageError, MultistyleError
from ..images import check_pixels
from .demo_options import DemoOptions
from .demo_session import Cancelled, DemoHost

log = logging.getLogger("multistyle.demo")
SOMETHING_WRONG = "something went wrong on the server (it is logged there); try again, perhaps with a smaller image"

LANE_NAMES = {"fast": "Stylize preview", "slow": "slow job (Gatys, refine or add-style)", "live": "live stream",
              "ui": "page update"}


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


def waiting(queue, lane: str) -> int:
    """Events waiting (not yet running) in a lane of Gradio's queue."""
    return len(_events(queue, lane)[0])


def _events(queue, lane: str):
    """(waiting, running) events of a lane in Gradio's queue."""
    waiting = list(getattr(queue.event_queue_per_concurrency_id.get(lane), "queue", []) or [])
    running = [e for job in queue.active_jobs if job for e in job if e.fn.concurrency_id == lane]
    return waiting, running


class Admission:
    """Wraps Gradio's ``Queue.push`` (what ``/queue/join`` and ``/call`` reach, by ``fn_index`` or API name) with
    the per-visitor and per-lane caps; a refused join gets HTTP 400 whose detail is our one-line reason (the page
    shows it; on 503 it would show only "queue full")."""

    def __init__(self, options: DemoOptions, host: DemoHost) -> None:
        self.options, self.host = options, host

    def install(self, queue) -> None:
        if getattr(queue.push, "_admission", False):
            return
        original = queue.push

        async def push(body, request, username):
            reason = self.refusal(queue, body)
            if reason:
                log.info("queue join refused: %s", reason)
                return False, reason, "error"  # HTTP 400 with our reason: the page shows it as it is
            return await original(body=body, request=request, username=username)

        push._admission = True
        queue.push = push

    def refusal(self, queue, body) -> str | None:
        """Why this join is refused (None: admitted)."""
        fn = queue.blocks.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is None:
            return None  # Gradio answers an unknown function itself
        lane = fn.concurrency_id
        kind = lane if lane in LANE_NAMES else "ui"  # Gradio's own events (examples) count as page updates
        waiting, running = _events(queue, lane)
        mine = sum(1 for e in waiting + running if e.session_hash == body.session_hash)
        mine = max(mine, self.host.jobs.running(body.session_hash, lane))
        if body.session_hash and mine >= self.options.visitor_cap(kind):
            return (f"you already have a {LANE_NAMES[kind]} queued or running; wait for it to finish "
                    "(one at a time per visitor)")
        if len(waiting) >= self.options.lane_waiting(kind):
            return f"the page is busy: {len(waiting)} {LANE_NAMES[kind]}s are waiting; try again in a minute"
        for value in body.data or []:  # an inline image too big by its header never enters the queue
            url = value.get("url") if isinstance(value, dict) else None
            if isinstance(url, str) and url.startswith("data:"):
                reason = oversized(url, self.options.max_pixels)
                if reason:
                    return reason
        return None


def oversized(data_url: str, max_pixels: int) -> str | None:
    """Why a ``data:`` URL's image is refused by its header alone (None: fine, or not readable from the first
    64 KB — the full decode then checks it)."""
    import base64
    import binascii
    import io

    from PIL import Image, UnidentifiedImageError

    start = data_url.find(",") + 1
    try:
        head = base64.b64decode(data_url[start:start + 87_380], validate=False)
        with Image.open(io.BytesIO(head)) as img:
            w, h = img.size
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError, SyntaxError):
        return None
    try:
        check_pixels(w, h, "the image", max_pixels)
    except ImageError as exc:
        return str(exc)
    return None


class RequestTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is refused with HTTP 413, by its ``Content-Length``
    before anything is read, or once the bytes streamed in pass the cap."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(scope, send)
        seen, started = 0, False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise RequestTooLarge()
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except RequestTooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope, send) -> None:
        mb = self.max_bytes / (1024 * 1024)
        log.info("request to %s refused: body over %.0f MB", scope.get("path", "?"), mb)
        body = json.dumps({"detail": f"request too large: this page takes at most {mb:.0f} MB"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
