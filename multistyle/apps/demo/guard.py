"""The demo server's admission guards, each enforcing a limit of :class:`~.options.DemoOptions` whatever a client
sends:

* :class:`Admission` decides at ``/queue/join`` — before an event is queued, for public and private events alike —
  whether a client may add one more event to a lane: within its rate (:class:`~.clients.ClientRate`), its
  session's cap, and the lane's waiting room (full, it refuses the client holding the most, never a newcomer: a
  lighter client's join takes the heaviest one's newest waiting place); it also decides which waiting event a free
  worker starts (:func:`~.clients.fair_order`, :func:`~.clients.pick`: addresses in turn, a client's cap binding
  only while another address waits);
* :class:`BodyLimit` refuses any request body over the size cap (uploads, JSON with ``data:`` URLs, live frames)
  before it is read.

(No ``from __future__ import annotations``: see :mod:`.page`.)"""

import json
from collections import Counter

from ...errors import ImageError
from ...images import check_pixels
from .clients import ClientRate, Turns, client_of, fair_order, heaviest, pick
from .errors import log
from .host import DemoHost
from .lanes import LANES, Lane, lane_of
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


def event_session(event):
    return getattr(event, "session_hash", None) or id(event)


class Admission:
    """Wraps Gradio's ``Queue.push`` (what ``/queue/join`` and ``/call`` reach, by ``fn_index`` or API name) with
    the rate, the session cap and the waiting room, and ``Queue.get_events`` (which waiting event a free worker
    starts) with the fair order; a refused join gets HTTP 400 whose detail is our one-sentence reason (the page
    shows it; on 503 it would show only "queue full")."""

    def __init__(self, options: DemoOptions, host: DemoHost) -> None:
        self.options, self.host = options, host
        self.rate = ClientRate(options)
        self.turns: dict[str, Turns] = {}  # per lane: who was served when

    def install(self, queue) -> None:
        if getattr(queue.push, "_admission", False):
            return
        original, get_events = queue.push, queue.get_events

        async def push(body, request, username):
            reason, victim = self.decide(queue, body, request)
            if reason:
                log.info("queue join refused: %s", reason)
                return False, reason, "error"  # HTTP 400 with our reason: the page shows it as it is
            outcome = await original(body=body, request=request, username=username)
            if outcome[0] and victim:
                self.make_room(queue, *victim)
            self.forget_finished(queue)
            return outcome

        def fair_get_events():
            held = self.hold_or_order(queue)
            try:
                picked = get_events()
            finally:
                for lane_queue, workers in held:
                    lane_queue.concurrency_limit = workers
            for event in (picked or ([], None, None))[0]:  # whose turn it was: they wait behind the others next
                self.turns.setdefault(event.fn.concurrency_id, Turns()).started(event_client(event),
                                                                                 event_session(event))
            return picked

        push._admission = True
        queue.push, queue.get_events = push, fair_get_events

    def decide(self, queue, body, request) -> tuple[str | None, tuple | None]:
        """(why this join is refused, None) or (None, (lane, client whose newest waiting event makes room))."""
        fn = queue.blocks.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is None:
            return None, None  # Gradio answers an unknown function itself
        lane, client = lane_of(fn.concurrency_id), client_of(request)
        reason = self.rate.refusal(client) or self._over_session_cap(queue, lane, body.session_hash) \
            or _oversized_inline(body.data, self.options.max_pixels)
        return (reason, None) if reason else self._room(queue, lane, client)

    def _running(self, queue, lane: str, running: list) -> Counter:
        """Running events per client in a lane (a job Gradio cancelled still counts until it stops)."""
        counts = Counter(event_client(e) for e in running)
        for client in self.host.jobs.clients(lane):
            counts[client] = max(counts[client], self.host.jobs.running_for(client, lane))
        return counts

    def _over_session_cap(self, queue, lane: Lane, session: str | None) -> str | None:
        """A session (one page) holds at most its lane's ``per_session`` events."""
        waiting, running = _events(queue, lane.name)
        by_session = max(sum(1 for e in waiting + running if e.session_hash == session),
                         self.host.jobs.running(session, lane.name))
        if session and by_session >= lane.limits(self.options)["per_session"]:
            return (f"You already have {lane.count(by_session)} queued or running in this page; try again when "
                    "it has finished.")
        return None

    def _room(self, queue, lane: Lane, client: str) -> tuple[str | None, tuple | None]:
        """The waiting room (plus any idle worker) has a place; full, the client holding the most gives one up:
        the joiner itself when it holds as much as anyone waiting (refused), else that client's newest event."""
        caps = lane.limits(self.options)
        waiting, running = _events(queue, lane.name)
        if len(waiting) < caps["waiting"] + max(0, caps["workers"] - len(running)):
            return None, None
        holding = self._running(queue, lane.name, running) + Counter(event_client(e) for e in waiting)
        victim = heaviest(holding, {event_client(e) for e in waiting}, client)
        if victim is None:
            return self.busy(lane, len(waiting)), None
        return None, (lane, victim)

    @staticmethod
    def busy(lane: Lane, n: int) -> str:
        return (f"The page is busy: {lane.count(n)} are waiting and your address holds the most; try again in "
                f"{lane.retry}.")

    def make_room(self, queue, lane: Lane, victim: str) -> None:
        """Drop ``victim``'s newest waiting event of ``lane`` with the busy sentence (Gradio's own cancel path)."""
        from gradio.exceptions import Error
        from gradio.server_messages import ProcessCompletedMessage
        from gradio.utils import error_payload

        lane_queue = queue.event_queue_per_concurrency_id.get(lane.name)
        theirs = [e for e in getattr(lane_queue, "queue", []) if event_client(e) == victim]
        if not theirs:
            return
        event = theirs[-1]
        lane_queue.queue.remove(event)
        queue.event_ids_to_events.pop(event._id, None)
        reason = self.busy(lane, len(lane_queue.queue))
        log.info("queued event dropped to make room: %s", reason)
        payload = error_payload(Error(reason, print_exception=False), False)
        queue.send_message(event, ProcessCompletedMessage(output=payload, title="Error", success=False))

    def hold_or_order(self, queue) -> list:
        """Before Gradio picks the next events: each lane's waiting events in fair order with the one
        :func:`~.clients.pick` chooses first; a lane whose free worker is kept for a newcomer is held (its limit
        set to what runs, for this pick only) → [(lane queue, its real limit)]."""
        held = []
        for lane_id, lane_queue in queue.event_queue_per_concurrency_id.items():
            workers = lane_queue.concurrency_limit
            if lane_id not in LANES or len(lane_queue.queue) == 0 or workers is None \
                    or lane_queue.current_concurrency >= workers:
                continue
            caps = LANES[lane_id].limits(self.options)
            running_events = _events(queue, lane_id)[1]
            running = self._running(queue, lane_id, running_events)
            sessions = Counter(event_session(e) for e in running_events)
            order = fair_order(lane_queue.queue, event_client, running.__getitem__, event_session,
                               sessions.__getitem__, self.turns.get(lane_id, Turns()))
            chosen = pick(order, event_client, running, workers, lane_queue.current_concurrency,
                          caps["per_client"])
            if chosen is None:
                held.append((lane_queue, workers))
                lane_queue.concurrency_limit = lane_queue.current_concurrency
            else:
                order.insert(0, order.pop(chosen))
            lane_queue.queue[:] = order
        return held

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
