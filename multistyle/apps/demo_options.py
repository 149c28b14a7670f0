"""Every limit of the demo page in one place (:class:`DemoOptions`), each with its reason.

A shared demo link is a public web service: assume one hostile script among the visitors. Each limit below holds on
the server whatever a client sends (the page's sliders are a convenience, not a guard); ``multistyle demo --help``
sets the ones a host is likely to change. The guards that enforce them are in :mod:`.demo_guard` (admission to the
queue, request bodies, errors), :mod:`.demo_inputs` (images, numbers) and :mod:`.demo_session` (sessions, jobs)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

MB = 1024 * 1024

# The page's four kinds of work. Each runs in its own Gradio concurrency group ("lane"), so a flood of one kind
# cannot fill the queue of another: Stylize previews never wait behind a Gatys job.
FAST, SLOW, LIVE, UI = "fast", "slow", "live", "ui"


@dataclass
class DemoOptions:
    """What the host chose (``multistyle demo --help``) and the limits that keep a shared page usable for all."""

    model: str | os.PathLike | None = None
    device: str = "auto"
    user_model: Path | None = None  # where --save-styles writes (default: the user model file)
    threads: int = 1  # torch threads per request: two requests then use the two cores side by side (README)

    # -- sessions: ours, not Gradio's (demo_session.SessionRegistry) ----------------------------------------------
    # A visitor's session is stored only once it holds something (an added style, a live stream), so a flood of
    # fresh sessions costs nothing and can evict nobody.
    max_sessions: int = 100  # sessions holding styles or a stream at once (each: up to ~8 MB)
    session_ttl: float = 3600.0  # seconds a session outlives its last request
    session_protect: float = 600.0  # a session used this recently is never evicted to make room; a newcomer waits

    # -- added styles ----------------------------------------------------------------------------------------------
    max_added_styles: int = 3  # styles one visit may add (each is a copy of the network's rows in memory)
    save_styles: bool = False  # added styles go to the host's user model file (shared by every visitor)
    save_styles_public: bool = False  # allow --save-styles on a public address or --share (anyone then writes it)
    max_saved_styles: int = 20  # styles this server run may add to the host's file in all (--save-styles)
    add_style_seconds: float = 25.0  # wall-clock budget of one add-style job (the fast recipe's own budget)

    # -- slow jobs (Gatys, refine, add-style): one lane, one job at a time --------------------------------------
    gatys_seconds: float = 20.0  # budget of one Gatys job: it returns the best image reached by then
    refine_seconds: float = 15.0  # budget of one refine job (Stylize tab's button)
    gatys_max_size: int = 1024  # long side of a Gatys/refine result (VGG memory grows with the square)
    gatys_max_steps: int = 500  # iterations one Gatys job may ask for (the budget usually stops it first)
    slow_waiting: int = 4  # slow jobs waiting at most; more are refused ("busy, try again in a minute")

    # -- fast jobs (Stylize previews) ----------------------------------------------------------------------------
    stylize_max_size: int = 2048  # long side of a Stylize result
    fast_waiting: int = 16  # previews waiting at most over all visitors

    # -- per visitor ---------------------------------------------------------------------------------------------
    # queued + running events one session may hold per lane (the page itself sends at most one running plus the
    # latest pending preview; one slow job; one stream)
    per_visitor: tuple[tuple[str, int], ...] = ((FAST, 2), (SLOW, 1), (LIVE, 1), (UI, 4))

    # -- input ---------------------------------------------------------------------------------------------------
    max_request_mb: float = 20.0  # any request body (uploads and JSON with data: URLs); refused before reading on
    max_pixels: int = 25_000_000  # an uploaded image's pixels, read from its header before any decoding
    live_max_pixels: int = 8_300_000  # a live camera frame's pixels (4K), read from its header

    # -- live stream ---------------------------------------------------------------------------------------------
    live_size: int = 480  # long side the live stream is stylized at, whatever the browser sends
    live_fps: float = 12.0  # how often the browser sends a frame (each costs the browser CPU: see README)
    live_seconds: int = 180  # a live stream ends after this long
    live_visitors: int = 3  # live streams served at once (more visitors wait in the queue)
    live_fair_seconds: float = 60.0  # while others wait for a stream, one older than this is ended to let them in

    def __post_init__(self) -> None:
        limits = {"threads": (1, 256), "max_sessions": (1, 100_000), "session_ttl": (1, 7 * 86400),
                  "session_protect": (0, 86400), "max_added_styles": (0, 100), "max_saved_styles": (0, 10_000),
                  "add_style_seconds": (1, 3600), "gatys_seconds": (1, 3600), "refine_seconds": (1, 3600),
                  "gatys_max_size": (64, 8192), "gatys_max_steps": (1, 100_000), "slow_waiting": (0, 1000),
                  "stylize_max_size": (64, 8192), "fast_waiting": (1, 10_000), "max_request_mb": (0.1, 4096),
                  "max_pixels": (10_000, 500_000_000), "live_max_pixels": (10_000, 500_000_000),
                  "live_size": (16, 4096), "live_fps": (0.1, 60), "live_seconds": (1, 86400),
                  "live_visitors": (1, 1000), "live_fair_seconds": (1, 86400)}
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not lo <= value <= hi:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} must be between {lo:g} and {hi:g}, not {value!r}")

    def visitor_cap(self, lane: str) -> int:
        """Queued + running events one session may hold in ``lane``."""
        return dict(self.per_visitor).get(lane, 1)

    def lane_waiting(self, lane: str) -> int:
        """Events that may wait in ``lane`` over all visitors (then the page says it is busy)."""
        return {FAST: self.fast_waiting, SLOW: self.slow_waiting, LIVE: 2 * self.live_visitors}.get(lane, 64)

    def queue_size(self) -> int:
        """Gradio's own queue bound: the sum of the lanes' (ours are checked first, with clearer messages)."""
        return sum(self.lane_waiting(lane) for lane in (FAST, SLOW, LIVE, UI)) + 8

    def describe(self) -> dict[str, object]:
        """The limits as a plain dict (for the log line at start and for the soak benchmark's record)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "user_model")}
