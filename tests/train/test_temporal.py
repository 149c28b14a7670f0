"""The warp-consistency term: random warps are small and smooth, a zero warp is the identity, a network that
commutes with warps scores zero, and the shipped network does not (so the term has something to teach)."""

from __future__ import annotations

import pytest
import torch

from multistyle.modelfile import get_model
from multistyle.train.temporal import WarpRange, apply_grid, random_grid, temporal_loss


def test_a_zero_warp_is_the_identity_and_random_warps_stay_small():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 48, 64, generator=g)
    still = WarpRange(shift=0, rotate=0, zoom=0, local=0, noise=0)
    same, inside = apply_grid(x, random_grid(2, 48, 64, g, still))
    assert torch.allclose(same, x, atol=1e-5) and bool(inside.all())
    grid = random_grid(2, 48, 64, g)
    identity = random_grid(2, 48, 64, g, still)
    assert 0 < (grid - identity).abs().max() < 0.2  # at most ~10 % of the frame
    _, inside = apply_grid(x, grid)
    assert 0.7 < inside.mean() < 1.0  # some border pixels come from outside the frame


def test_a_net_that_commutes_with_warps_scores_zero_and_the_shipped_net_does_not(tubingen):
    g = torch.Generator().manual_seed(1)
    x = tubingen[..., :64, :64]
    identity = lambda image, style: image  # noqa: E731 - commutes with every warp
    quiet = WarpRange(noise=0.0)
    assert temporal_loss(identity, x, x, torch.tensor([0]), g, quiet) < 1e-5
    net = get_model("v2").net
    with torch.no_grad():
        out = net(x, torch.tensor([0]))
        assert temporal_loss(net, x, out, torch.tensor([0]), g) > 0.01


def test_distill_fine_tunes_a_v2_teacher_with_the_temporal_term(tmp_path):
    """A v2 teacher is copied (same architecture, padding and styles) and the history records the temporal term;
    the total is the distillation loss plus temporal_weight × the temporal term."""
    from multistyle.images import list_images
    from multistyle.modelfile import PACKAGED_CONTENT, PACKAGED_MODEL, load_model
    from multistyle.train.distill import DistillConfig, distill

    config = DistillConfig(size=32, photo_size=48, batch=2, steps=2, workers=0, log_every=1, temporal_weight=2.0,
                           checkpoint_seconds=1e6)
    model = distill(PACKAGED_MODEL, list_images([PACKAGED_CONTENT])[:2], tmp_path / "s.safetensors", config,
                    log=lambda s: None)
    shipped = load_model(PACKAGED_MODEL)[0]
    assert model.net.arch_params() == shipped.net.arch_params() and model.style_names == shipped.style_names
    history = load_model(tmp_path / "s.train.safetensors")[0].extra["history"]
    assert [h["step"] for h in history] == [1, 2]
    for h in history:
        assert h["temporal"] > 0 and h["total"] == pytest.approx(h["pixel"] + h["grad"] + 2.0 * h["temporal"], rel=1e-4)
