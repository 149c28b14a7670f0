"""The demo page's state, owned by us rather than by Gradio: :class:`DemoHost` (one per server: the host's model,
the options, the cached Gatys loss network, the sessions, the jobs running), :class:`SessionRegistry` (the visitors
who hold something, LRU + TTL, each released by us: leaving, expiry and eviction all free memory and files),
:class:`Jobs` (what runs for whom, so a visitor's jobs end when they leave) and :class:`SessionFolders` (the
server's one temp folder for download files: swept at start, removed at exit).

A visitor's styles live only in their session unless the host opted in with ``multistyle demo --save-styles``."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

from ..errors import MultistyleError
from .demo_options import SLOW, DemoOptions

if TYPE_CHECKING:  # imported where used: the CLI's option parser imports this module's neighbours
    import numpy as np

    from ..modelfile import ModelFile
    from ..stylizer import Stylizer

MAX_ADD_STEPS = 1000  # the steps slider's top (Gradio refuses larger values, from the API too); fast stops at 25 s
FOLDER_PREFIX = "multistyle-demo-"  # + the server's pid: the server's one temp folder
LEGACY_PREFIX = "multistyle-session-"  # what earlier versions left behind
T = TypeVar("T")


class Cancelled(MultistyleError):
    """The job stopped because its visitor left (nobody is there to see the result)."""


class ServerBusy(MultistyleError):
    """A limit of the shared page: try again later."""


class SessionFolders:
    """The server's temp folder (``multistyle-demo-<pid>-*``) that holds every session's download file. Folders of
    servers that are no longer running are removed at start; this one at exit (``atexit``, also after Ctrl-C) and
    by :meth:`close`."""

    def __init__(self, parent: str | None = None) -> None:
        self.parent = Path(parent or tempfile.gettempdir())
        self.swept = sweep_stale_folders(self.parent)
        self.root = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=self.parent))
        atexit.register(self.close)

    def new(self) -> Path:
        """A fresh folder for one session's files (inside the server's folder)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="session-", dir=self.root))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_folders(parent: Path, legacy_age: float = 3600.0) -> int:
    """Remove the temp folders of demo servers that are gone (their pid is not running), and those of earlier
    versions not touched for ``legacy_age`` seconds; returns how many were removed."""
    removed = 0
    for entry in parent.glob(f"{FOLDER_PREFIX}*"):
        match = re.match(rf"{FOLDER_PREFIX}(\d+)-", entry.name)
        if entry.is_dir() and match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    for entry in parent.glob(f"{LEGACY_PREFIX}*"):
        with contextlib.suppress(OSError):
            if entry.is_dir() and time.time() - entry.stat().st_mtime > legacy_age:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


class VisitorSession:
    """One visitor's state: their extended model (None: the host's), their live stream and their download file.
    Stored in the :class:`SessionRegistry` only once it holds something; :meth:`release` frees it for good."""

    def __init__(self, folders: SessionFolders | None = None) -> None:
        self.model: ModelFile | None = None
        self._stylizer: Stylizer | None = None
        self.added: list[str] = []
        self.live = None  # a multistyle.apps.live.LiveStream once the visitor streams
        self.folder: Path | None = None  # where the downloadable model file is
        self.folders = folders
        self.closed = False
        self.last_used = time.monotonic()

    def stylizer(self, host: DemoHost) -> Stylizer:
        """The network this visitor's requests use: their own model's, else the host's."""
        if self.model is None:
            return host.stylizer()
        if self._stylizer is None:
            from ..stylizer import Stylizer

            self._stylizer = Stylizer(self.model, host.options.device)
        return self._stylizer

    def names(self, host: DemoHost) -> list[str]:
        return self.stylizer(host).names

    @property
    def model_file(self) -> Path | None:
        """This visitor's extended model file (what their download button offers), once they added a style."""
        return self.folder / "multistyle_model.safetensors" if self.folder else None

    def adopt(self, model: ModelFile) -> Path:
        """Use ``model`` from now on and write it where only this visitor's download button points; its path."""
        from ..modelfile import save_model

        if self.closed:  # the visitor left while the style was learned: keep nothing
            raise Cancelled("the visitor left")
        self.model, self._stylizer = model, None
        if self.folder is None:
            self.folder = self.folders.new() if self.folders else Path(tempfile.mkdtemp(prefix=LEGACY_PREFIX))
        return save_model(model, self.model_file)

    def holds(self) -> bool:
        return self.model is not None or self.live is not None

    def release(self) -> None:
        """Drop the download file, the added styles and the live state, for good (idempotent)."""
        self.closed = True
        folder, self.folder = self.folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        self.model = self._stylizer = self.live = None


