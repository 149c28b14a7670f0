"""Every limit of the demo page in one place (:class:`DemoOptions`), each with its range, its reason and, where a
host is likely to change it, its ``multistyle demo`` flag: the dataclass field's metadata is read by the range check,
by ``multistyle demo --help`` (:func:`add_arguments`) and by the server, so a limit is written once.

A shared demo link is a public web service: assume one hostile script among the visitors. Each limit holds on the
server whatever a client sends (the page's sliders are a convenience, not a guard). The guards that enforce them are
in :mod:`.guard` (queue admission per client, session and lane; request bodies; errors), :mod:`.inputs` (images,
numbers), :mod:`.sessions` (sessions) and :mod:`.lanes` (the lane table, jobs)."""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from ...engine import CHOICES as ENGINES  # auto and every engine, as the engine layer names them

MB = 1024 * 1024


def limit(default: float, lo: float, hi: float, reason: str, flag: bool = False):
    """A limit field: its default, its range [lo, hi], why it is there, and whether ``multistyle demo`` has a flag
    for it (``--`` + the field name with dashes)."""
    return field(default=default, metadata={"range": (lo, hi), "reason": reason, "flag": flag})


def setting(default: object, reason: str, flag: bool = False):
    """A field that is no number (a switch, an address): its reason and whether it has a flag."""
    return field(default=default, metadata={"reason": reason, "flag": flag})


def waiting(default: int, what: str, lo: int = 1, note: str = ""):
    """A lane's waiting room: how many of ``what`` may wait over all clients."""
    return limit(default, lo, 10_000, f"{what} waiting at most{note}")


def per_session(default: int, what: str, note: str = ""):
    """A lane's cap per session."""
    return limit(default, 1, 100, f"{what} one session may have queued or running{note}")


def per_client(default: int, what: str, hi: int = 1000, flag: bool = False):
    """A lane's cap per client address, shared by all its sessions: it binds only while another address waits."""
    return limit(default, 1, hi, f"{what} one client address may run at once, over all its sessions, while another "
                                 "address waits (alone, an address may use every worker but one)", flag=flag)


