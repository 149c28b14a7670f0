"""The Gradio demo page: Live (the visitor's webcam, stylized continuously), Stylize (re-rendered as soon as a
control changes; refine on a button), Best quality (Gatys) and Add your style (kept in the visitor's session).
Per-visitor state is in :mod:`.demo_session`, the live stream in :mod:`.live`.

(No ``from __future__ import annotations`` here: Gradio finds the ``gr.Request`` / ``gr.SelectData`` parameters of
the handlers by their annotations, which must be real objects.)"""

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import MultistyleError
from ..images import MAX_PIXELS, load_image, tensor_to_uint8
from .demo_session import (
    MAX_ADD_STEPS,
    SESSION_TTL,
    DemoHost,
    DemoOptions,
    VisitorSession,
    add_style_to_session,
)

MAX_UPLOAD = "20mb"
MIX_SLOTS = 3
SESSION_CAPACITY = 1000  # browser sessions Gradio keeps at most (its own per-session memory is bounded too)
DELETE_CACHE = (900, 3600)  # every 15 min, Gradio deletes the files it made (uploads, results) older than 1 h
WAITING = ("⏳ Waiting: this server learns one style at a time; yours starts as soon as the one before it "
           "has finished (the queue position shows above).")


def _gr_error(exc: Exception):
    import gradio as gr

    return gr.Error(str(exc).splitlines()[0])


def _load(path: str | None, max_size: int | None = None):
    if not path:
        raise MultistyleError("upload an image first")
    return load_image(path, max_size=max_size)


def style_mix(*slots) -> dict[str, float]:
    """``(name, weight, name, weight, ...)`` from the menus → ``{name: weight}`` (empty menus skipped)."""
    mix: dict[str, float] = {}
    for name, weight in zip(slots[::2], slots[1::2]):
        if name:
            mix[name] = mix.get(name, 0.0) + float(weight)
    if not mix:
        raise MultistyleError("pick at least one style")
    return mix


@dataclass
class StyleControls:
    """The style menus and sliders one tab shows (the Stylize and Live tabs each have a set)."""

    boxes: list  # [menu 1, weight 1, menu 2, weight 2, menu 3, weight 3]
    strength: object
    preserve: object
    scale: object

    @property
    def menus(self) -> list:
        return self.boxes[::2]

    def inputs(self) -> list:
        return [*self.boxes, self.strength, self.preserve]

    def triggers(self) -> list:
        """Events that re-render at once: a menu or the colour box changes, a slider is released."""
        changes = [c.change for c in (*self.menus, self.preserve)]
        return changes + [c.release for c in (*self.boxes[1::2], self.strength, self.scale)]


def style_controls(names: list[str], prefix: str) -> StyleControls:
    """Build the controls (inside the current Gradio layout). The menus take any value: which styles exist depends
    on the visitor's session, so :func:`multistyle.styles.style_weights` checks the names (with suggestions)."""
    import gradio as gr

    boxes = []
    for slot in range(MIX_SLOTS):
        with gr.Row():
            boxes.append(gr.Dropdown(choices=names, value=names[0] if slot == 0 else None, label=f"Style {slot + 1}",
                                     allow_custom_value=True, elem_id=f"{prefix}-style-{slot + 1}"))
            boxes.append(gr.Slider(0, 1, value=1.0 if slot == 0 else 0.5, step=0.05, label="weight"))
    strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength", elem_id=f"{prefix}-strength")
    preserve = gr.Checkbox(label="Keep the photo's colours", elem_id=f"{prefix}-colours")
    scale = gr.Slider(0.25, 2.0, value=1.0, step=0.05, label="Stroke scale (smaller = bolder strokes, faster)",
                      elem_id=f"{prefix}-scale")
    return StyleControls(boxes, strength, preserve, scale)


