"""The Gradio demo page, in parts named for what they do:

* :mod:`.options` — every limit of the shared page (:class:`DemoOptions`: range, reason, CLI flag);
* :mod:`.lanes` — the lane table (:data:`LANES`) and the jobs running in each lane;
* :mod:`.clients` — who a request comes from, its rate, its fair turn;
* :mod:`.guard` — queue admission per client, session and lane; the request-size cap;
* :mod:`.errors` — one-line errors, no tracebacks;
* :mod:`.inputs` / :mod:`.results` — what a visitor sends (checked) and the files sent back (written atomically);
* :mod:`.sessions` / :mod:`.host` — the visitors' sessions and the per-server state;
* :mod:`.handlers` / :mod:`.page` — the events and the page's layout; :mod:`.live` — the Live tab's stream;
* :mod:`.app` — :func:`build_app` and :func:`launch`."""

from .options import DemoOptions

__all__ = ["DemoOptions", "build_app", "check_launch", "is_public", "launch"]


def __getattr__(name: str):
    """The server's entry points, imported on first use (the CLI's parser reads :mod:`.options` alone)."""
    if name in ("build_app", "check_launch", "is_public", "launch"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