@dataclass
class DemoOptions:
    """What the host chose (``multistyle demo --help``) and the limits that keep a shared page usable for all."""

    model: str | os.PathLike | None = None
    device: str = "auto"
    user_model: Path | None = None  # where --save-styles writes (default: the user model file)
    engine: str = setting("auto", "inference engine of the Stylize and Live networks (auto: the one measured fastest "
                                  "on this machine)", flag=True)
    threads: int = limit(1, 1, 256, "CPU threads for torch per request (1: each live visitor's frames run on a core "
                                    "of their own, and a browser on the same machine does not stall the network)",
                         flag=True)

    # -- who is who ------------------------------------------------------------------------------------------------
    trusted_proxy: str | None = setting(
        None, "address of a reverse proxy in front of this server: requests from it are counted by the client "
              "address it reports in X-Forwarded-For (without it the header is ignored)", flag=True)
    client_burst: int = limit(60, 1, 10_000, "queue joins one client address may make per second (a class of 30 "
                                             "behind one address, each moving a slider, stays within it; a script "
                                             "retrying refused joins does not)", flag=True)
    client_per_minute: int = limit(2400, 1, 1_000_000, "queue joins one client address may make per minute")

    # -- sessions (ours, not Gradio's: sessions.SessionRegistry) ------------------------------------------------
    max_sessions: int = limit(100, 1, 100_000, "visitors holding added styles or a live stream at once (each up to "
                                               "~8 MB); a session idle for --session-protect seconds may be dropped "
                                               "to make room, a busier one never", flag=True)
    session_ttl: float = limit(3600.0, 1, 7 * 86400, "seconds a session outlives its last request")
    session_protect: float = limit(600.0, 0, 86400, "a session used this recently is never evicted; a newcomer "
                                                    "waits instead")
    gradio_sessions: int = limit(200, 10, 1_000_000, "sessions Gradio's own state store keeps, each ~130 KB of "
                                                     "the page's config (least recently used dropped; ours do not "
                                                     "depend on it)")
    cache_seconds: int = limit(3600, 60, 7 * 86400, "uploads and results stay in Gradio's cache this long "
                                                    "(swept every quarter of it)")

    # -- added styles ---------------------------------------------------------------------------------------------
    max_added_styles: int = limit(3, 0, 100, "styles one visitor may add per visit (each is a copy of the network's "
                                             "rows in memory)", flag=True)
    save_styles: bool = setting(False, "styles visitors add are saved to your user model file (and then used by "
                                       "every visitor and every command); without it they stay in the visitor's "
                                       "session and nothing is written", flag=True)
    save_styles_public: bool = setting(False, "allow --save-styles with --share or a non-loopback --host (any "
                                              "visitor can then add up to --max-saved-styles styles to your file)",
                                       flag=True)
    max_saved_styles: int = limit(20, 0, 10_000, "with --save-styles: styles this server run may add to your model "
                                                 "file in all", flag=True)
    add_style_seconds: float = limit(25.0, 1, 3600, "wall-clock budget of one add-style job", flag=True)
    add_style_max_steps: int = limit(1000, 1, 100_000, "steps one add-style job may ask for (the budget usually "
                                                       "stops it first)")
    style_name_chars: int = limit(60, 8, 1000, "characters of an added style's name")
    style_menu_chars: int = limit(200, 8, 1000, "characters of a style name a request may send")

    # -- slow jobs (Gatys, refine, add-style): one lane, one job at a time -----------------------------------
    gatys_seconds: float = limit(20.0, 1, 3600, "budget of one Best quality (Gatys) job: it returns the best image "
                                                "reached by then", flag=True)
    refine_seconds: float = limit(15.0, 1, 3600, "budget of one Stylize-tab refine", flag=True)
    refine_max_steps: int = limit(200, 1, 100_000, "Gatys iterations one refine may ask for")
    gatys_max_size: int = limit(1024, 64, 8192, "long side of a Gatys/refine result (VGG memory grows with its "
                                                "square)")
    gatys_max_steps: int = limit(500, 1, 100_000, "iterations one Gatys job may ask for")
    slow_waiting: int = waiting(4, "slow jobs", lo=0, note=" (full, the address holding the most is refused, never "
                                                           "a newcomer)")
    slow_per_session: int = per_session(1, "slow jobs")
    slow_per_client: int = per_client(2, "slow jobs", hi=100, flag=True)

    # -- fast jobs (Stylize previews, zero-shot previews) ----------------------------------------------------------
    stylize_max_size: int = limit(2048, 64, 8192, "long side of a Stylize result")
    fast_workers: int = limit(3, 1, 64, "previews computed at once; one address may use all but one, so a "
                                        "newcomer's preview starts at once")
    fast_waiting: int = waiting(64, "previews", note=" (a crowd of 30 behind one address and a flood of 24 "
                                                      "sessions fit; full, the address holding the most is refused)")
    fast_per_session: int = per_session(2, "previews", note=" (the page sends one running plus the latest pending)")
    fast_per_client: int = per_client(2, "previews", flag=True)

    # -- page updates -------------------------------------------------------------------------------------------
    ui_workers: int = limit(4, 1, 64, "page updates (menus, galleries) computed at once")
    ui_waiting: int = waiting(64, "page updates")
    ui_per_session: int = per_session(4, "page updates")
    ui_per_client: int = per_client(16, "page updates")

    # -- input ------------------------------------------------------------------------------------------------
    max_request_mb: float = limit(20.0, 0.1, 4096, "any request body (uploads, JSON with data: URLs); refused before "
                                                   "it is read")
    max_pixels: int = limit(25_000_000, 10_000, 500_000_000, "an uploaded image's pixels, read from its header "
                                                             "before any decoding")
    live_max_pixels: int = limit(8_300_000, 10_000, 500_000_000, "a live camera frame's pixels (4K)")

    # -- live stream ---------------------------------------------------------------------------------------------
    live_size: int = limit(480, 16, 4096, "Live tab: long side in px the camera frames are stylized at, whatever "
                                          "the browser sends", flag=True)
    live_fps: float = limit(24.0, 0.1, 60, "Live tab: frames per second the browser sends at most (each costs the "
                                           "browser CPU; a server that cannot keep up drops stale frames)", flag=True)
    live_min_fps: float = limit(10.0, 0, 60, "Live tab: a stream whose frames take the server longer than this rate "
                                             "allows is processed smaller (down to half the live size, shown at the "
                                             "same size; 0: never)", flag=True)
    live_seconds: int = limit(180, 1, 86400, "Live tab: a stream stops after this many seconds", flag=True)
    live_visitors: int = limit(3, 1, 1000, "Live tab: streams served at once; more visitors wait in the queue",
                               flag=True)
    live_waiting: int = waiting(6, "live streams")
    live_per_session: int = per_session(1, "live streams")
    live_per_client: int = per_client(2, "live streams", hi=100, flag=True)
    live_fair_seconds: float = limit(60.0, 1, 86400, "while others wait for a stream, one older than this is ended "
                                                     "to let them in")

    # -- video tab (a slow job: the slow lane's worker and caps) --------------------------------------------------
    video_clip_seconds: float = limit(10.0, 0.1, 3600, "Video tab: seconds of an uploaded clip; a longer one is "
                                                       "refused (read from its header before any frame is stylized)",
                                      flag=True)
    video_max_pixels: int = limit(2_100_000, 10_000, 500_000_000, "Video tab: an uploaded clip's pixels a frame "
                                                                  "(1080p); a larger one is refused")
    video_size: int = limit(480, 16, 4096, "Video tab: long side in px a clip is stylized and returned at", flag=True)
    video_seconds: float = limit(120.0, 1, 3600, "Video tab: budget of one clip's job; past it the clip so far is "
                                                 "returned, its sound cut to match", flag=True)

    def __post_init__(self) -> None:
        for f in fields(self):
            if "range" in f.metadata:
                check_range(f.name, getattr(self, f.name), *f.metadata["range"])
        if self.engine not in ENGINES:
            raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        self.trusted_proxy = check_proxy(self.trusted_proxy)

    def describe(self) -> dict[str, object]:
        """The limits as a plain dict (for the log line at start and for the benchmarks' records)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "user_model")}


def check_range(name: str, value: object, lo: float, hi: float) -> None:
    """A finite number in [lo, hi], or a one-line ValueError naming the flag."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise ValueError(f"{flag_of(name)} must be between {lo:g} and {hi:g}, not {value!r}")


