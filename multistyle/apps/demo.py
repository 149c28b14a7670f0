"""The Gradio demo page: fast stylization with style mixing, the Gatys "best quality" tab and "Add your style"."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ..errors import MultistyleError
from ..images import MAX_PIXELS, load_image, tensor_to_uint8

MAX_UPLOAD = "20mb"
MIX_SLOTS = 3


class DemoState:
    """Which model the page uses; after add_style it switches to the user's model file."""

    def __init__(self, model: str | os.PathLike | None, device: str, user_model: Path) -> None:
        self.model = model
        self.device = device
        self.user_model = user_model
        self.lock = threading.Lock()  # one add_style at a time
        self._gatys_loss = None
        self._gatys_lock = threading.Lock()

    def stylizer(self):
        from ..stylizer import get_stylizer

        return get_stylizer(self.model, self.device)

    def gatys_loss(self):
        """The Gatys tab's VGG19 loss network, loaded on first use and kept for every later request."""
        with self._gatys_lock:
            if self._gatys_loss is None:
                from ..loss.perceptual import PerceptualLoss
                from ..paths import pick_device

                self._gatys_loss = PerceptualLoss().to(pick_device(self.device))
            return self._gatys_loss

    def gallery(self) -> list[tuple[np.ndarray, str]]:
        styles = self.stylizer().model.styles
        return [(s.thumbnail.numpy() if s.thumbnail is not None else np.zeros((8, 8, 3), np.uint8), f"{i}: {s.name}")
                for i, s in enumerate(styles)]


def _gr_error(exc: Exception):
    import gradio as gr

    return gr.Error(str(exc).splitlines()[0])


def _load(path: str | None, max_size: int | None = None):
    if not path:
        raise MultistyleError("upload an image first")
    return load_image(path, max_size=max_size)


