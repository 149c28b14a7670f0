"""Shared perceptual losses and style targets."""

from __future__ import annotations

import math

import pytest
import torch

from multistyle.errors import StyleError
from multistyle.loss.perceptual import LossConfig, StyleTargets, gram_matrix, style_loss
from multistyle.styles import validate_blend_weights


def test_gram_loss_zero_for_self_and_grows_with_difference(loss_net, tubingen, starry, wave):
    layers, weights = loss_net.config.style_layers, loss_net.config.layer_weights
    targets = loss_net.style_targets([tubingen], cache=False).grams
    feats = lambda x: loss_net.vgg(x, layers)  # noqa: E731
    self_loss = style_loss(feats(tubingen), targets, layers, weights)
    assert float(self_loss) == 0.0
    near = style_loss(feats(torch.flip(tubingen, dims=[-1])), targets, layers, weights)  # same colours/textures
    far = style_loss(feats(starry), targets, layers, weights)
    assert 0 < float(near) < float(far)


def test_gram_matrix_normalised():
    x = torch.ones(2, 4, 3, 5)
    g = gram_matrix(x)
    assert g.shape == (2, 4, 4)
    assert torch.allclose(g, torch.full((2, 4, 4), 1 / 4))


def test_blend_weights_validated():
    assert torch.allclose(validate_blend_weights([1, 3], 2), torch.tensor([0.25, 0.75]))
    for bad, message in (([1], "one weight per style"), ([-1, 2], ">= 0"), ([0, 0], "all zero"),
                         ([math.nan, 1], "finite")):
        with pytest.raises(StyleError, match=message):
            validate_blend_weights(bad, 2)


def test_style_targets_blend_select_and_cache(loss_net, starry, wave, tmp_path):
    layers = loss_net.config.style_layers
    computed = StyleTargets.compute(loss_net.vgg, [starry, wave], layers, ["starry", "wave"])
    cached = StyleTargets.cached(loss_net.vgg, [starry, wave], layers, ["starry", "wave"], directory=tmp_path)
    again = StyleTargets.cached(loss_net.vgg, [starry, wave], layers, ["starry", "wave"], directory=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    sorted(tmp_path.iterdir())[0].unlink()  # one hit (loaded on the CPU) and one miss (on the VGG's device)
    mixed = StyleTargets.cached(loss_net.vgg, [starry, wave], layers, ["starry", "wave"], directory=tmp_path)
    for layer in layers:
        assert torch.allclose(computed.grams[layer], cached.grams[layer])
        assert torch.equal(cached.grams[layer], again.grams[layer])
        assert torch.equal(cached.grams[layer], mixed.grams[layer])
    blend = computed.blend([0.25, 0.75])
    picked = computed.select(torch.tensor([1, 0, 1]))
    for layer in layers:
        g = computed.grams[layer]
        assert torch.allclose(blend[layer][0], 0.25 * g[0] + 0.75 * g[1])
        assert torch.equal(picked[layer][0], g[1]) and torch.equal(picked[layer][1], g[0])
    with pytest.raises(StyleError):
        computed.blend([0, 0])


def test_loss_config_round_trip_and_validation():
    cfg = LossConfig(style_weight=123.0, style_layers=("relu1_1", "relu2_1"))
    assert LossConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="style-weight"):
        LossConfig(style_weight=-1)


def test_trimmed_leaves_out_only_negligible_deep_style_layers(loss_net, tubingen, starry):
    """``trimmed`` drops the deepest style layers (past the content layer) whose share of the loss is below the
    threshold: the same VGG, the other layers' weights kept, the total lower by less than that share."""
    grams = loss_net.style_targets([starry], cache=False).blend()
    content = loss_net.content_targets(tubingen)
    full = float(loss_net(tubingen, content, grams).total)
    assert loss_net.trimmed(tubingen, content, grams, 0.0) is loss_net
    trimmed = loss_net.trimmed(tubingen, content, grams, 0.01)
    kept = trimmed.config.style_layers
    assert trimmed.vgg is loss_net.vgg and "relu5_1" not in kept and kept == loss_net.config.style_layers[: len(kept)]
    assert trimmed.config.layer_weights == loss_net.config.layer_weights[: len(kept)]
    assert 0.99 * full < float(trimmed(tubingen, content, grams).total) <= full
