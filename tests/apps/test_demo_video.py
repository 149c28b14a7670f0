"""The demo's Video tab: a real server on localhost driven by gradio_client, a tiny clip made at test time (64×48,
1 s, with a tone), the real network; the result is checked with PyAV and played in headless Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import av
import pytest
from gradio_client.exceptions import AppError
from test_demo import start

from benchmarks.clips import CHROMIUM, play_in_chromium, synthetic_clip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url, app = start(tmp_path_factory)
    yield url, app
    app.close()


def results(app) -> set[Path]:
    """The Video tab's result folders in the server's Gradio cache."""
    [output] = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "video-output"]
    return set(Path(output.GRADIO_CACHE).glob("video-*"))


def stylize(url: str, clip, flicker: bool = True):
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    return client.predict(handle_file(str(clip)), "udnie", 0.7, "great_wave", 0.3, None, 0.5, 1.0, flicker,
                          api_name="/video")


def test_video_tab_returns_a_playable_clip_with_its_sound(server, tmp_path):
    url, app = server
    clip = synthetic_clip(tmp_path / "clip.mp4", size=(64, 48), seconds=1.0)
    before = results(app)  # Gradio's cache may be shared with earlier servers
    video, message = stylize(url, clip)
    path = video["video"] if isinstance(video, dict) else video
    assert "Stylized 24 frames" in message and "with its sound" in message
    with av.open(path) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, v.width, v.height) == ("h264", 64, 48)
        assert (a.codec_context.name, a.sample_rate) == ("aac", 44100)
        assert float(a.duration * a.time_base) == pytest.approx(1.0, abs=0.03)
    assert [sorted(os.listdir(f)) for f in results(app) - before] == [["stylized.mp4"]]  # renamed into place
    if os.path.exists(CHROMIUM):  # the browser tests' rule: skipped without Debian's chromium, except under CI
        state = play_in_chromium(path)
        assert state["ready"] >= 2 and not state["error"] and state["duration"] == pytest.approx(1.0, abs=0.05)
    elif os.environ.get("CI"):
        pytest.fail("CI is set but Debian's chromium is missing")


def test_video_tab_refuses_a_clip_over_its_caps_in_a_plain_sentence(server, tmp_path):
    url, app = server
    options, before = app.multistyle_host.options, results(app)
    clip = synthetic_clip(tmp_path / "long.mp4", size=(64, 48), seconds=1.0, audio=None)
    options.video_clip_seconds = 0.5
    try:
        with pytest.raises(AppError, match=r"This clip is 1\.0 s long; this page stylizes clips of up to 0\.5 s"):
            stylize(url, clip)
    finally:
        options.video_clip_seconds = 10.0
    options.video_max_pixels = 1000
    try:
        with pytest.raises(AppError, match="This clip is 64×48 pixels; this page takes clips of up to"):
            stylize(url, clip)
    finally:
        options.video_max_pixels = 2_100_000
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with pytest.raises(AppError, match="not a video file this tool can read"):
        stylize(url, notes)
    assert results(app) == before  # a refused clip leaves nothing behind