def stylize_handler(host: DemoHost):
    """The /stylize function: (session, photo, 3 × (style, weight), strength, colours, size cap, scale, refine)."""
    import gradio as gr

    def stylize_fn(session: VisitorSession, image, s1, w1, s2, w2, s3, w3, strength, preserve, max_size,
                   scale=1.0, refine=0, request: gr.Request = None, progress=gr.Progress()):
        from ..refine import check_refine
        from ..styles import style_weights
        from ..stylizer import check_scale

        try:
            host.track(session, getattr(request, "session_hash", None))
            stylizer = session.stylizer(host)
            mix = style_mix(s1, w1, s2, w2, s3, w3)
            scale, refine = check_scale(float(scale)), check_refine(int(refine or 0))
            x = _load(image, int(max_size))
            weights = style_weights(mix, stylizer.names)
            out = stylizer(x, weights, float(strength), bool(preserve), scale, refine=refine,
                           progress=lambda i, n, rec: progress((i, n), desc="refining"))
            return tensor_to_uint8(out), session
        except MultistyleError as exc:
            raise _gr_error(exc) from None

    return stylize_fn


def preview_handler(stylize_fn):
    """Stylize without refine on every control change; nothing to do (and no error) before there is a photo."""
    import gradio as gr

    def preview_fn(session, image, *controls, request: gr.Request = None):
        if not image:
            return gr.skip(), session
        return stylize_fn(session, image, *controls, refine=0, request=request, progress=lambda *a, **k: None)

    return preview_fn


def live_handler(host: DemoHost):
    """The /live stream function: one camera frame + the Live tab's controls → (stylized frame, fps line)."""
    import gradio as gr

    from ..styles import style_weights
    from ..stylizer import check_scale
    from ..video.frames import FrameSettings
    from .live import LiveStream

    def live_fn(session: VisitorSession, frame, s1, w1, s2, w2, s3, w3, strength, preserve, scale, flicker,
                request: gr.Request = None):
        if frame is None:
            return gr.skip(), gr.skip(), session
        try:
            host.track(session, getattr(request, "session_hash", None))
            stylizer = session.stylizer(host)
            settings = FrameSettings(style_weights(style_mix(s1, w1, s2, w2, s3, w3), stylizer.names),
                                     float(strength), bool(preserve), bool(flicker), check_scale(float(scale)))
            if session.live is None or session.live.stylizer is not stylizer:
                session.live = LiveStream(stylizer, host.options.live_size, settings)
            live = session.live
            out = live(frame, settings)
            return out, (live.status() if live.rate.due() else gr.skip()), session
        except MultistyleError as exc:
            raise _gr_error(exc) from None

    return live_fn


def gatys_handler(host: DemoHost):
    import gradio as gr

    def gatys_fn(image, style_image, size, steps, preserve, progress=gr.Progress()):
        from ..gatys import GatysConfig, stylize_gatys

        try:
            content, style = _load(image), _load(style_image)
            config = GatysConfig(size=int(size), steps=int(steps), preserve_color="luminance" if preserve else None)
            result = stylize_gatys(content, [style], config, loss=host.gatys_loss(), device=host.options.device,
                                   progress=lambda i, n, rec: progress((i, n), desc="optimising"))
            return tensor_to_uint8(result.image)
        except (MultistyleError, ValueError) as exc:
            raise _gr_error(exc) from None

    return gatys_fn


def add_style_handler(host: DemoHost):
    """The /add_style function: (session, painting, name, steps) → (gallery, style-1 menu, message)."""
    import gradio as gr

    def add_style_fn(session: VisitorSession, painting, name, steps, request: gr.Request = None,
                     progress=gr.Progress()):
        try:
            host.track(session, getattr(request, "session_hash", None))
            clean, _ = add_style_to_session(host, session, painting, name, steps,
                                            lambda i, n, rec: progress((i, n), desc="learning the style"))
            names = session.names(host)
            where = "saved in the host's model file" if host.options.save_styles else \
                "for this visit only: download the model file below to keep it"
            return (session.gallery(host), gr.update(choices=names, value=clean),
                    f"Added style '{clean}' (now {len(names)} styles, {where}).", session)
        except (MultistyleError, ValueError) as exc:
            raise _gr_error(exc) from None

    return add_style_fn


