"""Per-server state of the demo page: :class:`DemoHost` (the host's model, the options, the cached Gatys loss
network, the sessions, the jobs running) and :func:`add_style_to_session` (a visitor's painting learned as their
own style). A visitor's styles live only in their session unless the host opted in with ``--save-styles``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ...errors import MultistyleError
from .lanes import Cancelled, Jobs
from .options import DemoOptions
from .sessions import ServerBusy, SessionFolders, SessionRegistry, VisitorSession

if TYPE_CHECKING:
    import numpy as np

    from ...stylizer import Stylizer


def gallery(stylizer: Stylizer) -> list[tuple[np.ndarray, str]]:
    """(thumbnail, "i: name") for every style of a stylizer's model."""
    import numpy as np

    return [(s.thumbnail.numpy() if s.thumbnail is not None else np.zeros((8, 8, 3), np.uint8), f"{i}: {s.name}")
            for i, s in enumerate(stylizer.model.styles)]


class DemoHost:
    """Per-server state: the host's model, the options, the Gatys loss network, the sessions and the jobs."""

    def __init__(self, options: DemoOptions, temp_parent: str | None = None) -> None:
        from ...modelfile import user_model_path

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
        from ...stylizer import get_stylizer

        return get_stylizer(self.model, self.options.device, engine=self.options.engine)

    def visitor_stylizer(self, key: str | None) -> Stylizer:
        session = self.sessions.get(key)
        return session.stylizer(self) if session is not None else self.stylizer()

    def gatys_loss(self):
        """The Gatys tab's VGG19 loss network, loaded on first use and kept for every later request."""
        with self._gatys_lock:
            if self._gatys_loss is None:
                from ...loss import PerceptualLoss
                from ...paths import pick_device

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
    from ...images import pil_to_tensor
    from ...modelfile import PACKAGED_CONTENT, get_model, save_model, subset_model
    from ...paths import pick_device
    from ...train.add_style import learn_style, model_lock, preset, sanitize_style_name

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
