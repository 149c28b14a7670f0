"""Gatys image optimisation at tiny sizes with the real VGG19."""

from __future__ import annotations

import kornia
import pytest
import torch

from multistyle.gatys import GatysConfig, pyramid, split_steps, stylize_gatys


def test_pyramid_and_steps():
    assert pyramid(256, 64) == [64, 91, 128, 181, 256]
    assert pyramid(64, 64) == [64]
    assert split_steps(10, 3) == [3, 3, 4]


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_gatys_lowers_loss_by_large_factor(loss_net, tubingen, starry, optimizer):
    config = GatysConfig(size=64, steps=20, min_size=64, optimizer=optimizer, loss=loss_net.config)
    seen = []
    result = stylize_gatys(tubingen, [starry], config, loss=loss_net, device="cpu",
                           progress=lambda i, n, rec: seen.append((i, n)))
    first, last = result.history[0]["total"], result.history[-1]["total"]
    assert last < first / (5 if optimizer == "lbfgs" else 1.5), (first, last)
    assert seen[-1] == (20, 20) and len(result.history) == 20
    assert result.image.shape == (1, 3, 48, 64) and 0 <= result.image.min() and result.image.max() <= 1


def test_multiscale_noise_init_and_blend(loss_net, tubingen, starry, wave):
    config = GatysConfig(size=64, steps=6, min_size=30, init="noise", seed=3, loss=loss_net.config)
    a = stylize_gatys(tubingen, [starry, wave], config, style_weights=[1, 1], loss=loss_net, device="cpu")
    b = stylize_gatys(tubingen, [starry, wave], config, style_weights=[1, 1], loss=loss_net, device="cpu")
    assert {h["size"] for h in a.history} == {32, 45, 64}
    assert torch.equal(a.image, b.image)  # seeded


def test_preserve_color_keeps_content_chroma(loss_net, tubingen, starry):
    base = dict(size=64, steps=16, min_size=64, loss=loss_net.config)  # 8 left plain near the photo (L-BFGS restarts)
    plain = stylize_gatys(tubingen, [starry], GatysConfig(**base), loss=loss_net, device="cpu").image
    kept = stylize_gatys(tubingen, [starry], GatysConfig(**base, preserve_color="luminance"), loss=loss_net,
                         device="cpu").image
    hist = stylize_gatys(tubingen, [starry], GatysConfig(**base, preserve_color="histogram"), loss=loss_net,
                         device="cpu").image
    chroma = lambda x: kornia.color.rgb_to_ycbcr(x)[:, 1:]  # noqa: E731
    content = chroma(tubingen)
    err = lambda x: (chroma(x) - content).abs().mean().item()  # noqa: E731
    assert err(kept) < 0.01 < err(plain)
    assert err(hist) < err(plain)


def test_bad_settings_rejected():
    for kwargs in ({"size": 0}, {"steps": 0}, {"optimizer": "sgd"}, {"noise_ratio": 2.0},
                   {"preserve_color": "sepia"}, {"first_step": 0.0}, {"first_step": 2.0}):
        with pytest.raises(ValueError):
            GatysConfig(**kwargs)


def test_large_style_weight_does_not_diverge(tubingen, starry):
    """L-BFGS without line search can overshoot with big weights; the optimiser must recover, not blow up."""
    from multistyle.loss import LossConfig, PerceptualLoss

    loss = PerceptualLoss(LossConfig(style_weight=1e5))
    result = stylize_gatys(tubingen, [starry], GatysConfig(size=64, steps=25, min_size=64, loss=loss.config),
                           loss=loss, device="cpu")
    totals = [h["total"] for h in result.history]
    with torch.no_grad():
        final = loss(result.image, loss.content_targets(tubingen), loss.style_targets([starry]).blend()).total
    assert float(final) < totals[0] / 5, (totals[0], float(final))


def test_histogram_colour_matching_stays_on_the_inputs_device(tubingen, starry):
    """match_color builds nothing on a fixed device: with factory functions defaulting to another device
    ("meta" stands in for a GPU here), CPU inputs still give the CPU result, with the content's colour stats."""
    from multistyle.color import match_color

    expected = match_color(starry, tubingen)
    with torch.device("meta"):
        result = match_color(starry, tubingen)
    assert result.device.type == "cpu" and torch.equal(result, expected)
    flat, ref = result.reshape(3, -1), tubingen.reshape(3, -1)
    assert torch.allclose(flat.mean(1), ref.mean(1), atol=0.03)


def test_a_budgeted_run_stops_within_the_budget_plus_one_iteration(loss_net, tubingen, starry):
    """seconds=: the run ends within the budget + one iteration, at the full size, keeping the best iterate; the
    budget is shared by the pyramid's levels (each gets some iterations), so it never ends at a coarse level."""
    budget = 1.5
    warm = GatysConfig(size=64, steps=3, min_size=32, loss=loss_net.config)  # first calls per shape are slow
    stylize_gatys(tubingen, [starry], warm, loss=loss_net, device="cpu")
    config = GatysConfig(size=64, steps=100_000, min_size=32, seconds=budget, loss=loss_net.config)
    totals = []
    result = stylize_gatys(tubingen, [starry], config, loss=loss_net, device="cpu",
                           progress=lambda i, n, rec: totals.append(n))
    times = [0.0] + [h["seconds"] for h in result.history]
    longest = max(b - a for a, b in zip(times, times[1:]))
    assert result.seconds <= budget + longest + 0.05, (result.seconds, longest)
    assert result.image.shape == (1, 3, 48, 64)
    assert {45, 64} <= {h["size"] for h in result.history}  # the coarsest level's share may go on its targets
    assert len(result.history) < 100_000 and totals[-1] < 100_000  # the progress total follows the budget
    with torch.no_grad():
        final = float(loss_net(result.image, loss_net.content_targets(tubingen),
                               loss_net.style_targets([starry]).blend()).total)
    assert final <= min(h["total"] for h in result.history if h["size"] == 64) * 1.001


def test_budget_validation():
    for bad in (0, -1.0, float("inf"), float("nan"), True, "3"):
        with pytest.raises(Exception, match="seconds"):
            GatysConfig(seconds=bad)
    assert GatysConfig(seconds=2).seconds == 2.0


def test_auto_precision_runs_winograd_where_bf16_is_not_native(tubingen, starry):
    """``precision="auto"`` (refine, --best, Gatys from the network): bf16 where the CPU has it natively, else the
    loss network's wide convolutions by Winograd in float32; the loss it reaches is the plain fp32 run's."""
    from multistyle.loss import LossConfig, PerceptualLoss
    from multistyle.precision import bf16_autocast_native

    native = bf16_autocast_native("cpu").bf16
    runs = {}
    for precision in ("fp32", "auto"):
        loss = PerceptualLoss(LossConfig())
        config = GatysConfig(size=96, steps=6, min_size=96, precision=precision, first_step=0.05, loss=loss.config)
        runs[precision] = stylize_gatys(tubingen, [starry], config, loss=loss, device="cpu")
        assert bool(loss.vgg._winograd) == (precision == "auto" and not native)
    fp32, auto = (runs[p].history[-1]["total"] for p in ("fp32", "auto"))
    assert auto == pytest.approx(fp32, rel=0.02 if native else 1e-3)
