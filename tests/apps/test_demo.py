"""The Gradio demo: launched on localhost, driven by gradio_client and by a real headless Chromium."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, wait_for
from gradio_client.exceptions import AppError
from PIL import Image

PHOTO = ROOT / "examples" / "chelsea_cat.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LIVE_SIZE = 224  # the Live tab's long side in these tests (small: the browser and the server share 2 cores)


def start(tmp_path_factory, **options):
    """A demo on a free localhost port → (url, app); nothing of the user's is touched (the user model is a temp
    path; conftest points $MULTISTYLE_HOME at a temp folder)."""
    from multistyle.apps.demo import build_app, launch
    from multistyle.apps.demo import DemoOptions

    user_model = tmp_path_factory.mktemp("user") / "model.safetensors"
    import torch

    options.setdefault("threads", torch.get_num_threads())  # the suite's own setting (the CLI's default is 1)
    app = build_app(options=DemoOptions(device="cpu", user_model=user_model, live_size=LIVE_SIZE, **options),
                    temp_parent=str(tmp_path_factory.mktemp("server-tmp")))
    port = free_port()
    launch(app, "127.0.0.1", port, block=False)
    return f"http://127.0.0.1:{port}/", app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url, app = start(tmp_path_factory)
    yield url, app.multistyle_host.user_model, app
    app.close()


@pytest.fixture(scope="module")
def small_photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "cat.png"
    img = Image.open(PHOTO).convert("RGB")
    img.thumbnail((96, 96))
    img.save(path)
    return path


def test_client_stylize_mix_and_errors(server, small_photo):
    from gradio_client import Client, handle_file

    url, _, _ = server
    client = Client(url, verbose=False)
    assert {"/stylize", "/add_style", "/live", "/gatys"} <= set(client.view_api(return_format="dict")
                                                                 ["named_endpoints"])
    result = client.predict(handle_file(str(small_photo)), "starry_night", 0.7, "great_wave", 0.3, None, 0.5,
                            1.0, False, 1024, api_name="/stylize")
    out = np.asarray(Image.open(result))
    assert out.shape == (64, 96, 3)
    photo = np.asarray(Image.open(small_photo).convert("RGB")).astype(np.float32)
    assert np.abs(out.astype(np.float32) - photo).mean() > 10  # stylized, not the photo echoed back
    with pytest.raises(AppError, match="weights are all zero"):
        client.predict(handle_file(str(small_photo)), "starry_night", 0.0, None, 0.5, None, 0.5, 1.0, False, 1024,
                       api_name="/stylize")
    not_image = small_photo.with_name("notes.png")
    not_image.write_text("hello")
    with pytest.raises(AppError, match="'notes.png' is not an image this tool can read"):  # our one-line error
        client.predict(handle_file(str(not_image)), "starry_night", 1.0, None, 0.5, None, 0.5, 1.0, False, 1024,
                       api_name="/stylize")


SCREAM = ROOT.parent / "shared" / "data" / "styles" / "the_scream.jpg"


def test_an_added_style_belongs_to_its_session(server, small_photo):
    """Two visitors: A adds a style and stylizes with it; B does not see it; nothing is written to the host's
    model file or $MULTISTYLE_HOME; A can download the extended model; A's session is released when A leaves."""
    from gradio_client import Client, handle_file

    from multistyle.apps.demo import DemoOptions
    from multistyle.modelfile import load_model
    from multistyle.paths import user_data_dir

    url, user_model, app = server
    host = app.multistyle_host
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    gallery, _, message, learned = a.predict(handle_file(str(SCREAM)), "My Scream", 2, api_name="/add_style")
    assert max(Image.open(learned).size) == 384  # the bundled photo in the learned style
    assert "my_scream" in message and "this visit only" in message and len(gallery) == 14
    result = a.predict(handle_file(str(small_photo)), "my_scream", 1.0, None, 0.5, None, 0.5, 1.0, False, 256,
                       api_name="/stylize")
    assert Image.open(result).size == (96, 64)
    with pytest.raises(AppError, match="unknown style 'my_scream'"):
        b.predict(handle_file(str(small_photo)), "my_scream", 1.0, None, 0.5, None, 0.5, 1.0, False, 256,
                  api_name="/stylize")
    assert not user_model.exists() and not any(user_data_dir().iterdir() if user_data_dir().exists() else [])
    [session] = [s for s in host.sessions.values() if s.model is not None]
    assert load_model(session.model_file)[0].style_names[-1] == "my_scream"  # what A's download button offers
    host.options.max_added_styles = 1  # the cap a public link needs, checked before any training
    try:
        with pytest.raises(AppError, match="the most one visit may add"):
            a.predict(handle_file(str(SCREAM)), "again", 2, api_name="/add_style")
    finally:
        host.options.max_added_styles = 3
    with pytest.raises(AppError, match=f"greater than maximum value {DemoOptions().add_style_max_steps}"):  # no hogging the trainer
        b.predict(handle_file(str(SCREAM)), "huge", 100000, api_name="/add_style")
    folder = session.folder
    a.close()  # the visitor leaves: their styles and download file go now, not an hour later
    assert wait_for(lambda: host.holding() == 0 and not Path(folder).exists()), (host.holding(), folder)
    b.close()


