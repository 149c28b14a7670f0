"""The demo page's event handlers: each checks what the visitor sent (numbers, images, style names), runs within
the host's limits (:class:`~.options.DemoOptions`) as a job of that visitor (ended when they leave), and
fails with one line (:func:`~.errors.guarded`). The page's layout is in :mod:`.page`.

(No ``from __future__ import annotations`` here: Gradio finds the ``gr.Request`` / ``gr.SelectData`` parameters of
the handlers by their annotations, which must be real objects.)"""

import functools
from pathlib import Path

from ...errors import MultistyleError
from ...styles import style_weights
from .clients import client_of
from .errors import guarded
from .host import DemoHost, add_style_to_session, gallery
from .inputs import number
from .lanes import FAST, LIVE

MIX_SLOTS = 3


def style_mix(*slots, chars: int) -> dict[str, float]:
    """``(name, weight, name, weight, ...)`` from the menus → ``{name: weight}`` (empty menus skipped; names cut
    to ``chars``)."""
    mix: dict[str, float] = {}
    for name, weight in zip(slots[::2], slots[1::2]):
        if name:
            mix[str(name)[:chars]] = mix.get(str(name)[:chars], 0.0) + number(weight, "a style weight", 0, 1)
    if not mix:
        raise MultistyleError("pick at least one style")
    return mix


def session_key(request) -> str | None:
    return getattr(request, "session_hash", None)


def _look(host: DemoHost, stylizer, s1, w1, s2, w2, s3, w3, strength, scale):
    """The checked style weights, strength and stroke scale of a request."""
    from ...stylizer import check_scale

    mix = style_mix(s1, w1, s2, w2, s3, w3, chars=host.options.style_menu_chars)
    weights = style_weights(mix, stylizer.names)
    return weights, number(strength, "strength", 0, 1), check_scale(number(scale, "stroke scale", 0.1, 4))


def _photo(image, max_size: int):
    from ...images import limit_size, pil_to_tensor, reduce_to

    if image is None:
        raise MultistyleError("upload an image first")
    return limit_size(pil_to_tensor(reduce_to(image, max_size)), max_size)


def stylize_handler(host: DemoHost):
    """The /stylize function (the page's instant preview): (photo, 3 × (style, weight), strength, colours, size cap,
    scale) → the stylized photo. Nothing to do (and no error) before there is a photo."""
    import gradio as gr

    @guarded("stylize")
    def stylize_fn(image, s1, w1, s2, w2, s3, w3, strength, preserve, max_size, scale=1.0,
                   request: gr.Request = None):
        from ...images import tensor_to_uint8

        if image is None:
            return gr.skip()
        stylizer = host.visitor_stylizer(session_key(request))
        weights, strength, scale = _look(host, stylizer, s1, w1, s2, w2, s3, w3, strength, scale)
        x = _photo(image, number(max_size, "size cap", 16, host.options.stylize_max_size, whole=True))
        with host.jobs.run(session_key(request), FAST, client_of(request)):
            return tensor_to_uint8(stylizer(x, weights, strength, bool(preserve), scale))

    return stylize_fn


def _progress(ticket, progress, desc: str):
    """A library progress callback that reports to the page and ends the job once the visitor has left."""
    def report(i, n, record=None):
        ticket.check()
        progress((i, n), desc=desc)

    return report


def refine_handler(host: DemoHost):
    """The /refine function: /stylize's inputs + refine iterations → the network's result refined by Gatys within
    the host's ``refine_seconds`` budget, at most ``gatys_max_size`` px."""
    import gradio as gr

    @guarded("refine")
    def refine_fn(image, s1, w1, s2, w2, s3, w3, strength, preserve, max_size, scale, refine,
                  request: gr.Request = None, progress=gr.Progress()):
        from ...images import tensor_to_uint8

        o = host.options
        stylizer = host.visitor_stylizer(session_key(request))
        weights, strength, scale = _look(host, stylizer, s1, w1, s2, w2, s3, w3, strength, scale)
        steps = number(refine, "refine iterations", 1, o.refine_max_steps, whole=True)
        x = _photo(image, min(o.gatys_max_size, number(max_size, "size cap", 16, o.stylize_max_size, whole=True)))
        out = host.jobs.slow(session_key(request), lambda ticket: stylizer(
            x, weights, strength, bool(preserve), scale, refine=steps, seconds=o.refine_seconds,
            progress=_progress(ticket, progress, "refining")), client_of(request))
        return tensor_to_uint8(out)

    return refine_fn


def live_handler(host: DemoHost):
    """The /live stream function: one camera frame + the Live tab's controls → (stylized frame, fps line)."""
    import gradio as gr
    import numpy as np

    from ...video.frames import FrameSettings
    from .live import LiveStream

    @guarded("live")
    def live_fn(frame, s1, w1, s2, w2, s3, w3, strength, preserve, scale, flicker, request: gr.Request = None):
        if frame is None:
            return gr.skip(), gr.skip()
        o, key = host.options, session_key(request)
        session = host.sessions.open(key)
        stylizer = session.stylizer(host)
        weights, strength, scale = _look(host, stylizer, s1, w1, s2, w2, s3, w3, strength, scale)
        settings = FrameSettings(weights, strength, bool(preserve), bool(flicker), scale)
        if session.live is None or session.live.stylizer is not stylizer:
            session.live = LiveStream(stylizer, o.live_size, settings, o.live_min_fps)
        live = session.live
        if live.streamed() > o.live_fair_seconds and host.waiting(LIVE):
            live.restart()
            raise MultistyleError(f"your stream ran {o.live_fair_seconds:.0f} s while other visitors wait for a "
                                  "slot; press Record to queue again")
        with host.jobs.run(key, LIVE, client_of(request)):
            out = live(np.asarray(frame), settings)
        return out, (live.status() if live.rate.due() else gr.skip())

    return live_fn


