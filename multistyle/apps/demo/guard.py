"""The demo server's admission guards, each enforcing a limit of :class:`~.options.DemoOptions` whatever a client
sends:

* :class:`Admission` decides at ``/queue/join`` — before an event is queued, for public and private events alike —
  whether a client may add one more event to a lane: within its rate (:class:`~.clients.ClientRate`), its
  session's and its address's caps, and the lane's waiting room (full, it refuses the client over its share, never
  a newcomer); an admitted event takes its fair place in the lane (:func:`~.clients.fair_order`);
* :class:`BodyLimit` refuses any request body over the size cap (uploads, JSON with ``data:`` URLs, live frames)
  before it is read.

(No ``from __future__ import annotations``: see :mod:`.page`.)"""

import json

from ...errors import ImageError
from ...images import check_pixels
from .clients import ClientRate, client_of, fair_order
from .errors import log
from .host import DemoHost
from .lanes import Lane, lane_of
from .memory import trim_heap
from .options import MB, DemoOptions


def waiting(queue, lane: str) -> int:
    """Events waiting (not yet running) in a lane of Gradio's queue."""
    return len(_events(queue, lane)[0])


def _events(queue, lane: str):
    """(waiting, running) events of a lane in Gradio's queue."""
    waiting = list(getattr(queue.event_queue_per_concurrency_id.get(lane), "queue", []) or [])
    running = [e for job in queue.active_jobs if job for e in job if e.fn.concurrency_id == lane]
    return waiting, running


def event_client(event) -> str:
    return client_of(getattr(event, "request", None))


class Admission:
    """Wraps Gradio's ``Queue.push`` (what ``/queue/join`` and ``/call`` reach, by ``fn_index`` or API name) with
    the rate, the caps and the fair order; a refused join gets HTTP 400 whose detail is our one-sentence reason (the
    page shows it; on 503 it would show only "queue full")."""

    def __init__(self, options: DemoOptions, host: DemoHost) -> None:
        self.options, self.host = options, host
        self.rate = ClientRate(options)

    def install(self, queue) -> None:
        if getattr(queue.push, "_admission", False):
            return
        original = queue.push

        async def push(body, request, username):
            reason = self.refusal(queue, body, request)
            if reason:
                log.info("queue join refused: %s", reason)
                return False, reason, "error"  # HTTP 400 with our reason: the page shows it as it is
            outcome = await original(body=body, request=request, username=username)
            if outcome[0]:
                self.take_turn(queue, body)
            self.forget_finished(queue)
            return outcome

        push._admission = True
        queue.push = push

    def refusal(self, queue, body, request) -> str | None:
        """Why this join is refused (None: admitted)."""
        fn = queue.blocks.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is None:
            return None  # Gradio answers an unknown function itself
        lane, client = lane_of(fn.concurrency_id), client_of(request)
        return self.rate.refusal(client) or self._over_cap(queue, lane, body.session_hash, client) \
            or _oversized_inline(body.data, self.options.max_pixels)

    def _over_cap(self, queue, lane: Lane, session: str | None, client: str) -> str | None:
        """The session's cap, the client's cap, then the waiting room's share."""
        caps = lane.limits(self.options)
        waiting, running = _events(queue, lane.name)
        everyone = waiting + running
        by_session = max(sum(1 for e in everyone if e.session_hash == session),
                         self.host.jobs.running(session, lane.name))
        if session and by_session >= caps["per_session"]:
            return (f"You already have {lane.count(by_session)} queued or running in this page; try again when "
                    "it has finished.")
        by_client = max(sum(1 for e in everyone if event_client(e) == client),
                        self.host.jobs.running_for(client, lane.name))
        if by_client >= caps["per_client"]:
            return (f"Your address already has {lane.count(by_client)} queued or running (at most "
                    f"{caps['per_client']} at a time); try again when one has finished.")
        if len(waiting) >= caps["waiting"]:
            clients = {event_client(e) for e in waiting} | {client}
            share = caps["waiting"] / len(clients)
            if sum(1 for e in waiting if event_client(e) == client) >= share:
                return f"The page is busy: {lane.count(len(waiting))} are waiting; try again in {lane.retry}."
        return None

    def forget_finished(self, queue) -> None:
        """Drop Gradio's per-session queue entries (event ids, message queues) of sessions with nothing pending
        (Gradio empties them but keeps the key: one entry per session ever seen), once there are more than
        ``gradio_sessions``; then give the freed heap back to the system (:func:`.memory.trim_heap`)."""
        pending, messages = queue.pending_event_ids_session, queue.pending_messages_per_session
        if len(pending) > self.options.gradio_sessions:
            for key in [k for k, ids in pending.items() if not ids]:
                pending.pop(key, None)
                messages.pop(key, None)
        trim_heap()

    def take_turn(self, queue, body) -> None:
        """Put the lane's waiting events, the one just queued among them, in the order that serves clients in
        turn (round-robin across clients)."""
        fn = queue.blocks.fns.get(body.fn_index) if body.fn_index is not None else None
        lane_queue = queue.event_queue_per_concurrency_id.get(getattr(fn, "concurrency_id", None))
        if lane_queue is None or len(lane_queue.queue) < 2:
            return
        counts: dict[str, int] = {}
        for e in _events(queue, fn.concurrency_id)[1]:
            counts[event_client(e)] = counts.get(event_client(e), 0) + 1
        lane_queue.queue[:] = fair_order(lane_queue.queue, event_client, lambda c: counts.get(c, 0))


def _oversized_inline(data, max_pixels: int) -> str | None:
    """An inline image too big by its header never enters the queue."""
    for value in data or []:
        url = value.get("url") if isinstance(value, dict) else None
        if isinstance(url, str) and url.startswith("data:"):
            reason = oversized(url, max_pixels)
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
        mb = self.max_bytes / MB
        log.info("request to %s refused: body over %.0f MB", scope.get("path", "?"), mb)
        body = json.dumps({"detail": f"request too large: this page takes at most {mb:.0f} MB"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
