"""Adding a style: the warm start, the recipes, old styles bit-identical, the script and its errors (real VGG19, tiny
sizes)."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import ROOT, STYLES, assert_one_line_error, run_cli, run_main

from multistyle.images import list_images, load_image
from multistyle.loss import PerceptualLoss
from multistyle.modelfile import PACKAGED_CONTENT, PACKAGED_MODEL, get_model, load_model
from multistyle.refine import model_loss
from multistyle.stylizer import pad_to_multiple
from multistyle.train.add_style import _content_photos, add_style, learn_style, preset
from multistyle.train.loop import TrainConfig, train


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    config = TrainConfig(size=32, batch=2, steps=2, lr=5e-3, width=0.25, style_size=64, workers=0,
                         checkpoint_every=2, sample_every=1000)
    train(list_images([PACKAGED_CONTENT]), [STYLES / "starry_night.jpg", STYLES / "great_wave.jpg"], out, config,
          torch.device("cpu"), log=lambda s: None)
    return out


def test_nnls_recovers_non_negative_weights():
    from multistyle.train.style_init import nnls

    g = torch.Generator().manual_seed(0)
    a = torch.rand(50, 6, generator=g)
    truth = torch.tensor([0.0, 0.5, 0.0, 0.3, 0.2, 0.0])
    assert torch.allclose(nnls(a, a @ truth), truth, atol=1e-4)
    assert (nnls(a, -a @ truth) == 0).all()  # nothing non-negative explains the opposite direction


def test_the_warm_start_finds_a_known_painting_and_beats_the_mean_start():
    """A painting the model knows gets (almost) all the weight of its own row; for one it does not know (its style
    left out), the blended rows give a lower held-out loss than the mean of the rows, today's old start."""
    from multistyle.train.style_init import blend_weights, init_rows

    model = get_model(PACKAGED_MODEL)
    loss = model_loss(model, "cpu")
    starry = model.style_names.index("starry_night")
    painting = load_image(STYLES / "starry_night.jpg", max_size=256)
    weights = blend_weights(model, loss, painting)
    assert weights.sum().item() == pytest.approx(1.0) and (weights >= 0).all()
    assert int(weights.argmax()) == starry and weights[starry] > 0.8
    net = copy.deepcopy(model.net)
    net.remove_style(starry)
    reduced = type(model)(net, [s for i, s in enumerate(model.styles) if i != starry], model.loss)
    blend = blend_weights(reduced, loss, painting)
    photo = load_image(ROOT / "examples" / "chelsea_cat.jpg", max_size=96)
    grams, feats = loss.style_targets([painting]).blend(), loss.content_targets(photo)
    totals = {}
    for label, w in (("blend", blend), ("mean", torch.full_like(blend, 1 / len(blend)))):
        trial = copy.deepcopy(net)
        [new] = trial.append_styles(1)
        init_rows(trial, new, w)
        with torch.no_grad():
            out = trial(pad_to_multiple(photo)[0], torch.tensor([new]))[..., : photo.shape[-2], : photo.shape[-1]]
            totals[label] = float(loss(out, feats, grams).total)
    assert totals["blend"] < 0.9 * totals["mean"], totals


def test_learn_style_leaves_the_given_model_alone_and_records_the_recipe():
    """The demo keeps a visitor's model in memory: learning a style returns a new model and never touches the
    one it was given (nor any file)."""
    model = get_model(PACKAGED_MODEL)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    painting = load_image(STYLES / "the_scream.jpg", max_size=128)
    learned = learn_style(model, painting, [PACKAGED_CONTENT], "scream2", "the_scream.jpg",
                          preset("fast", steps=2, size=32, crops=2))
    assert learned.net is not model.net and learned.style_names == [*model.style_names, "scream2"]
    assert all(torch.equal(before[k], v) for k, v in model.net.state_dict().items())
    record = learned.styles[-1].training
    assert record["schedule"] == [[16, 2, "adam"]] and record["init"] == "blend" and record["blend"]
    assert record["steps"] == record["steps_requested"] == 2 and record["precision"] in ("bf16", "fp32")
    assert record["precision_reason"]
    cut = learn_style(model, painting, [PACKAGED_CONTENT], "scream3", "", preset("fast", steps=50, size=32, crops=2,
                                                                                  time_budget=1e-3)).styles[-1].training
    assert cut["steps"] < cut["steps_requested"] == 50  # the steps made before the budget, not the requested
    assert isinstance(model_loss(model, "cpu"), PerceptualLoss)


