"""The demo page's two kinds of state: :class:`DemoHost` (one per server: the host's model, the options the host
chose, the cached Gatys loss network) and :class:`VisitorSession` (one per browser tab, kept in a ``gr.State``: the
styles that visitor added, their live-stream state). A visitor's styles live only in their session unless the host
opted in with ``multistyle demo --save-styles``; the session is released when the visitor leaves."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import MultistyleError

if TYPE_CHECKING:  # imported where used: the CLI's option parser imports this module for DemoOptions
    import numpy as np

    from ..modelfile import ModelFile
    from ..stylizer import Stylizer

MAX_ADDED_STYLES = 3  # styles one session may add (each is a copy of the network: ~2 MB)
MAX_ADD_STEPS = 1000  # the steps slider's top (Gradio refuses larger values, from the API too); fast stops at 25 s
SESSION_TTL = 3600  # seconds a session outlives its last event (gr.State time_to_live)


@dataclass
class DemoOptions:
    """What the host chose (``multistyle demo --help``)."""

    model: str | os.PathLike | None = None
    device: str = "auto"
    user_model: Path | None = None  # where --save-styles writes (default: the user model file)
    save_styles: bool = False
    max_added_styles: int = MAX_ADDED_STYLES
    live_size: int = 480  # long side the live stream is stylized at, whatever the browser sends
    live_fps: float = 12.0  # how often the browser sends a frame (each costs the browser CPU: see README)
    live_seconds: int = 180  # a live stream ends after this long
    live_visitors: int = 3  # live streams served at once (more visitors wait in the queue)

    def __post_init__(self) -> None:
        limits = {"live_size": (16, 4096), "live_fps": (0.1, 60), "live_seconds": (1, 86400),
                  "live_visitors": (1, 1000), "max_added_styles": (0, 100)}
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be between {lo:g} and {hi:g}, not {value!r}")


class DemoHost:
    """Per-server state: the host's model, the options, the Gatys loss network and the sessions alive."""

    def __init__(self, options: DemoOptions) -> None:
        from ..modelfile import user_model_path

        self.options = options
        self.model = options.model  # switches to the user model file after a --save-styles add
        self.user_model = options.user_model or user_model_path()
        self.sessions: weakref.WeakValueDictionary[str, VisitorSession] = weakref.WeakValueDictionary()
        self._gatys_loss = None
        self._gatys_lock = threading.Lock()

    def stylizer(self) -> Stylizer:
        """The host model's cached Stylizer (what every visitor starts with)."""
        from ..stylizer import get_stylizer

        return get_stylizer(self.model, self.options.device)

    def gatys_loss(self):
        """The Gatys tab's VGG19 loss network, loaded on first use and kept for every later request."""
        with self._gatys_lock:
            if self._gatys_loss is None:
                from ..loss import PerceptualLoss
                from ..paths import pick_device

                self._gatys_loss = PerceptualLoss().to(pick_device(self.options.device))
            return self._gatys_loss

    def track(self, session: "VisitorSession", session_hash: str | None) -> "VisitorSession":
        """Remember which browser session a VisitorSession belongs to (for :meth:`release`); returns it."""
        if session_hash:
            self.sessions[session_hash] = session
        return session

    def release(self, session_hash: str | None) -> None:
        """The visitor left (``demo.unload``): drop their styles and stream state now, not when Gradio expires
        the state an hour later."""
        session = self.sessions.pop(session_hash, None) if session_hash else None
        if session is not None:
            session.release()

    def holding(self) -> int:
        """How many sessions hold styles or a live stream (what memory grows with)."""
        return sum(1 for s in list(self.sessions.values()) if s.model is not None or s.live is not None)


class VisitorSession:
    """One visitor's state: their extended model (None: the host's) and their live stream. Created fresh for every
    visitor by ``gr.State(VisitorSession())``; :meth:`release` frees it (``delete_callback`` and ``demo.unload``)."""

    def __init__(self) -> None:
        self.model: ModelFile | None = None
        self._stylizer: Stylizer | None = None
        self.added: list[str] = []
        self.live = None  # a multistyle.apps.live.LiveStream once the visitor streams
        self.folder: str | None = None  # temp folder of the downloadable model file

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

    def gallery(self, host: DemoHost) -> list[tuple[np.ndarray, str]]:
        """(thumbnail, "i: name") for every style this visitor can use."""
        import numpy as np

        styles = self.stylizer(host).model.styles
        return [(s.thumbnail.numpy() if s.thumbnail is not None else np.zeros((8, 8, 3), np.uint8), f"{i}: {s.name}")
                for i, s in enumerate(styles)]

    @property
    def model_file(self) -> Path | None:
        """This visitor's extended model file (what their download button offers), once they added a style."""
        return Path(self.folder) / "multistyle_model.safetensors" if self.folder else None

    def adopt(self, model: ModelFile) -> Path:
        """Use ``model`` from now on and write it where only this visitor's download button points; its path."""
        from ..modelfile import save_model

        self.model, self._stylizer = model, None
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="multistyle-session-")
        return save_model(model, self.model_file)

    def release(self) -> None:
        """Drop the download file, then the added styles and the live state (idempotent; in that order, so a
        session that holds nothing has no file left either)."""
        folder, self.folder = self.folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        self.model = self._stylizer = self.live = None

    def __deepcopy__(self, memo) -> "VisitorSession":
        """A session is never duplicated: a copy (what ``gr.State`` makes of its initial value for every new
        visitor) is a new, empty session."""
        return VisitorSession()


def add_style_to_session(host: DemoHost, session: VisitorSession, painting: str | None, name: str | None,
                         steps: float, progress: Callable[[int, int, dict], None] | None = None) -> tuple[str, Path]:
    """Learn a painting as a new style for this visitor → (its clean name, the model file to download).

    In memory for this session only, unless the host runs with ``--save-styles``: then, as before sessions existed,
    it is added to the host's user model file, which every visitor then uses."""
    from ..images import load_image
    from ..modelfile import PACKAGED_CONTENT, get_model, resolve_model_path
    from ..paths import pick_device
    from ..train.add_style import add_style, learn_style, preset, sanitize_style_name

    if not painting:
        raise MultistyleError("upload a painting first")
    clean = sanitize_style_name(name or Path(painting).stem)
    config, device = preset("fast", steps=int(steps)), pick_device(host.options.device)  # the slider caps steps
    if host.options.save_styles:
        add_style(painting, resolve_model_path(host.model), host.user_model, [PACKAGED_CONTENT], clean, config,
                  device=device, progress=progress)
        host.model = host.user_model
        return clean, host.user_model
    if len(session.added) >= host.options.max_added_styles:
        raise MultistyleError(f"this page has added {len(session.added)} styles, the most one visit may add; "
                              "reload the page to start again")
    base = session.model or get_model(host.model)
    learned = learn_style(base, load_image(painting), [PACKAGED_CONTENT], clean, Path(painting).name, config,
                          device, progress)
    session.added.append(clean)
    return clean, session.adopt(learned)
