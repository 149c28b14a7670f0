"""The add-style recipe and its optimisation (``multistyle/train/row_fit.py``): the presets' stages, L-BFGS and
Adam each lowering the loss (real VGG19, packaged model, tiny sizes)."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import STYLES

from multistyle.images import load_image, resize_long_side
from multistyle.modelfile import PACKAGED_CONTENT, PACKAGED_MODEL, get_model
from multistyle.precision import bf16_autocast_native
from multistyle.refine import model_loss
from multistyle.train.add_style import _content_photos, learn_style
from multistyle.train.row_fit import PRESETS, preset


def test_the_recipes_split_their_steps_over_sizes_and_optimisers():
    assert PRESETS["fast"].levels() == [(64, 10, "lbfgs"), (128, 48, "adam")]
    assert PRESETS["best"].levels() == [(64, 15, "lbfgs"), (128, 100, "adam"), (256, 120, "adam")]
    assert all(p.time_budget is None for p in PRESETS.values())  # a recipe is its work, the same on every CPU
    assert PRESETS["legacy"].levels() == [(128, 100, "adam"), (256, 100, "adam")]
    for steps in (1, 2, 7, 40):
        assert sum(n for _, n, _ in preset("fast", steps=steps).levels()) == steps
    with pytest.raises(ValueError, match="schedule"):
        preset("fast", schedule=((2, 1.0, "sgd"),))


NATIVE_BF16 = bf16_autocast_native("cpu")


@pytest.mark.parametrize("precision, precondition", [
    ("fp32", False),
    pytest.param("bf16", True, marks=pytest.mark.skipif(not NATIVE_BF16.bf16, reason="the bf16 path runs only where "
                                                        f"the CPU has it natively: {NATIVE_BF16.reason}"))])
def test_lbfgs_lowers_the_loss_in_either_precision(precision, precondition):
    """The L-BFGS stages (bf16 autocast or fp32, with or without the spread preconditioner) bring the training loss
    well below the warm start's, and the run records what it used."""
    model = get_model(PACKAGED_MODEL)
    painting = load_image(STYLES / "mondrian_tableau_2.jpg", max_size=128)
    totals = []
    config = preset("fast", steps=8, size=64, schedule=((1, 1.0, "lbfgs"),), batch=6, precision=precision,
                    precondition=precondition)
    learned = learn_style(model, painting, [PACKAGED_CONTENT], "mondrian2", "", config,
                          progress=lambda i, n, rec: totals.append(rec["total"]))
    assert len(totals) == 8 and min(totals[1:]) < 0.8 * totals[0], totals
    assert learned.styles[-1].training["precision"] == precision


def test_adam_one_photo_per_step_lowers_the_loss_over_all_photos():
    """The Adam stages (one photo per step, in turn, decaying rate) leave the new row with a lower loss over every
    training photo than the warm start it began from."""
    from multistyle.train.style_init import blend_weights, init_rows

    model = get_model(PACKAGED_MODEL)
    loss = model_loss(model, "cpu")
    painting = load_image(STYLES / "mondrian_tableau_2.jpg", max_size=128)
    config = preset("fast", steps=12, size=64, schedule=((1, 1.0, "adam"),), time_budget=None, precision="fp32")
    learned = learn_style(model, painting, [PACKAGED_CONTENT], "mondrian2", "", config, loss_fn=loss)
    start = copy.deepcopy(model.net)
    [new] = start.append_styles(1)
    init_rows(start, new, blend_weights(model, loss, resize_long_side(painting, 256)))
    grams = loss.style_targets([resize_long_side(painting, 256)]).blend()

    def total(net) -> float:
        with torch.no_grad():
            return sum(float(loss(net(g, torch.full((len(g),), new)), loss.content_targets(g), grams).total) * len(g)
                       for g in _content_photos([PACKAGED_CONTENT], config))
    before, after = total(start), total(learned.net)
    assert after < 0.85 * before, (before, after)
    assert learned.styles[-1].training["schedule"] == [[64, 12, "adam"]]