def check_proxy(value: str | None) -> str | None:
    """``--trusted-proxy``: addresses or networks, comma-separated (a ValueError names what is wrong)."""
    if value is None:
        return None
    items = [v.strip() for v in str(value).split(",") if v.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"--trusted-proxy takes IP addresses or networks, not {item!r}") from None
    if not items:
        raise ValueError("--trusted-proxy takes IP addresses or networks, not an empty value")
    return ",".join(items)


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option whose metadata says so, its help the option's reason and default."""
    for f in fields(DemoOptions):
        if not f.metadata.get("flag"):
            continue
        default = f.default if f.default is not MISSING else None
        help_text = f"{f.metadata['reason']} (default {default:g})" if isinstance(default, (int, float)) \
            and not isinstance(default, bool) else f.metadata["reason"]
        if isinstance(default, bool):
            parser.add_argument(flag_of(f.name), action="store_true", help=help_text)
        elif f.name == "engine":
            parser.add_argument("--engine", choices=ENGINES, default=default, help=help_text)
        elif isinstance(default, (int, float)):
            parser.add_argument(flag_of(f.name), type=type(default), default=default, metavar="N", help=help_text)
        else:
            parser.add_argument(flag_of(f.name), default=default, metavar="ADDR", help=help_text)


def from_arguments(args: argparse.Namespace, **extra) -> DemoOptions:
    """The options from parsed flags (+ ``extra`` fields); a value out of range is a one-line ValueError."""
    chosen = {f.name: getattr(args, f.name) for f in fields(DemoOptions) if f.metadata.get("flag")}
    return DemoOptions(**chosen, **extra)
