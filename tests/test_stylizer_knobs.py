"""Stroke scale, refine mode, stored paintings, the γ/β cache and the webcam's uint8 device path."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import DATA, ROOT

import multistyle
from multistyle.errors import StyleError
from multistyle.images import load_image
from multistyle.modelfile import PACKAGED_MODEL, get_model, load_model, save_model
from multistyle.refine import NO_PAINTINGS, model_loss, style_paintings
from multistyle.styles import style_weights
from multistyle.stylizer import get_stylizer
from multistyle.video.frames import FrameSettings, FrameStylizer
from multistyle.video.sources import resize_for_processing

PHOTO = ROOT / "examples" / "tubingen.jpg"


@pytest.fixture(scope="module")
def photo():
    return load_image(PHOTO, max_size=96)


@pytest.fixture(scope="module")
def no_paintings(tmp_path_factory):
    """A copy of the shipped model without its stored paintings (like files written before they existed)."""
    model, _ = load_model(PACKAGED_MODEL)
    for style in model.styles:
        style.painting = None
    return save_model(model, tmp_path_factory.mktemp("old") / "old.safetensors")


def high_frequency(image: torch.Tensor) -> float:
    """Mean |Laplacian| of the grey image: fine strokes give more, bold strokes less."""
    kernel = torch.tensor([[[[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]]])
    return float(F.conv2d(image.mean(1, keepdim=True), kernel).abs().mean())


def test_scale_half_paints_bolder_strokes_at_full_size(photo):
    full = multistyle.stylize(photo, "starry_night", device="cpu")
    half = multistyle.stylize(photo, "starry_night", device="cpu", scale=0.5)
    double = multistyle.stylize(photo, "udnie", device="cpu", scale=2.0)
    assert half.shape == full.shape == double.shape == photo.shape
    assert high_frequency(half) < 0.5 * high_frequency(full)  # measured ≈ 0.25×
    assert high_frequency(double) > high_frequency(multistyle.stylize(photo, "udnie", device="cpu"))
    guided = multistyle.stylize(photo, "starry_night", device="cpu", scale=0.5, upsample="guided")
    assert guided.shape == photo.shape and not torch.equal(guided, half)


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_scale_on_an_8_bit_picture_runs_the_compiled_graph_like_the_float_path(photo, strength):
    """An 8-bit picture at a stroke scale takes the compiled uint8 graph at the scaled size (OpenCV resizes, the
    strength blend at full size): the float path's picture within 2 levels on average."""
    rgb = (photo[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    fast = multistyle.stylize(rgb, "starry_night", device="cpu", scale=0.5, strength=strength)
    slow = multistyle.stylize(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, "starry_night",
                              device="cpu", scale=0.5, strength=strength)
    assert fast.dtype == np.uint8 and fast.shape == rgb.shape
    assert np.abs(fast.astype(np.float64) - (slow[0].permute(1, 2, 0).numpy() * 255).round()).mean() < 2.0


@pytest.mark.parametrize("bad", [0, 0.05, 5, float("nan"), float("inf"), "0.5", True, None])
def test_scale_is_validated(photo, bad):
    with pytest.raises(StyleError, match="scale must be a number between 0.1 and 4"):
        multistyle.stylize(photo, 0, device="cpu", scale=bad)


def test_refine_lowers_the_models_loss(photo):
    small = photo[..., ::2, ::2].contiguous()  # 48 x 36
    model = get_model()
    index = model.style_names.index("great_wave")
    loss = model_loss(model)
    grams = loss.style_targets(style_paintings(model, [index])).blend()
    with torch.no_grad():
        def total(image: torch.Tensor) -> float:
            return float(loss(image, loss.content_targets(small), grams).total)
        plain = multistyle.stylize(small, "great_wave", device="cpu")
        refined = multistyle.stylize(small, "great_wave", device="cpu", refine=8)
        assert refined.shape == small.shape
        assert total(refined) < 0.9 * total(plain)
    with pytest.raises(StyleError, match="refine must be a whole number"):
        multistyle.stylize(small, 0, device="cpu", refine=-1)


def test_refine_needs_stored_paintings(photo, no_paintings):
    with pytest.raises(StyleError) as info:
        multistyle.stylize(photo, 0, device="cpu", refine=2, model=no_paintings)
    assert str(info.value) == NO_PAINTINGS
    assert get_model(no_paintings).styles[0].painting is None


def test_shipped_model_stores_every_painting_at_its_style_size():
    model = get_model()
    for style in model.styles:
        assert style.painting is not None and style.painting.dtype == torch.uint8
        assert max(style.painting.shape[:2]) == style.training["style_size"] == 256
    reference = load_image(DATA / "styles" / model.styles[0].source, max_size=256)
    stored = model.styles[0].painting.permute(2, 0, 1)[None].float() / 255
    # PNG is lossless: the stored painting is the file at 256 px (stored when the model was trained, resized with
    # kornia's filter then; torch's antialias filter now: a different blur, the same picture)
    assert (stored - reference).abs().mean() <= 2 / 255


def test_gamma_beta_cache_is_exact_and_follows_the_mix(photo):
    net = copy.deepcopy(get_model().net).eval()
    x = F.pad(photo, (0, 0, 0, 0))[..., :72, :96]
    weights = style_weights({"udnie": 0.6, "great_wave": 0.4}, get_model().style_names)
    with torch.inference_mode():
        first = net(x, weights)
        assert all(norm._affine_cache is not None for norm in net.norms())
        cached = net(x, weights)
        weights[0].zero_()
        weights[0, 3] = 1.0  # the same tensor, changed in place: the cache must notice
        changed = net(x, weights)
    fresh = copy.deepcopy(net)  # copies start without a cache
    assert all(norm._affine_cache is None for norm in fresh.norms())
    with torch.inference_mode():
        expected = fresh(x, torch.nn.functional.one_hot(torch.tensor([3]), net.num_styles).float())
    assert torch.equal(first, cached)
    assert torch.equal(changed, expected) and not torch.equal(changed, first)


def test_uint8_device_path_matches_float_path():
    cap = cv2.VideoCapture(str(DATA / "video" / "bunny.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    stylizer = get_stylizer(device="cpu")
    settings = FrameSettings(style_weights("the_scream", stylizer.names), strength=0.8, flicker=False)
    small, out = FrameStylizer(stylizer, settings, 128).infer(frame)
    assert out.dtype == np.uint8 and out.shape == small.shape == resize_for_processing(frame, 128).shape
    rgb = torch.from_numpy(small[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    reference = multistyle.stylize(rgb, "the_scream", strength=0.8, device="cpu")
    reference = (reference[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round()
    assert np.abs(out.astype(np.float64) - reference).max() <= 1.0


def test_refine_with_a_budget_stops_in_time():
    """Stylizer(..., refine=N, seconds=S): the budget (network included) ends refine long before N iterations; a
    budget shorter than one iteration leaves at most the first, and the picture keeps its size."""
    photo = load_image(PHOTO, max_size=64)
    stylizer = get_stylizer(None, "cpu")
    seen = []
    out = stylizer(photo, torch.eye(len(stylizer.names))[:1], refine=10_000, seconds=1e-3,
                   progress=lambda i, n, losses: seen.append(i))
    assert out.shape == photo.shape and len(seen) <= 1, seen