def gatys_handler(host: DemoHost):
    """The /gatys function: (photo, painting, size, steps, keep colours) → the optimised image, started from the
    network run with the painting's zero-shot style (a head start, no training), within the host's
    ``gatys_seconds`` budget (the best image reached by then), at most ``gatys_max_size`` px and
    ``gatys_max_steps`` iterations."""
    import gradio as gr

    @guarded("gatys")
    def gatys_fn(image, style_image, size, steps, preserve, request: gr.Request = None, progress=gr.Progress()):
        from ...gatys import GatysConfig, stylize_gatys
        from ...images import limit_size, pil_to_tensor, tensor_to_uint8
        from ...stylizer import head_start

        o = host.options
        if image is None or style_image is None:
            raise MultistyleError("upload a photo and a painting first")
        size = number(size, "size", 64, o.gatys_max_size, whole=True)
        steps = number(steps, "steps", 1, o.gatys_max_steps, whole=True)
        content, style = _photo(image, size), pil_to_tensor(style_image.copy())
        style = limit_size(style, 2 * size)
        stylizer = host.visitor_stylizer(session_key(request))

        def optimise(ticket):
            # the head start: the network run with the painting's zero-shot style mix, then Gatys at full size
            start = head_start(stylizer, limit_size(content, size), [style])
            config = GatysConfig(size=size, steps=steps, init=start, min_size=size, seconds=o.gatys_seconds,
                                 preserve_color="luminance" if preserve else None)
            return stylize_gatys(content, [style], config, loss=host.gatys_loss(), device=o.device,
                                 progress=_progress(ticket, progress, "optimising"))

        result = host.jobs.slow(session_key(request), optimise, client_of(request))
        return tensor_to_uint8(result.image)

    return gatys_fn


def add_style_handler(host: DemoHost):
    """The /add_style function: (painting, name, steps) → (gallery, style-1 menu, message, the bundled photo in
    the learned style)."""
    import gradio as gr

    @guarded("add_style")
    def add_style_fn(painting, name, steps, request: gr.Request = None, progress=gr.Progress()):
        from ...images import tensor_to_uint8

        o = host.options
        steps = number(steps, "steps", 1, o.add_style_max_steps, whole=True)
        key = session_key(request)
        session = host.sessions.open(key)
        clean, _ = host.jobs.slow(key, lambda ticket: add_style_to_session(
            host, session, painting, None if name is None else str(name)[:o.style_name_chars], steps,
            _progress(ticket, progress, "learning the style")), client_of(request))
        names = session.names(host)
        where = "saved in the host's model file" if host.options.save_styles else \
            "for this visit only: download the model file below to keep it"
        stylizer = session.stylizer(host)
        learned = tensor_to_uint8(stylizer(_preview_photo(), style_weights(clean, names)))
        return (gallery(stylizer), gr.update(choices=names, value=clean),
                f"Added style '{clean}' (now {len(names)} styles, {where}).", learned)

    return add_style_fn


PREVIEW_SIZE = 384  # long side of the Add-your-style tab's preview (a bundled photo)


@functools.lru_cache(maxsize=1)
def _preview_photo():
    """The bundled photo the Add-your-style tab previews on, read once."""
    from ...images import load_image
    from ...modelfile import PACKAGED_CONTENT

    return load_image(sorted(PACKAGED_CONTENT.glob("*.jpg"))[0], max_size=PREVIEW_SIZE)


def zero_shot_handler(host: DemoHost):
    """A painting was uploaded in Add your style: the bundled photo in that painting's zero-shot style, in two steps
    shown in place before any training: the instant blend of the existing rows, then the row fitted on the model's
    own loss (fixed work, under 2 s on two AVX2 cores; :func:`multistyle.stylizer.zero_shot_stylizer`); nothing is
    stored in the visitor's session."""
    import gradio as gr

    @guarded("zero_shot")
    def zero_shot_fn(painting, request: gr.Request = None):
        from ...images import pil_to_tensor, tensor_to_uint8
        from ...stylizer import zero_shot_stylizer

        if painting is None:
            yield gr.skip()
            return
        with host.jobs.run(session_key(request), FAST, client_of(request)):
            base, photo, image = host.visitor_stylizer(session_key(request)), _preview_photo(), pil_to_tensor(painting)
            for fit in (False, True):
                stylizer = zero_shot_stylizer(base, image, fit=fit)
                weights = style_weights(len(stylizer.names) - 1, stylizer.names)  # its last style: the painting
                yield tensor_to_uint8(stylizer(photo, weights))

    return zero_shot_fn


def after_add_handler(host: DemoHost):
    """Bring every other style menu, the Live tab's thumbnails and the download button up to date after a style
    was added (only the visitor's own session is read: calling it directly shows nothing of anyone else's)."""
    import gradio as gr

    @guarded("after_add")
    def after_add(request: gr.Request = None):
        session = host.sessions.get(session_key(request))
        stylizer = session.stylizer(host) if session else host.stylizer()
        path = session.model_file if session else None
        menus = [gr.update(choices=stylizer.names)] * (2 * MIX_SLOTS - 1)
        download = gr.update(value=str(path), visible=True) if path and Path(path).is_file() else gr.update()
        return (*menus, gallery(stylizer), download)

    return after_add
