"""The Video tab: a visitor uploads a short clip, picks the style mix, strength and flicker reduction, and gets it
back stylized, with its sound, as an H.264 MP4 their browser plays (:func:`multistyle.video.render.render_file`).

A slow job of the public page: refused in one plain sentence over the length and pixel caps
(``video_clip_seconds``, ``video_max_pixels``), stylized at ``video_size`` px, run on the slow lane's worker (one
job at a time, the per-session and per-client caps of :data:`~.lanes.LANES`), stopped at ``video_seconds`` (the
clip so far is returned, its sound cut to match) or when the visitor leaves (nothing is kept). The result is
written under a fresh name in Gradio's cache (a temporary file, then a rename): served whole, never rewritten.

(No ``from __future__ import annotations``: see :mod:`.page`.)"""

import math
import shutil
import uuid
from pathlib import Path

from ...errors import MultistyleError
from ...styles import style_weights
from .clients import client_of
from .errors import guarded
from .handlers import session_key, style_mix
from .host import DemoHost
from .inputs import number
from .lanes import LANES, SLOW
from .options import DemoOptions

MAX_FPS = 60  # frames a second of clip may bring at most, whatever its header says (bounds the work per second)


def check_clip(path, options: DemoOptions):
    """The clip's :class:`~multistyle.video.media.MediaInfo`, or a plain sentence saying which cap it is over."""
    from ...video.media import probe

    if not path:
        raise MultistyleError("upload a video clip first")
    info = probe(path)
    name = "This clip"
    if info.width * info.height > options.video_max_pixels:
        raise MultistyleError(f"{name} is {info.width}×{info.height} pixels; this page takes clips of up to "
                              f"{options.video_max_pixels / 1e6:.1f} megapixels a frame: export a smaller one")
    if info.duration > options.video_clip_seconds + 0.05:
        raise MultistyleError(f"{name} is {info.duration:.1f} s long; this page stylizes clips of up to "
                              f"{options.video_clip_seconds:g} s: trim it and try again")
    return info


def video_handler(host: DemoHost, cache_dir: str):
    """The /video function: (clip, 3 × (style, weight), strength, flicker reduction) → (the stylized clip, a line
    saying what was done). Results go to ``cache_dir`` (Gradio's cache, where they are served from as they are)."""
    import gradio as gr

    @guarded("video")
    def video_fn(clip, s1, w1, s2, w2, s3, w3, strength, flicker, request: gr.Request = None,
                 progress=gr.Progress()):
        from ...video.frames import FrameSettings, FrameStylizer
        from ...video.render import render_file

        o, key = host.options, session_key(request)
        info = check_clip(clip, o)
        stylizer = host.visitor_stylizer(key)
        weights = style_weights(style_mix(s1, w1, s2, w2, s3, w3, chars=o.style_menu_chars), stylizer.names)
        settings = FrameSettings(weights, number(strength, "strength", 0, 1), flicker=bool(flicker))
        out = Path(cache_dir) / f"video-{uuid.uuid4().hex}" / "stylized.mp4"

        def job(ticket):
            def report(done: int, total: int) -> None:
                ticket.check()  # the visitor left: stop (the writer removes its temporary file)
                progress((done, max(total, done)), desc="stylizing the clip", unit="frames")

            return render_file(clip, out, FrameStylizer(stylizer, settings, o.video_size), keep_size=False,
                               max_frames=math.ceil(o.video_clip_seconds * MAX_FPS), progress=report,
                               seconds=o.video_seconds, info=info)

        try:
            result = host.jobs.slow(key, job, client_of(request))
        except BaseException:
            shutil.rmtree(out.parent, ignore_errors=True)  # nothing was kept: no empty folder either
            raise
        sound = "with its sound" if info.audio else "(the clip had no sound)"
        done = "" if result.complete else (f"; this server's budget of {o.video_seconds:g} s covered the first "
                                           f"{result.duration:.1f} s")
        return str(result.path), f"Stylized {result.frames} frames in {result.seconds:.0f} s {sound}{done}."

    return video_fn


def video_tab(host: DemoHost, controls) -> None:
    """The tab's layout and its event (inside the current ``gr.Tab``); ``controls()`` builds the style menus and
    sliders (:func:`~.page.style_controls`)."""
    import gradio as gr

    o = host.options
    gr.Markdown(f"Stylize a short clip (up to {o.video_clip_seconds:g} s, returned at {o.video_size} px on its long "
                "side) and get it back with its sound, as an MP4 your browser and phone play. It takes a while: "
                "this server runs one slow job at a time.")
    with gr.Row():
        with gr.Column():
            clip = gr.Video(label="Your clip", sources=["upload"], include_audio=True, elem_id="video-input")
            style = controls()
            flicker = gr.Checkbox(value=True, label="Flicker reduction", elem_id="video-flicker")
            run = gr.Button("Stylize the clip", variant="primary", elem_id="video-button")
        with gr.Column():
            result = gr.Video(label="Stylized clip", interactive=False, elem_id="video-output")
            message = gr.Markdown(elem_id="video-message")
    run.click(video_handler(host, result.GRADIO_CACHE), [clip, *style.boxes, style.strength, flicker],
              [result, message], api_name="video", **LANES[SLOW].events(o))
