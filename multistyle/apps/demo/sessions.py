"""The visitors' sessions, owned by us rather than by Gradio: :class:`SessionRegistry` (the visitors who hold
something, LRU + TTL, each released by us: leaving, expiry and eviction all free memory and files),
:class:`VisitorSession` (one visitor's added styles, live stream and download file) and :class:`SessionFolders`
(the server's one temp folder for download files: swept at start, removed at exit)."""

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
from typing import TYPE_CHECKING, Protocol

from ...errors import MultistyleError
from .lanes import Cancelled
from .options import DemoOptions

if TYPE_CHECKING:
    from ...modelfile import ModelFile
    from ...stylizer import Stylizer

FOLDER_PREFIX = "multistyle-demo-"  # + the server's pid: the server's one temp folder
LEGACY_PREFIX = "multistyle-session-"  # what earlier versions left behind


class Host(Protocol):
    """What a session needs of the server (:class:`~.host.DemoHost`): its options and the host model's network."""

    options: DemoOptions

    def stylizer(self) -> Stylizer: ...


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
        self.closed = False
        atexit.register(self.close)

    def new(self) -> Path:
        """A fresh folder for one session's files (inside the server's folder); none once the server stops."""
        if self.closed:
            raise ServerBusy("the server is stopping")
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="session-", dir=self.root))

    def close(self) -> None:
        """Remove the server's folder, again if a job still finishing wrote into it meanwhile."""
        self.closed = True
        for _ in range(5):
            shutil.rmtree(self.root, ignore_errors=True)
            if not self.root.exists():
                return
            time.sleep(0.2)


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
        self.live = None  # a multistyle.apps.demo.live.LiveStream once the visitor streams
        self.folder: Path | None = None  # where the downloadable model file is
        self.folders = folders
        self.closed = False
        self.last_used = time.monotonic()

    def stylizer(self, host: Host) -> Stylizer:
        """The network this visitor's requests use: their own model's, else the host's."""
        if self.model is None:
            return host.stylizer()
        if self._stylizer is None:
            from ...stylizer import Stylizer

            self._stylizer = Stylizer(self.model, host.options.device, engine=host.options.engine)
        return self._stylizer

    def names(self, host: Host) -> list[str]:
        return self.stylizer(host).names

    @property
    def model_file(self) -> Path | None:
        """This visitor's extended model file (what their download button offers), once they added a style."""
        return self.folder / "multistyle_model.safetensors" if self.folder else None

    def adopt(self, model: ModelFile) -> Path:
        """Use ``model`` from now on and write it where only this visitor's download button points; its path."""
        from ...modelfile import save_model

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
