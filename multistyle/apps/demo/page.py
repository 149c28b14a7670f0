"""The page's layout: the Live tab (the visitor's webcam, stylized continuously), Stylize (re-rendered as soon as a
control changes; refine on a button), Best quality (Gatys), Add your style (kept in the visitor's session) and
Video (:mod:`.video_tab`). Each event is registered in its lane (:data:`~.lanes.LANES`); the handlers are in
:mod:`.handlers`.

(No ``from __future__ import annotations`` here: Gradio finds the ``gr.Request`` / ``gr.SelectData`` parameters of
the handlers by their annotations, which must be real objects.)"""

from dataclasses import dataclass

from ...errors import MultistyleError
from .errors import guarded
from .handlers import (
    MIX_SLOTS,
    add_style_handler,
    after_add_handler,
    gatys_handler,
    live_handler,
    refine_handler,
    session_key,
    stylize_handler,
    zero_shot_handler,
)
from .host import DemoHost, gallery
from .inputs import image_input
from .lanes import FAST, LANES, LIVE, SLOW, UI
from .results import atomic_results
from .video_tab import video_tab

WAITING = ("⏳ Waiting: this server learns one style at a time; yours starts as soon as the one before it "
           "has finished (the queue position shows above).")


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


def _pick_style_on_select(host: DemoHost, styles, menu) -> None:
    """Clicking a thumbnail of ``styles`` puts that style in ``menu`` (the visitor's own styles included)."""
    import gradio as gr

    @guarded("pick_style")
    def pick_style(evt: gr.SelectData, request: gr.Request = None):
        names = host.visitor_stylizer(session_key(request)).names
        index = evt.index if isinstance(evt.index, int) else -1
        if not 0 <= index < len(names):
            raise MultistyleError("no such style in the gallery")
        return gr.update(value=names[index])

    styles.select(pick_style, None, menu, api_visibility="private", **LANES[UI].events(host.options))


def _stylize_tab(host: DemoHost, names: list[str]):
    import gradio as gr

    from ...modelfile import PACKAGED_CONTENT

    o = host.options
    with gr.Row():
        with gr.Column():
            image = image_input(o.max_pixels, o.stylize_max_size, sources=["upload", "webcam", "clipboard"],
                                label="Photo", elem_id="photo")
            gr.Examples([[str(p)] for p in sorted(PACKAGED_CONTENT.glob("*.jpg"))], inputs=[image],
                        label="No photo at hand? Try one of these")
            controls = style_controls(names, "stylize")
            max_size = gr.Slider(128, o.stylize_max_size, value=min(1024, o.stylize_max_size), step=32,
                                 label="Output size cap (long side, px)")
            refine = gr.Slider(10, o.refine_max_steps, value=min(50, o.refine_max_steps), step=10,
                               label=f"Refine: Gatys iterations from the result (at most {o.refine_seconds:.0f} s, "
                                     f"{o.gatys_max_size} px)")
            run = gr.Button("Refine (slower, closer to best quality)", variant="primary", elem_id="stylize-button")
        with gr.Column():
            output = atomic_results(gr.Image(label="Result (updates as you change the controls)",
                                             elem_id="result-image", format="png"))
            styles = atomic_results(gr.Gallery(value=gallery(host.stylizer()), label="Styles", columns=5,
                                               height=300, allow_preview=False))
    inputs = [image, *controls.inputs(), max_size, controls.scale]
    gr.on([image.change, max_size.release, *controls.triggers()], stylize_handler(host), inputs, output,
          api_name="stylize", trigger_mode="always_last", show_progress="minimal", **LANES[FAST].events(o))
    run.click(refine_handler(host), [*inputs, refine], output, api_name="refine", **LANES[SLOW].events(o))

    _pick_style_on_select(host, styles, controls.menus[0])
    return controls, styles