def build_app(model: str | os.PathLike | None = None, device: str = "auto", user_model: Path | None = None):
    """Build the Blocks app (not launched)."""
    import gradio as gr
    from PIL import Image

    from ..modelfile import user_model_path

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own decompression-bomb guard at our cap
    state = DemoState(model, device, user_model or user_model_path())
    names = state.stylizer().names

    def stylize_fn(image, s1, w1, s2, w2, s3, w3, strength, preserve, max_size, scale=1.0, refine=0,
                   progress=gr.Progress()):
        from ..refine import check_refine
        from ..styles import style_weights
        from ..stylizer import check_scale

        try:
            mix: dict[str, float] = {}
            for name, weight in ((s1, w1), (s2, w2), (s3, w3)):
                if name:
                    mix[name] = mix.get(name, 0.0) + float(weight)
            if not mix:
                raise MultistyleError("pick at least one style")
            stylizer = state.stylizer()
            scale, refine = check_scale(float(scale)), check_refine(int(refine or 0))
            x = _load(image, int(max_size))
            weights = style_weights(mix, stylizer.names)
            return tensor_to_uint8(stylizer(x, weights, float(strength), bool(preserve), scale, refine=refine,
                                            progress=lambda i, n, rec: progress((i, n), desc="refining")))
        except MultistyleError as exc:
            raise _gr_error(exc) from None

    def gatys_fn(image, style_image, size, steps, preserve, progress=gr.Progress()):
        from ..gatys import GatysConfig, stylize_gatys

        try:
            content, style = _load(image), _load(style_image)
            config = GatysConfig(size=int(size), steps=int(steps), preserve_color="luminance" if preserve else None)
            result = stylize_gatys(content, [style], config, loss=state.gatys_loss(), device=device,
                                   progress=lambda i, n, rec: progress((i, n), desc="optimising"))
            return tensor_to_uint8(result.image)
        except (MultistyleError, ValueError) as exc:
            raise _gr_error(exc) from None

    def add_style_fn(painting, name, steps, progress=gr.Progress()):
        from ..modelfile import PACKAGED_CONTENT, resolve_model_path
        from ..paths import pick_device
        from ..train.add_style import AddStyleConfig, add_style, sanitize_style_name

        try:
            if not painting:
                raise MultistyleError("upload a painting first")
            clean = sanitize_style_name(name or Path(painting).stem)
            if not state.lock.acquire(blocking=False):
                raise MultistyleError("another style is being added; try again when it has finished")
            try:
                source = resolve_model_path(state.model)
                add_style(painting, source, state.user_model, [PACKAGED_CONTENT], clean,
                          AddStyleConfig(steps=int(steps)), device=pick_device(device),
                          progress=lambda i, n, rec: progress((i, n), desc="learning the style"))
                state.model = state.user_model
            finally:
                state.lock.release()
            choices = state.stylizer().names
            return (state.gallery(), gr.update(choices=choices, value=clean),
                    f"Added style '{clean}' (now {len(choices)} styles, saved in your model file).")
        except (MultistyleError, ValueError) as exc:
            raise _gr_error(exc) from None

    with gr.Blocks(title="multistyle") as app:
        gr.Markdown("# multistyle\nFast multi-style neural style transfer. Pick one style or mix up to three.")
        with gr.Tab("Stylize"):
            with gr.Row():
                with gr.Column():
                    image = gr.Image(type="filepath", sources=["upload", "webcam"], label="Photo")
                    style_boxes = []
                    for slot in range(MIX_SLOTS):
                        with gr.Row():
                            dd = gr.Dropdown(choices=names, value=names[0] if slot == 0 else None,
                                             label=f"Style {slot + 1}", allow_custom_value=False)
                            sl = gr.Slider(0, 1, value=1.0 if slot == 0 else 0.5, step=0.05, label="weight")
                        style_boxes += [dd, sl]
                    strength = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength")
                    preserve = gr.Checkbox(label="Keep the photo's colours")
                    max_size = gr.Slider(128, 2048, value=1024, step=32, label="Output size cap (long side, px)")
                    scale = gr.Slider(0.25, 2.0, value=1.0, step=0.05, label="Stroke scale (smaller = bolder strokes, "
                                                                             "faster)")
                    refine = gr.Slider(0, 200, value=0, step=10, label="Refine: Gatys iterations from the result "
                                                                       "(0 = off; slower, closer to best quality)")
                    run = gr.Button("Stylize", variant="primary", elem_id="stylize-button")
                with gr.Column():
                    output = gr.Image(label="Result", elem_id="result-image", format="png")
                    gallery = gr.Gallery(value=state.gallery(), label="Styles", columns=5, height=300,
                                         allow_preview=False)

            def pick_style(evt: gr.SelectData):
                return gr.update(value=state.stylizer().names[evt.index])

            gallery.select(pick_style, None, style_boxes[0])
            run.click(stylize_fn, [image, *style_boxes, strength, preserve, max_size, scale, refine], output,
                      api_name="stylize",
                      concurrency_limit=2)
        with gr.Tab("Best quality (Gatys)"):
            with gr.Row():
                with gr.Column():
                    g_image = gr.Image(type="filepath", label="Photo")
                    g_style = gr.Image(type="filepath", label="Painting")
                    g_size = gr.Slider(64, 1024, value=384, step=32, label="Size (long side, px)")
                    g_steps = gr.Slider(10, 500, value=100, step=10, label="Steps")
                    g_preserve = gr.Checkbox(label="Keep the photo's colours")
                    g_run = gr.Button("Optimise", variant="primary")
                g_out = gr.Image(label="Result", format="png")
            g_run.click(gatys_fn, [g_image, g_style, g_size, g_steps, g_preserve], g_out, api_name="gatys",
                        concurrency_limit=1)
        with gr.Tab("Add your style"):
            with gr.Row():
                with gr.Column():
                    a_image = gr.Image(type="filepath", label="Painting")
                    a_name = gr.Textbox(label="Name", placeholder="my_painting")
                    a_steps = gr.Slider(10, 1000, value=200, step=10, label="Steps")
                    a_run = gr.Button("Learn this style", variant="primary")
                a_msg = gr.Markdown()
            a_run.click(add_style_fn, [a_image, a_name, a_steps], [gallery, style_boxes[0], a_msg],
                        api_name="add_style", concurrency_limit=1)
    app.queue(default_concurrency_limit=2, max_size=32)
    app.multistyle_state = state  # for tests and embedding: the model in use, the cached loss network
    return app


def launch(app, host: str = "127.0.0.1", port: int | None = None, share: bool = False, block: bool = True):
    """Launch with upload size cap and no filesystem access beyond Gradio's own temp files."""
    return app.launch(server_name=host, server_port=port, share=share, max_file_size=MAX_UPLOAD,
                      prevent_thread_lock=not block, show_error=True, quiet=not block)