def gallery(stylizer: Stylizer) -> list[tuple[np.ndarray, str]]:
    """(thumbnail, "i: name") for every style of a stylizer's model."""
    import numpy as np

    return [(s.thumbnail.numpy() if s.thumbnail is not None else np.zeros((8, 8, 3), np.uint8), f"{i}: {s.name}")
            for i, s in enumerate(stylizer.model.styles)]


class SessionRegistry:
    """The sessions that hold something, by Gradio session hash, least recently used first. We release them
    ourselves: when the visitor leaves, after ``session_ttl`` idle seconds, or evicted to make room — but only a
    session idle for ``session_protect`` seconds is evicted; when none is, a newcomer is refused instead."""

    def __init__(self, options: DemoOptions, folders: SessionFolders) -> None:
        self.options, self.folders = options, folders
        self._sessions: OrderedDict[str, VisitorSession] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str | None) -> VisitorSession | None:
        """The visitor's session if it holds something (and mark it used), else None (costs nothing)."""
        self.sweep()
        with self._lock:
            session = self._sessions.get(key) if key else None
            if session is not None:
                session.last_used = time.monotonic()
                self._sessions.move_to_end(key)
            return session

    def open(self, key: str | None) -> VisitorSession:
        """The visitor's session, created if needed (what adding a style or streaming needs)."""
        if not key:
            raise MultistyleError("this request has no session; reload the page")
        session = self.get(key)
        if session is not None:
            return session
        evicted = None
        with self._lock:
            if len(self._sessions) >= self.options.max_sessions:
                oldest_key, oldest = next(iter(self._sessions.items()))
                if time.monotonic() - oldest.last_used < self.options.session_protect:
                    raise ServerBusy(f"this page is serving {len(self._sessions)} visitors, its most; try again in "
                                     "a few minutes")
                evicted = self._sessions.pop(oldest_key)
            session = self._sessions[key] = VisitorSession(self.folders)
        if evicted is not None:
            evicted.release()
        return session

    def release(self, key: str | None) -> None:
        """The visitor left: free their session now."""
        with self._lock:
            session = self._sessions.pop(key, None) if key else None
        if session is not None:
            session.release()

    def sweep(self) -> int:
        """Release sessions idle longer than ``session_ttl``; how many."""
        now, expired = time.monotonic(), []
        with self._lock:
            while self._sessions:
                key, session = next(iter(self._sessions.items()))
                if now - session.last_used <= self.options.session_ttl:
                    break
                expired.append(self._sessions.pop(key))
        for session in expired:
            session.release()
        return len(expired)

    def release_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), OrderedDict()
        for session in sessions:
            session.release()

    def __len__(self) -> int:
        return len(self._sessions)

    def values(self) -> list[VisitorSession]:
        with self._lock:
            return list(self._sessions.values())


