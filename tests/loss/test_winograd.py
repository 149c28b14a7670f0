"""multistyle.loss.winograd: Winograd F(4x4, 3x3) convolution + ReLU with its adjoint gradient, against torch's own
convolution; and the real VGG19 loss network inside ``fast_convolutions``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from multistyle.loss import winograd
from multistyle.loss.winograd import fast_convolutions, fast_enabled, winograd_conv3x3_relu, winograd_filters


@pytest.mark.parametrize("band_bytes", [1, winograd.BAND_BYTES])  # one tile row per band, and the default bands
@pytest.mark.parametrize("shape", [(1, 3, 5, 8, 8), (2, 4, 6, 13, 11), (1, 8, 8, 16, 12), (1, 5, 7, 1, 1),
                                   (1, 64, 128, 21, 18)])
def test_matches_torch_convolution_and_its_input_gradient(shape, band_bytes, monkeypatch):
    """Exact (float64) for any size, batch and band split: sizes off the 4-pixel grid, a 1×1 map, several bands."""
    monkeypatch.setattr(winograd, "BAND_BYTES", band_bytes)
    b, c, o, h, w = shape
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(o, c, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(o, generator=gen, dtype=torch.float64) + 0.5
    x = torch.randn(b, c, h, w, generator=gen, dtype=torch.float64).requires_grad_(True)
    out = winograd_conv3x3_relu(x, winograd_filters(weight), bias)
    ref = F.relu(F.conv2d(x, weight, bias, padding=1))
    assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-10)
    upstream = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    (ours,) = torch.autograd.grad((out * upstream).sum(), x)
    (theirs,) = torch.autograd.grad((ref * upstream).sum(), x)
    assert torch.allclose(ours, theirs, atol=1e-10)
    assert (ref == 0).any() and (ref > 0).any()  # the ReLU's mask was exercised


def test_float32_error_and_bad_filters():
    gen = torch.Generator().manual_seed(1)
    weight, bias = torch.randn(256, 128, 3, 3, generator=gen) / 34, torch.randn(256, generator=gen)
    x = torch.randn(1, 128, 24, 20, generator=gen).relu() * 50  # VGG-scale activations
    ref = F.relu(F.conv2d(x, weight, bias, padding=1))
    error = (winograd_conv3x3_relu(x, winograd_filters(weight), bias) - ref).abs().max() / ref.abs().max()
    assert error < 1e-4  # ~1e-5 measured; bf16 would be ~4e-3
    with pytest.raises(ValueError, match="3x3"):
        winograd_filters(torch.zeros(4, 4, 5, 5))


def test_fast_convolutions_is_scoped():
    assert not fast_enabled()
    with fast_convolutions():
        assert fast_enabled()
        with fast_convolutions(False):
            assert not fast_enabled()
        assert fast_enabled()
    assert not fast_enabled()


def test_vgg_features_and_image_gradient_agree_with_the_direct_convolutions(loss_net, tubingen, starry):
    """The real loss network at 160 px (Winograd on conv2_1 … conv4_2 here): the same loss and image gradient as
    oneDNN's direct convolutions, to float32 rounding; the transformed filters are made once and kept."""
    from multistyle.images import resize_long_side

    photo = resize_long_side(tubingen, 160)
    targets = loss_net.content_targets(photo)
    grams = loss_net.style_targets([starry], cache=False).blend()
    image = (photo + 0.1 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    results = []
    for fast in (False, True):
        x = image.clone().requires_grad_(True)
        with fast_convolutions(fast):
            total = loss_net(x, targets, grams).total
        total.backward()
        results.append((total.item(), x.grad))
    (direct, g_direct), (fast, g_fast) = results
    assert fast == pytest.approx(direct, rel=1e-4)
    assert float((g_fast - g_direct).norm() / g_direct.norm()) < 1e-3
    made = dict(loss_net.vgg._winograd)
    assert {name for name, _ in made} >= {"conv2_1", "conv3_1", "conv4_1"} and "conv1_2" not in {n for n, _ in made}
    with fast_convolutions():
        loss_net(image, targets, grams)
    assert all(loss_net.vgg._winograd[key] is made[key] for key in made)