def after_add_handler(host: DemoHost):
    """Bring every other style menu and the download button up to date after a style was added."""
    import gradio as gr

    def after_add(session: VisitorSession):
        names = session.names(host)
        path = host.user_model if host.options.save_styles else session.model_file
        menus = [gr.update(choices=names)] * (2 * MIX_SLOTS - 1)
        download = gr.update(value=str(path), visible=True) if path and Path(path).is_file() else gr.update()
        return (*menus, download)

    return after_add


def _stylize_tab(host: DemoHost, session, names: list[str]):
    import gradio as gr

    from ..modelfile import PACKAGED_CONTENT

    with gr.Row():
        with gr.Column():
            image = gr.Image(type="filepath", sources=["upload", "webcam", "clipboard"], label="Photo",
                             elem_id="photo")
            gr.Examples([[str(p)] for p in sorted(PACKAGED_CONTENT.glob("*.jpg"))], inputs=[image],
                        label="No photo at hand? Try one of these")
            controls = style_controls(names, "stylize")
            max_size = gr.Slider(128, 2048, value=1024, step=32, label="Output size cap (long side, px)")
            refine = gr.Slider(0, 200, value=0, step=10, label="Refine: Gatys iterations from the result "
                                                               "(0 = off; slower, closer to best quality)")
            run = gr.Button("Stylize with refine", variant="primary", elem_id="stylize-button")
        with gr.Column():
            output = gr.Image(label="Result (updates as you change the controls)", elem_id="result-image",
                              format="png")
            gallery = gr.Gallery(value=VisitorSession().gallery(host), label="Styles", columns=5, height=300,
                                 allow_preview=False)
    stylize_fn = stylize_handler(host)
    inputs = [session, image, *controls.inputs(), max_size, controls.scale]
    run.click(stylize_fn, [*inputs, refine], [output, session], api_name="stylize", concurrency_limit=2)
    gr.on([image.change, max_size.release, *controls.triggers()], preview_handler(stylize_fn), inputs,
          [output, session], trigger_mode="always_last", show_progress="minimal", api_visibility="private",
          concurrency_limit=2, concurrency_id="stylize")

    def pick_style(session: VisitorSession, evt: gr.SelectData):
        return gr.update(value=session.names(host)[evt.index])

    gallery.select(pick_style, [session], controls.menus[0], api_visibility="private")
    return controls, gallery


