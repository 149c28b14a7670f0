"""The Gradio demo: launched on localhost, driven by gradio_client and by a real headless Chromium."""

from __future__ import annotations

import io
import os
import shutil
import socket

import numpy as np
import pytest
from conftest import ROOT
from gradio_client.exceptions import AppError
from PIL import Image

PHOTO = ROOT / "examples" / "chelsea_cat.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from multistyle.apps.demo import build_app, launch

    user_model = tmp_path_factory.mktemp("user") / "model.safetensors"
    app = build_app(device="cpu", user_model=user_model)
    port = free_port()
    launch(app, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}/", user_model
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

    url, _ = server
    client = Client(url, verbose=False)
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
    with pytest.raises(AppError, match="cannot identify image file"):  # refused by the upload itself
        client.predict(handle_file(str(not_image)), "starry_night", 1.0, None, 0.5, None, 0.5, 1.0, False, 1024,
                       api_name="/stylize")


def test_client_add_style_persists(server, small_photo):
    from gradio_client import Client, handle_file

    url, user_model = server
    client = Client(url, verbose=False)
    painting = ROOT.parent / "shared" / "data" / "styles" / "the_scream.jpg"
    gallery, dropdown, message = client.predict(handle_file(str(painting)), "My Scream", 10, api_name="/add_style")
    assert "my_scream" in message and user_model.is_file()
    from multistyle.modelfile import load_model

    assert load_model(user_model)[0].style_names[-1] == "my_scream"
    result = client.predict(handle_file(str(small_photo)), "my_scream", 1.0, None, 0.5, None, 0.5, 1.0, False, 256,
                            api_name="/stylize")
    assert Image.open(result).size == (96, 64)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def require_chromium() -> None:
    """Without Debian's chromium the browser test is skipped on a developer's machine, but under CI (which
    installs it) a missing browser is a failure, so the test can never silently stop running there."""
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail("CI is set but Debian's chromium is missing; .ci/run installs it with apt-get install chromium")
    pytest.skip("needs Debian's chromium: apt-get install chromium (CI installs it and runs this test)")


def test_real_browser_upload_and_stylize(server, small_photo, tmp_path):
    """Headless Debian Chromium via Playwright: upload, click Stylize, the stylized image appears in the page."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.goto(url)
        page.locator("input[type=file]").first.set_input_files(str(small_photo))
        page.wait_for_timeout(1000)
        page.locator("#stylize-button").click()
        result = page.locator("#result-image img")
        result.wait_for(state="visible", timeout=60_000)
        src = result.get_attribute("src")
        shown = page.request.get(src if "://" in src else url.rstrip("/") + "/" + src.lstrip("/"))
        assert shown.ok, src
        body = shown.body()
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    out = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(np.float32)
    photo = np.asarray(Image.open(small_photo).convert("RGB")).astype(np.float32)
    assert out.shape == photo.shape  # the page shows a result for the uploaded photo, at its size
    assert np.abs(out - photo).mean() > 10  # ... and it is stylized, not the photo echoed back


def test_client_gatys_tab_loads_vgg_once(server, small_photo, monkeypatch):
    """Two Gatys requests: real results, and the VGG19 loss network is built at most once (not per request)."""
    from gradio_client import Client, handle_file

    import multistyle.loss.networks as lossnets

    built = []
    real_build = lossnets.build_loss_net
    monkeypatch.setattr(lossnets, "build_loss_net", lambda *a, **k: built.append(a) or real_build(*a, **k))
    url, _ = server
    client = Client(url, verbose=False)
    painting = ROOT.parent / "shared" / "data" / "styles" / "starry_night.jpg"
    for _ in range(2):
        result = client.predict(handle_file(str(small_photo)), handle_file(str(painting)), 64, 10, False,
                                api_name="/gatys")
        out = np.asarray(Image.open(result).convert("RGB")).astype(np.float32)
        assert out.shape == (43, 64, 3)
    photo = np.asarray(Image.open(small_photo).convert("RGB").resize((64, 43))).astype(np.float32)
    assert np.abs(out - photo).mean() > 5  # optimised towards the painting, not the photo returned
    assert len(built) <= 1, built