def _live_tab(host: DemoHost, names: list[str]):
    """The stylized stream is the main picture; the camera is a small preview beside the controls; a style's
    thumbnail switches to it while streaming."""
    import gradio as gr

    from .live import live_output

    o = host.options
    gr.Markdown(f"Your camera, stylized as you move (long side {o.live_size} px, lowered while this server cannot "
                f"keep up; a stream stops after {o.live_seconds} s: press Record again). Nothing is recorded or "
                "kept.")
    with gr.Row():
        with gr.Column(scale=3):
            live_out = live_output(label="Live", elem_id="live-output", interactive=False, format="jpeg",
                                   height=o.live_size * 3 // 4)
            rate = gr.Markdown(elem_id="live-fps")
            styles = atomic_results(gr.Gallery(value=gallery(host.stylizer()), label="Click a style to switch to it",
                                               columns=7, height=140, allow_preview=False, elem_id="live-styles"))
        with gr.Column(scale=1):
            constraints = {"video": {"width": {"ideal": o.live_size}, "height": {"ideal": o.live_size * 3 // 4}}}
            camera = image_input(o.live_max_pixels, o.live_size, sources=["webcam"], streaming=True,
                                 label="Your camera", height=160, elem_id="live-camera",
                                 webcam_options=gr.WebcamOptions(constraints=constraints))
            controls = style_controls(names, "live")
            flicker = gr.Checkbox(value=True, label="Flicker reduction")
    camera.stream(live_handler(host), [camera, *controls.inputs(), controls.scale, flicker], [live_out, rate],
                  stream_every=1 / o.live_fps, time_limit=o.live_seconds, api_name="live", show_progress="hidden",
                  **LANES[LIVE].events(o))
    _pick_style_on_select(host, styles, controls.menus[0])
    return controls, styles


def _add_style_tab(host: DemoHost):
    import gradio as gr

    from ...train.add_style import PRESETS

    o = host.options
    where = "It is added to the host's model file (this server runs with --save-styles)." if \
        o.save_styles else "It stays yours: other visitors do not see it, and it is gone when you " \
                           "leave unless you download the model file."
    gr.Markdown(f"Teach the network a painting: a preview shows at once, the trained style follows in seconds; it "
                f"then appears in the Stylize and Live tabs. {where}")
    with gr.Row():
        with gr.Column():
            painting = image_input(o.max_pixels, 1024, label="Painting")
            name = gr.Textbox(label="Name", placeholder="my_painting", max_length=o.style_name_chars)
            budget = min(PRESETS["fast"].time_budget or o.add_style_seconds, o.add_style_seconds)
            steps = gr.Slider(1, o.add_style_max_steps, value=min(PRESETS["fast"].steps, o.add_style_max_steps),
                              step=1,
                              label=f"Steps (at most: the run stops after {budget:.0f} s anyway; fewer: quicker, "
                                    "further from the painting)")
            run = gr.Button("Learn this style", variant="primary", elem_id="add-style-button")
        with gr.Column():
            preview = atomic_results(gr.Image(label="Preview: at once from the painting (no training), then the "
                                                    "learned style", elem_id="add-style-preview", format="jpeg",
                                              interactive=False))
            message = gr.Markdown(elem_id="add-style-message")
            download = gr.DownloadButton("Download your model file", visible=False, elem_id="download-model")
    painting.change(zero_shot_handler(host), [painting], preview, api_name="zero_shot", trigger_mode="always_last",
                    show_progress="minimal", **LANES[FAST].events(o))
    return run, painting, name, steps, message, download, preview


def _gatys_tab(host: DemoHost) -> None:
    import gradio as gr

    o = host.options
    with gr.Row():
        with gr.Column():
            image = image_input(o.max_pixels, o.gatys_max_size, label="Photo")
            style = image_input(o.max_pixels, 2 * o.gatys_max_size, label="Painting")
            size = gr.Slider(64, o.gatys_max_size, value=min(384, o.gatys_max_size), step=32,
                             label="Size (long side, px)")
            steps = gr.Slider(10, o.gatys_max_steps, value=min(100, o.gatys_max_steps), step=10,
                              label=f"Steps (the job stops after {o.gatys_seconds:.0f} s with the best image so far)")
            preserve = gr.Checkbox(label="Keep the photo's colours")
            run = gr.Button("Optimise", variant="primary")
        out = atomic_results(gr.Image(label="Result", format="png"))
    run.click(gatys_handler(host), [image, style, size, steps, preserve], out, api_name="gatys",
              **LANES[SLOW].events(o))


def layout(host: DemoHost, app) -> None:
    """The page's tabs and events, inside ``app`` (the ``gr.Blocks`` being built)."""
    import gradio as gr

    from .handlers import session_key

    names = host.stylizer().names
    gr.Markdown("# multistyle\nFast multi-style neural style transfer. Pick one style or mix up to three.")
    with gr.Tab("Live"):
        live, live_styles = _live_tab(host, names)
    with gr.Tab("Stylize"):
        stylize, styles = _stylize_tab(host, names)
    with gr.Tab("Best quality (Gatys)"):
        _gatys_tab(host)
    with gr.Tab("Add your style"):
        run, painting, name, steps, message, download, preview = _add_style_tab(host)
    with gr.Tab("Video"):
        video_tab(host, lambda: style_controls(names, "video"))
    others = [*stylize.menus[1:], *live.menus]
    run.click(lambda: WAITING, None, message, queue=False, api_visibility="private").then(
        add_style_handler(host), [painting, name, steps], [styles, stylize.menus[0], message, preview],
        api_name="add_style", **LANES[SLOW].events(host.options)).success(
        after_add_handler(host), None, [*others, live_styles, download], api_visibility="private",
        **LANES[UI].events(host.options))

    def leave(request: gr.Request) -> None:
        host.leave(session_key(request))

    app.unload(leave)