def test_save_styles_keeps_todays_behaviour(tmp_path_factory, small_photo):
    """``multistyle demo --save-styles``: the added style goes to the host's user model file and every visitor
    then has it."""
    from gradio_client import Client, handle_file

    from multistyle.modelfile import load_model

    url, app = start(tmp_path_factory, save_styles=True)
    try:
        user_model = app.multistyle_host.user_model
        _, _, message, _ = Client(url, verbose=False).predict(handle_file(str(SCREAM)), "My Scream", 2,
                                                           api_name="/add_style")
        assert "saved in the host's model file" in message
        assert load_model(user_model)[0].style_names[-1] == "my_scream"
        result = Client(url, verbose=False).predict(handle_file(str(small_photo)), "my_scream", 1.0, None, 0.5,
                                                    None, 0.5, 1.0, False, 256, api_name="/stylize")
        assert Image.open(result).size == (96, 64)
    finally:
        app.close()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = ROOT / "docs" / "live_tab.png"  # README's; rewritten by the live test with MULTISTYLE_SCREENSHOTS=1


def require_chromium() -> None:
    """Without Debian's chromium the browser tests are skipped on a developer's machine, but under CI (which
    installs it) a missing browser is a failure, so the tests can never silently stop running there."""
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail("CI is set but Debian's chromium is missing; .ci/run installs it with apt-get install chromium")
    pytest.skip("needs Debian's chromium: apt-get install chromium (CI installs it and runs this test)")


def fetch_image(page, url: str, selector: str) -> np.ndarray:
    src = page.locator(selector).get_attribute("src")
    shown = page.request.get(src if "://" in src else url.rstrip("/") + "/" + src.lstrip("/"))
    assert shown.ok, src
    return np.asarray(Image.open(io.BytesIO(shown.body())).convert("RGB")).astype(np.float32)