class Ticket:
    """One running job: :meth:`check` (called from its progress callback) raises :class:`Cancelled` once the
    visitor has left."""

    def __init__(self, key: str | None, lane: str) -> None:
        self.key, self.lane = key, lane
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
    """The jobs running now, by visitor: ended when the visitor leaves, and counted by the queue's admission (a job
    Gradio cancelled keeps running until it stops, and still counts as that visitor's). Slow jobs run one at a time
    on one worker thread of our own at a lower CPU priority, however Gradio's queue is driven."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._running: list[Ticket] = []
        self._lock = threading.Lock()
        self._slow = ThreadPoolExecutor(1, thread_name_prefix="multistyle-slow", initializer=_lower_priority)

    @contextlib.contextmanager
    def run(self, key: str | None, lane: str) -> Iterator[Ticket]:
        """Count a job of visitor ``key`` in ``lane`` while the block runs."""
        ticket = Ticket(key, lane)
        with self._lock:
            self._running.append(ticket)
        try:
            yield ticket
        finally:
            with self._lock:
                self._running.remove(ticket)

    def slow(self, key: str | None, work: Callable[[Ticket], T], lane: str = SLOW) -> T:
        """Run ``work(ticket)`` on the slow worker (after any slow job before it) and wait for its result; the
        caller's context (Gradio's progress tracking) goes with it."""
        import contextvars

        with self.run(key, lane) as ticket:
            def checked() -> T:
                ticket.check()  # the visitor may have left while an earlier slow job ran
                return work(ticket)

            return self._slow.submit(contextvars.copy_context().run, checked).result()

    def running(self, key: str | None, lane: str) -> int:
        with self._lock:
            return sum(1 for t in self._running if t.key == key and t.lane == lane)

    def cancel_all(self) -> None:
        with self._lock:
            tickets = list(self._running)
        for t in tickets:
            t.cancelled.set()

    def cancel(self, key: str | None) -> int:
        """End every job of the visitor ``key`` (at its next progress report); how many."""
        with self._lock:
            tickets = [t for t in self._running if key and t.key == key]
        for t in tickets:
            t.cancelled.set()
        return len(tickets)


class DemoHost:
    """Per-server state: the host's model, the options, the Gatys loss network, the sessions and the jobs."""

    def __init__(self, options: DemoOptions, temp_parent: str | None = None) -> None:
        from ..modelfile import user_model_path

        self.options = options
        self.model = options.model  # switches to the user model file after a --save-styles add
        self.base_model = options.model  # what a visitor's own download extends (never other visitors' styles)
        self.user_model = options.user_model or user_model_path()
        self.folders = SessionFolders(temp_parent)
        self.sessions = SessionRegistry(options, self.folders)
        self.jobs = Jobs()
        self.saved = 0  # styles this run added to the host's file (--save-styles)
        self.waiting: Callable[[str], int] = lambda lane: 0  # events waiting in a lane (set by demo.build_app)
        self._gatys_loss = None
        self._gatys_lock = threading.Lock()

    def stylizer(self) -> Stylizer:
        """The host model's cached Stylizer (what every visitor starts with)."""
        from ..stylizer import get_stylizer

        return get_stylizer(self.model, self.options.device)

    def visitor_stylizer(self, key: str | None) -> Stylizer:
        session = self.sessions.get(key)
        return session.stylizer(self) if session is not None else self.stylizer()

    def gatys_loss(self):
        """The Gatys tab's VGG19 loss network, loaded on first use and kept for every later request."""
        with self._gatys_lock:
            if self._gatys_loss is None:
                from ..loss import PerceptualLoss
                from ..paths import pick_device

                self._gatys_loss = PerceptualLoss().to(pick_device(self.options.device))
            return self._gatys_loss

    def leave(self, key: str | None) -> None:
        """The visitor left (``demo.unload``): end their jobs and free their session now."""
        self.jobs.cancel(key)
        self.sessions.release(key)

    def holding(self) -> int:
        """How many sessions hold styles or a live stream (what memory grows with)."""
        return sum(1 for s in self.sessions.values() if s.holds())

    def close(self) -> None:
        """End every job, release every session and remove the server's temp folder (also done at exit)."""
        self.jobs.cancel_all()
        self.sessions.release_all()
        self.folders.close()


def add_style_to_session(host: DemoHost, session: VisitorSession, painting, name: str | None, steps: int,
                         progress: Callable[[int, int, dict], None] | None = None) -> tuple[str, Path]:
    """Learn a painting (an RGB PIL image) as a new style for this visitor → (its clean name, the model file their
    download offers: the host's base model plus this visitor's own styles, never anyone else's).

    In memory for this session only, unless the host runs with ``--save-styles``: then it is also added to the
    host's user model file, which every visitor then uses (at most ``max_saved_styles`` per server run)."""
    from ..images import pil_to_tensor
    from ..modelfile import PACKAGED_CONTENT, get_model, save_model, subset_model
    from ..paths import pick_device
    from ..train.add_style import learn_style, model_lock, preset, sanitize_style_name

    o = host.options
    if painting is None:
        raise MultistyleError("upload a painting first")
    clean = sanitize_style_name(name or "my_style")
    if len(session.added) >= o.max_added_styles:
        raise MultistyleError(f"this page has added {len(session.added)} styles, the most one visit may add; "
                              "reload the page to start again")
    if o.save_styles and host.saved >= o.max_saved_styles:
        raise ServerBusy(f"this server has saved {host.saved} styles to its model file, its most; ask the host")
    fast = preset("fast")
    config = preset("fast", steps=int(steps), time_budget=min(fast.time_budget or o.add_style_seconds,
                                                              o.add_style_seconds))
    device = pick_device(o.device)
    style = pil_to_tensor(painting)
    base = get_model(host.model) if o.save_styles else (session.model or get_model(host.model))
    learned = learn_style(base, style, [PACKAGED_CONTENT], clean, f"{clean}.png", config, device, progress)
    if session.closed:
        raise Cancelled("the visitor left")
    if o.save_styles:
        with model_lock(host.user_model):
            save_model(learned, host.user_model)
        host.model, host.saved = host.user_model, host.saved + 1
        own = get_model(host.base_model).style_names + [*session.added, clean]
        learned = subset_model(learned, own)
    session.added.append(clean)
    return clean, session.adopt(learned)