def _live_tab(host: DemoHost, session, names: list[str]):
    import gradio as gr

    from .live import live_output

    o = host.options
    gr.Markdown(f"Your camera, stylized as you move (long side {o.live_size} px; a stream stops after "
                f"{o.live_seconds} s: press Record again). Nothing is recorded or kept.")
    with gr.Row():
        with gr.Column():
            constraints = {"video": {"width": {"ideal": o.live_size}, "height": {"ideal": o.live_size * 3 // 4}}}
            camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Your camera", height=240,
                              elem_id="live-camera", webcam_options=gr.WebcamOptions(constraints=constraints))
            controls = style_controls(names, "live")
            flicker = gr.Checkbox(value=True, label="Flicker reduction")
        with gr.Column():
            live_out = live_output(label="Live", elem_id="live-output", interactive=False, format="jpeg",
                                   height=o.live_size * 3 // 4)
            rate = gr.Markdown(elem_id="live-fps")
    camera.stream(live_handler(host), [session, camera, *controls.inputs(), controls.scale, flicker],
                  [live_out, rate, session], stream_every=1 / o.live_fps, time_limit=o.live_seconds,
                  concurrency_limit=o.live_visitors, concurrency_id="live", api_name="live", show_progress="hidden")
    return controls


def _add_style_tab(host: DemoHost, session):
    import gradio as gr

    from ..train.add_style import PRESETS

    where = "It is added to the host's model file (this server runs with --save-styles)." if \
        host.options.save_styles else "It stays yours: other visitors do not see it, and it is gone when you " \
                                      "leave unless you download the model file."
    gr.Markdown(f"Teach the network a painting in about half a minute; it then appears in the Stylize and Live "
                f"tabs. {where}")
    with gr.Row():
        with gr.Column():
            painting = gr.Image(type="filepath", label="Painting")
            name = gr.Textbox(label="Name", placeholder="my_painting")
            steps = gr.Slider(1, MAX_ADD_STEPS, value=PRESETS["fast"].steps, step=1,
                              label=f"Steps (at most: the run stops after {PRESETS['fast'].time_budget:.0f} s "
                                    "anyway; fewer: quicker, further from the painting)")
            run = gr.Button("Learn this style", variant="primary", elem_id="add-style-button")
        with gr.Column():
            message = gr.Markdown(elem_id="add-style-message")
            download = gr.DownloadButton("Download your model file", visible=False, elem_id="download-model")
    return run, painting, name, steps, message, download


def build_app(model: str | os.PathLike | None = None, device: str = "auto", user_model: Path | None = None,
              options: DemoOptions | None = None):
    """Build the Blocks app (not launched). ``options`` carries everything; the first three arguments are the
    common ones (model file, device, where ``--save-styles`` writes)."""
    import gradio as gr
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own decompression-bomb guard at our cap
    options = options or DemoOptions(model=model, device=device, user_model=user_model)
    host = DemoHost(options)
    names = host.stylizer().names
    with gr.Blocks(title="multistyle", delete_cache=DELETE_CACHE) as app:
        gr.Markdown("# multistyle\nFast multi-style neural style transfer. Pick one style or mix up to three.")
        session = gr.State(VisitorSession(), time_to_live=SESSION_TTL, delete_callback=VisitorSession.release)
        with gr.Tab("Live"):
            live = _live_tab(host, session, names)
        with gr.Tab("Stylize"):
            stylize, gallery = _stylize_tab(host, session, names)
        with gr.Tab("Best quality (Gatys)"):
            _gatys_tab(host)
        with gr.Tab("Add your style"):
            run, painting, name, steps, message, download = _add_style_tab(host, session)
        others = [*stylize.menus[1:], *live.menus]
        run.click(lambda: WAITING, None, message, queue=False, api_visibility="private").then(
            add_style_handler(host), [session, painting, name, steps], [gallery, stylize.menus[0], message, session],
            api_name="add_style", concurrency_limit=1, concurrency_id="add_style").success(
            after_add_handler(host), [session], [*others, download], api_visibility="private")

        def leave(request: gr.Request) -> None:
            host.release(request.session_hash)

        app.unload(leave)
    app.queue(default_concurrency_limit=2, max_size=32)
    app.multistyle_host = host  # for tests and embedding: the model in use, the sessions alive, the loss network
    return app


def _gatys_tab(host: DemoHost) -> None:
    import gradio as gr

    with gr.Row():
        with gr.Column():
            image = gr.Image(type="filepath", label="Photo")
            style = gr.Image(type="filepath", label="Painting")
            size = gr.Slider(64, 1024, value=384, step=32, label="Size (long side, px)")
            steps = gr.Slider(10, 500, value=100, step=10, label="Steps")
            preserve = gr.Checkbox(label="Keep the photo's colours")
            run = gr.Button("Optimise", variant="primary")
        out = gr.Image(label="Result", format="png")
    run.click(gatys_handler(host), [image, style, size, steps, preserve], out, api_name="gatys", concurrency_limit=1)


def launch(app, host: str = "127.0.0.1", port: int | None = None, share: bool = False, block: bool = True):
    """Launch with upload size cap and no filesystem access beyond Gradio's own temp files."""
    return app.launch(server_name=host, server_port=port, share=share, max_file_size=MAX_UPLOAD,
                      prevent_thread_lock=not block, show_error=True, quiet=not block,
                      state_session_capacity=SESSION_CAPACITY)
