"""The page's lanes and the jobs running in them.

A lane is one Gradio concurrency group: a flood of one kind of work cannot fill the queue of another (Stylize
previews never wait behind a Gatys job). :data:`LANES` is the only definition of a lane: its name, what a visitor
calls its work, and which :class:`~.options.DemoOptions` fields set its workers, its waiting room, its caps per
session and per client, and its time budgets. :class:`Jobs` knows what runs for whom (a visitor's jobs end when
they leave) and runs the slow lane's jobs on one worker thread of our own at a lower CPU priority."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

from ...errors import MultistyleError
from .options import DemoOptions

T = TypeVar("T")
FAST, SLOW, LIVE, UI = "fast", "slow", "live", "ui"


@dataclass(frozen=True)
class Lane:
    """One lane: ``name`` (Gradio's concurrency id), the visitor's words for one job and for several, when to try
    again, and the option fields that set its limits."""

    name: str
    job: str
    jobs: str
    retry: str
    workers: str | int  # an option's name, or a fixed number
    waiting: str
    per_session: str
    per_client: str
    budgets: tuple[str, ...] = ()

    def limits(self, options: DemoOptions) -> dict[str, int]:
        """This lane's numbers under ``options``."""
        values = {k: getattr(self, k) for k in ("workers", "waiting", "per_session", "per_client")}
        return {k: int(getattr(options, v) if isinstance(v, str) else v) for k, v in values.items()}

    def events(self, options: DemoOptions) -> dict[str, object]:
        """The keyword arguments an event of this lane is registered with."""
        return {"concurrency_id": self.name, "concurrency_limit": self.limits(options)["workers"]}

    def count(self, n: int) -> str:
        return f"{n} {self.job if n == 1 else self.jobs}"


LANES: dict[str, Lane] = {lane.name: lane for lane in (
    Lane(FAST, "preview", "previews", "a few seconds", "fast_workers", "fast_waiting", "fast_per_session",
         "fast_per_client"),
    Lane(SLOW, "slow job (Gatys, refine, add-style or video)", "slow jobs (Gatys, refine, add-style or video)",
         "a minute", 1, "slow_waiting", "slow_per_session", "slow_per_client",
         ("gatys_seconds", "refine_seconds", "add_style_seconds", "video_seconds")),
    Lane(LIVE, "live stream", "live streams", "a minute", "live_visitors", "live_waiting", "live_per_session",
         "live_per_client", ("live_seconds",)),
    Lane(UI, "page update", "page updates", "a few seconds", "ui_workers", "ui_waiting", "ui_per_session",
         "ui_per_client"),
)}


def lane_of(concurrency_id: object) -> Lane:
    """The lane of a Gradio event (Gradio's own events, such as examples, count as page updates)."""
    return LANES.get(concurrency_id, LANES[UI])  # type: ignore[arg-type]


def queue_size(options: DemoOptions) -> int:
    """Gradio's own queue bound: room for every lane's waiting room and its newcomers (ours are checked first, with
    clearer messages)."""
    return 2 * sum(lane.limits(options)["waiting"] for lane in LANES.values()) + 8


class Cancelled(MultistyleError):
    """The job stopped because its visitor left (nobody is there to see the result)."""


class Ticket:
    """One running job of session ``key`` from ``client`` in ``lane``: :meth:`check` (called from its progress
    callback) raises :class:`Cancelled` once the visitor has left."""

    def __init__(self, key: str | None, lane: str, client: str | None = None) -> None:
        self.key, self.lane, self.client = key, lane, client
        self.cancelled = threading.Event()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("the visitor left")


SLOW_NICE = 10  # the slow worker's CPU priority (Linux nice): Stylize and Live frames go first when they contend


def _lower_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: a thread is a task with its own nice value)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), SLOW_NICE)


class Jobs:
    """The jobs running now, by session and client: ended when the visitor leaves, and counted by the queue's
    admission (a job Gradio cancelled keeps running until it stops, and still counts). Slow jobs run one at a time
    on one worker thread of our own at a lower CPU priority, however Gradio's queue is driven."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._running: list[Ticket] = []
        self._lock = threading.Lock()
        self._slow = ThreadPoolExecutor(1, thread_name_prefix="multistyle-slow", initializer=_lower_priority)

    @contextlib.contextmanager
    def run(self, key: str | None, lane: str, client: str | None = None) -> Iterator[Ticket]:
        """Count a job of session ``key`` (from ``client``) in ``lane`` while the block runs."""
        ticket = Ticket(key, lane, client)
        with self._lock:
            self._running.append(ticket)
        try:
            yield ticket
        finally:
            with self._lock:
                self._running.remove(ticket)

    def slow(self, key: str | None, work: Callable[[Ticket], T], client: str | None = None) -> T:
        """Run ``work(ticket)`` on the slow worker (after any slow job before it) and wait for its result; the
        caller's context (Gradio's progress tracking) goes with it."""
        import contextvars

        with self.run(key, SLOW, client) as ticket:
            def checked() -> T:
                ticket.check()  # the visitor may have left while an earlier slow job ran
                return work(ticket)

            return self._slow.submit(contextvars.copy_context().run, checked).result()

    def running(self, key: str | None, lane: str) -> int:
        """Jobs of session ``key`` running in ``lane``."""
        with self._lock:
            return sum(1 for t in self._running if t.key == key and t.lane == lane)

    def running_for(self, client: str | None, lane: str) -> int:
        """Jobs of ``client`` (all its sessions) running in ``lane``."""
        with self._lock:
            return sum(1 for t in self._running if client and t.client == client and t.lane == lane)

    def clients(self, lane: str) -> list[str]:
        """The clients whose jobs run in ``lane`` now (one entry per job, sorted)."""
        with self._lock:
            return sorted(t.client or "" for t in self._running if t.lane == lane)

    def cancel_all(self) -> None:
        with self._lock:
            tickets = list(self._running)
        for t in tickets:
            t.cancelled.set()

    def cancel(self, key: str | None) -> int:
        """End every job of the session ``key`` (at its next progress report); how many."""
        with self._lock:
            tickets = [t for t in self._running if key and t.key == key]
        for t in tickets:
            t.cancelled.set()
        return len(tickets)