def test_real_browser_stylize_tab_renders_without_a_button(server, small_photo):
    """Headless Debian Chromium via Playwright: upload a photo and the stylized result appears with no click;
    ticking "keep the colours" re-renders it at once; the bundled photos are offered as examples."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    from benchmarks.demo_browser import BROWSER_ARGS

    url, _, _ = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("tab", name="Stylize").click()
        assert page.get_by_text("No photo at hand? Try one of these").is_visible()
        page.locator("#photo input[type=file]").set_input_files(str(small_photo))
        result = page.locator("#result-image img")
        result.wait_for(state="visible", timeout=60_000)
        first_src = result.get_attribute("src")
        first = fetch_image(page, url, "#result-image img")
        page.locator("#stylize-colours input").check()
        page.wait_for_function(f"document.querySelector('#result-image img').src !== {first_src!r}",
                               timeout=60_000)
        second = fetch_image(page, url, "#result-image img")
        browser.close()
    photo = np.asarray(Image.open(small_photo).convert("RGB")).astype(np.float32)
    assert first.shape == photo.shape  # the page shows a result for the uploaded photo, at its size
    assert np.abs(first - photo).mean() > 10  # ... and it is stylized, not the photo echoed back
    assert np.abs(second - first).mean() > 3  # the colour box re-rendered it


def test_live_stream_caps_frames_and_keeps_its_own_flicker_state():
    """A Live-tab stream: any frame size in, at most the live size out (RGB in, RGB out: the same pixels as the
    webcam app's FrameStylizer on the BGR frame), and each visitor's flicker reduction sees only their frames."""
    from benchmarks.demo_browser import camera_frames, decode_data_url
    from multistyle.apps.demo.live import LiveStream, encode_jpeg_data_url
    from multistyle.styles import style_weights
    from multistyle.stylizer import get_stylizer
    from multistyle.video.frames import FrameSettings, FrameStylizer

    stylizer = get_stylizer(None, "cpu")
    settings = FrameSettings(style_weights("udnie", stylizer.names))
    frames = [f[:, :, ::-1].copy() for f in camera_frames(4)]  # RGB 640x480, as the browser sends them
    a, b = LiveStream(stylizer, 64, settings), LiveStream(stylizer, 64, settings)
    outs = [a(f, settings) for f in frames]
    assert all(o.shape == (48, 64, 3) and o.dtype == np.uint8 for o in outs)
    webcam = FrameStylizer(stylizer, settings, 64).infer(np.ascontiguousarray(frames[0][:, :, ::-1]))[1]
    assert np.array_equal(outs[0], webcam[:, :, ::-1])
    alone = LiveStream(stylizer, 64, settings)(frames[3], settings)
    assert np.array_equal(b(frames[3], settings), alone)  # b never blended in a's frames ...
    assert not np.array_equal(outs[3], alone)  # ... while a's reduction used its previous frame
    url = encode_jpeg_data_url(outs[0])
    assert url.startswith("data:image/jpeg;base64,") and decode_data_url(url).shape == (48, 64, 3)


def style_renders(frames: list[np.ndarray], size: int, styles: list[str]) -> dict[str, list[np.ndarray]]:
    """What the Live tab should show for each camera frame (mirrored like the webcam, at the live size) in each
    style: RGB float32, without flicker reduction."""
    import cv2

    from multistyle.styles import style_weights
    from multistyle.stylizer import get_stylizer
    from multistyle.video.frames import FrameSettings, FrameStylizer
    from multistyle.video.sources import resize_for_processing

    stylizer = get_stylizer(None, "cpu")
    out: dict[str, list[np.ndarray]] = {"camera": []}
    mirrored = [resize_for_processing(cv2.flip(f, 1), size) for f in frames]
    out["camera"] = [f[:, :, ::-1].astype(np.float32) for f in mirrored]
    for style in styles:
        process = FrameStylizer(stylizer, FrameSettings(style_weights(style, stylizer.names), flicker=False), size)
        out[style] = [process(f)[1][:, :, ::-1].astype(np.float32) for f in mirrored]
    return out


def nearest(frame: np.ndarray, candidates: list[np.ndarray]) -> float:
    """Mean absolute difference to the closest candidate (same size)."""
    return min(float(np.abs(frame - c).mean()) for c in candidates if c.shape == frame.shape)


def live_frames(page, after: int = 0) -> list[np.ndarray]:
    from benchmarks.demo_browser import decode_data_url, live_log

    return [decode_data_url(u).astype(np.float32) for u in live_log(page)["srcs"][after:]]


def test_real_browser_live_tab_streams_stylized_frames(server, tmp_path):
    """Headless Chromium with a fake camera (bunny.mp4 as a looping .y4m): the Live tab delivers a stream of
    distinct stylized frames, each nearer the network's rendering of a camera frame in the chosen style than the
    camera frame itself; after another style is picked, the frames follow that style."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    from benchmarks.demo_browser import camera_frames, launch_browser, live_log, start_live, write_y4m

    url, _, app = server
    first, second = "composition_vii", "great_wave"
    y4m = write_y4m(tmp_path / "camera.y4m", frames=48)
    expected = style_renders(camera_frames(48), LIVE_SIZE, [first, second])
    with sync_playwright() as p:
        browser = launch_browser(p, y4m)
        page = browser.new_context(permissions=["camera"], viewport={"width": 1280, "height": 900}).new_page()
        start_live(page, url)
        page.wait_for_function("window.__live.srcs.length >= 6", timeout=90_000)
        before = live_frames(page)
        assert re.search(r"\d+\.\d fps served · \d+×\d+ px", page.locator("#live-fps").inner_text())
        menu = page.locator("#live-style-1 input")
        menu.fill(second)
        menu.press("Enter")
        switched = len(live_log(page)["srcs"])
        page.wait_for_function(f"window.__live.shows.length >= {len(live_log(page)['shows']) + 8}", timeout=90_000)
        after = live_frames(page)[-4:]
        page.screenshot(path=str(tmp_path / "live_tab.png"))
        if os.environ.get("MULTISTYLE_SCREENSHOTS"):
            shutil.copy(tmp_path / "live_tab.png", SCREENSHOT)
        browser.close()
    assert switched >= 6 and len({f.tobytes() for f in before}) >= 4  # a stream of distinct frames
    h, w = expected["camera"][0].shape[:2]
    assert all(f.shape == (h, w, 3) for f in before + after)  # capped to the live size on the server
    for frame in before:  # stylized in the first style, not the camera frame passed through
        assert nearest(frame, expected[first]) < nearest(frame, expected["camera"]) - 5
        assert nearest(frame, expected[first]) < nearest(frame, expected[second])
    for frame in after:  # ... and in the second one after the switch
        assert nearest(frame, expected[second]) < nearest(frame, expected[first])
    assert app.multistyle_host.holding() >= 0


def test_client_gatys_tab_loads_vgg_once(server, small_photo, monkeypatch):
    """Two Gatys requests: real results, and the VGG19 loss network is built at most once (not per request)."""
    from gradio_client import Client, handle_file

    import multistyle.loss.networks as lossnets

    built = []
    real_build = lossnets.build_loss_net
    monkeypatch.setattr(lossnets, "build_loss_net", lambda *a, **k: built.append(a) or real_build(*a, **k))
    url, _, _ = server
    client = Client(url, verbose=False)
    painting = ROOT.parent / "shared" / "data" / "styles" / "starry_night.jpg"
    counts = []
    for _ in range(2):
        result = client.predict(handle_file(str(small_photo)), handle_file(str(painting)), 64, 10, False,
                                api_name="/gatys")
        counts.append(len(built))
        out = np.asarray(Image.open(result).convert("RGB")).astype(np.float32)
        assert out.shape == (43, 64, 3)
    photo = np.asarray(Image.open(small_photo).convert("RGB").resize((64, 43))).astype(np.float32)
    assert np.abs(out - photo).mean() > 5  # optimised towards the painting, not the photo returned
    assert counts[0] <= 2 and counts[1] == counts[0], built  # the Gatys loss and the head start's, once each


def test_live_size_adapts_to_the_server_and_keeps_the_shown_size():
    """A stream whose frames take longer than the target rate allows is processed smaller (never below half the
    live size) and shown at the same size; with room again it goes back up to the live size."""
    from benchmarks.demo_browser import camera_frames
    from multistyle.apps.demo.live import MIN_FACTOR, AdaptiveSize, LiveStream
    from multistyle.styles import style_weights
    from multistyle.stylizer import get_stylizer
    from multistyle.video.frames import FrameSettings

    adaptive = AdaptiveSize(480, target_fps=10)
    for _ in range(20):
        adaptive._changed = 0.0  # as if a second had passed
        adaptive.update(server_ms=400, frames=10)
    assert adaptive.factor == MIN_FACTOR and adaptive.current() == 240
    for _ in range(20):
        adaptive._changed = 0.0
        adaptive.update(server_ms=10, frames=10)
    assert adaptive.factor == 1.0 and adaptive.current() == 480
    stylizer = get_stylizer(None, "cpu")
    settings = FrameSettings(style_weights("udnie", stylizer.names))
    stream = LiveStream(stylizer, 64, settings, target_fps=10)
    stream.adaptive.factor = MIN_FACTOR
    frame = camera_frames(1)[0][:, :, ::-1].copy()
    out = stream(frame, settings)
    assert out.shape == (48, 64, 3) and stream.shape == (24, 32) and "lowered" in stream.status()


def test_add_style_tab_previews_any_painting_at_once(server):
    """Uploading a painting shows the bundled photo in its zero-shot style (no training) within seconds, and the
    visitor's session stays empty (nothing learned, nothing stored)."""
    from gradio_client import Client, handle_file

    url, _, app = server
    client = Client(url, verbose=False)
    start = time.perf_counter()
    out = np.asarray(Image.open(client.predict(handle_file(str(SCREAM)), api_name="/zero_shot")).convert("RGB"))
    assert time.perf_counter() - start < 20 and max(out.shape[:2]) == 384
    assert out.std() > 10 and app.multistyle_host.sessions.get(client.session_hash) is None
    client.close()