def test_the_photos_are_whole_frames_at_the_judged_scale_grouped_by_shape():
    """fast/best train on each photo whole (3:2 or 2:3, long side = size, as styles are used and judged); legacy on
    centre squares."""
    groups = _content_photos([PACKAGED_CONTENT], preset("fast", size=64))
    shapes = sorted(tuple(g.shape) for g in groups)
    assert shapes == [(1, 3, 64, 40), (5, 3, 40, 64)]  # five landscape packaged photos, one portrait (sailboats)
    [square] = _content_photos([PACKAGED_CONTENT], preset("legacy", size=64))
    assert square.shape == (16, 3, 64, 64)  # 16 picks of the 6 photos, with replacement
    assert all(0 <= float(g.min()) and float(g.max()) <= 1 for g in groups)


@pytest.mark.parametrize("which, quality", [("tiny v1", "legacy"), ("packaged v2", "fast")])
def test_add_style_keeps_old_styles_bit_identical(which, quality, tiny_model, tmp_path):
    model_file = tiny_model if which == "tiny v1" else PACKAGED_MODEL
    before_bytes = model_file.read_bytes()
    old, _ = load_model(model_file)
    n = old.net.num_styles
    out = tmp_path / "extended.safetensors"
    config = preset(quality, steps=4, size=32, batch=2, crops=4)
    seen = []
    add_style(STYLES / "the_scream.jpg", model_file, out, [PACKAGED_CONTENT], name="scream_again", config=config,
              progress=lambda i, n, rec: seen.append(rec["step"]))
    assert seen == [1, 2, 3, 4]  # L-BFGS evaluations are capped per stage, as Adam steps are counted
    assert model_file.read_bytes() == before_bytes
    new, _ = load_model(out)
    assert new.style_names == [*old.style_names, "scream_again"] and type(new.net) is type(old.net)
    assert new.styles[n].training["added_by"] == "add_style" and new.styles[n].thumbnail is not None
    x = torch.rand(2, 3, 40, 52)
    with torch.no_grad():
        for i in range(n):
            assert torch.equal(old.net(x, torch.tensor([i, i])), new.net(x, torch.tensor([i, i])))
        assert not torch.equal(new.net(x, torch.tensor([n, n])), new.net(x, torch.tensor([0, 0])))
    for key, value in old.net.state_dict().items():
        stored = new.net.state_dict()[key]
        assert torch.equal(stored[: value.shape[0]] if key.endswith(("gamma", "beta")) else stored, value), key


def test_add_style_script_and_errors(tiny_model, tmp_path):
    out = tmp_path / "user.safetensors"
    args = ["--model", str(tiny_model), "--out", str(out), "--steps", "2", "--size", "32", "--batch", "2",
            "--name", "My Scream!", "--quality", "best", "--precision", "fp32"]
    result = run_cli(str(STYLES / "the_scream.jpg"), *args, "-v", "--threads", "1",
                     module=str(ROOT / "train" / "add_style.py"))
    assert result.returncode == 0, result.stderr.decode()
    assert "precision: fp32 (fp32 as asked" in result.stdout.decode() and "1 torch threads" in result.stdout.decode()
    assert load_model(out)[0].style_names[-1] == "my_scream"
    again = run_main("add-style", str(STYLES / "the_scream.jpg"), "--model", str(out), "--out", str(out), "--steps",
                     "1", "--size", "32", "--name", "my_scream")
    assert "already has a style named" in assert_one_line_error(again)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"0" * 50)
    line = assert_one_line_error(run_main("add-style", str(bad), *args))
    assert "corrupt" in line or "not an image" in line, line


def test_a_time_budget_that_cuts_the_recipe_short_says_so_in_one_line(tiny_model, tmp_path):
    """--time-budget is the user's cap on the fit (the set-up not counted): a run it ends still makes one step,
    writes the model and says in one line how many of the recipe's steps it made; never a traceback."""
    out = tmp_path / "cut.safetensors"
    done = run_main("add-style", str(STYLES / "the_scream.jpg"), "--model", str(tiny_model), "--out", str(out),
                    "--steps", "50", "--size", "32", "--time-budget", "0.001")
    assert done.returncode == 0, done.stderr.decode()
    notes = [line for line in done.stderr.decode().splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "after 1 of 50 steps" in notes[0], done.stderr.decode()
    record = load_model(out)[0].styles[-1].training
    assert record["steps"] == 1 and record["steps_requested"] == 50 and record["final"]["total"] > 0
    assert record["setup_seconds"] >= 0 and "added style" in done.stdout.decode()
