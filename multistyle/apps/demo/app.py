"""The demo server: :func:`build_app` puts the page (:mod:`.page`), the per-server state (:mod:`.host`) and the
guards (:mod:`.guard`, :mod:`.errors`) together; :func:`launch` serves it with the request-size cap and the client
addresses as :mod:`.clients` reads them.

Safe to share: every limit is a :class:`~.options.DemoOptions` field (with its range and reason) and holds
server-side."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from ...errors import MultistyleError
from .clients import proxy_environment, trusted_addresses
from .errors import guard_components, log, setup_logging
from .guard import Admission, BodyLimit, waiting
from .host import DemoHost
from .lanes import queue_size
from .options import MB, DemoOptions
from .page import layout


def build_app(model: str | os.PathLike | None = None, device: str = "auto", user_model: Path | None = None,
              options: DemoOptions | None = None, temp_parent: str | None = None):
    """Build the Blocks app (not launched). ``options`` carries everything; the first three arguments are the
    common ones (model file, device, where ``--save-styles`` writes). ``temp_parent``: where the server's temp
    folder goes (default: the system's)."""
    import gradio as gr
    import torch
    from PIL import Image

    from ...images import MAX_PIXELS

    setup_logging()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own decompression-bomb guard at our cap
    options = options or DemoOptions(model=model, device=device, user_model=user_model)
    torch.set_num_threads(options.threads)
    host = DemoHost(options, temp_parent)
    if host.folders.swept:
        log.info("removed %d temp folders of demo servers that are gone", host.folders.swept)
    sweep = (max(60, options.cache_seconds // 4), options.cache_seconds)  # Gradio deletes its old files
    with gr.Blocks(title="multistyle", delete_cache=sweep) as app:
        layout(host, app)
    app.queue(default_concurrency_limit=2, max_size=queue_size(options))
    guard_components(app)
    Admission(options, host).install(app._queue)
    host.waiting = lambda lane: waiting(app._queue, lane)
    app.multistyle_host = host  # for tests and embedding: the model in use, the sessions alive, the loss network
    close = app.close

    def close_and_release(*args, **kwargs):
        try:
            return close(*args, **kwargs)
        finally:
            host.close()

    app.close = close_and_release
    return app


def is_public(host: str, share: bool) -> bool:
    """Whether a server on ``host`` (with ``share``) can be reached by others: --share, or not a loopback address."""
    if share or host == "":  # "" listens on every interface
        return True
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: assume others can reach it


def check_launch(options: DemoOptions, host: str, share: bool) -> None:
    """Refuse ``--save-styles`` on a page others can reach, unless the host said ``--save-styles-public``."""
    if options.save_styles and is_public(host, share) and not options.save_styles_public:
        where = "--share" if share else f"--host {host}"
        raise MultistyleError(f"--save-styles with {where} lets any visitor write your model file; add "
                              "--save-styles-public if that is what you want, or drop --save-styles")


def launch(app, host: str = "127.0.0.1", port: int | None = None, share: bool = False, block: bool = True,
           auth: tuple[str, str] | None = None):
    """Launch with the request-size cap and no filesystem access beyond Gradio's own temp files; ``auth``: a
    (user, password) every visitor must give."""
    from starlette.middleware import Middleware

    options = app.multistyle_host.options
    check_launch(options, host, share)
    limit = int(options.max_request_mb * MB)
    log.info("serving with limits %s", options.describe())
    with proxy_environment(trusted_addresses(options.trusted_proxy, share)):  # --share: the tunnel's header
        return app.launch(server_name=host, server_port=port, share=share, max_file_size=limit,
                          prevent_thread_lock=not block, show_error=False, quiet=not block, auth=auth,
                          state_session_capacity=options.gradio_sessions,
                          app_kwargs={"middleware": [Middleware(BodyLimit, max_bytes=limit + MB // 4)]})
