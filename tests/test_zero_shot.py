"""Zero-shot stylize (any painting at once: the blend row, and the row fitted within a budget), --best and
--seconds, with the real network, VGG19 and paintings at tiny sizes."""

from __future__ import annotations

import hashlib
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import ROOT, STYLES, assert_one_line_error, run_cli, run_main
from PIL import Image

import multistyle
from multistyle.images import load_image
from multistyle.modelfile import PACKAGED_MODEL, get_model
from multistyle.refine import MAX_REFINE
from multistyle.stylizer import Stylizer, get_stylizer, head_start
from multistyle.zero_shot import FIT_CONFIG, painting_weights, zero_shot_model

PHOTO = ROOT / "examples" / "tubingen.jpg"
PAINTING = STYLES / "the_scream.jpg"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_zero_shot_row_leaves_the_model_file_unchanged(tmp_path):
    path = tmp_path / "model.safetensors"
    shutil.copy(PACKAGED_MODEL, path)
    before_file = _sha(path)
    model = get_model(path)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    extended = zero_shot_model(model, str(PAINTING), fit=False)
    fitted = zero_shot_model(model, str(PAINTING), seconds=1e-3)  # a cap that ends the fit after its first step
    out = multistyle.stylize(str(PHOTO), painting=str(PAINTING), model=str(path), device="cpu", max_size=64)
    assert _sha(path) == before_file and get_model(path) is model
    assert all(torch.equal(v, model.net.state_dict()[k]) for k, v in before.items())
    assert len(extended.styles) == len(model.styles) + 1 and extended.styles[-1].painting is not None
    weights = painting_weights(model, str(PAINTING))
    for norm_old, norm_new in zip(model.net.norms(), extended.net.norms()):
        assert torch.equal(norm_new.gamma[:-1], norm_old.gamma)
        assert torch.allclose(norm_new.gamma[-1], weights @ norm_old.gamma, atol=1e-6)
    for norm_old, norm_fit in zip(model.net.norms(), fitted.net.norms()):
        assert torch.equal(norm_fit.gamma[:-1], norm_old.gamma) and torch.equal(norm_fit.beta[:-1], norm_old.beta)
    assert isinstance(out, Image.Image) and max(out.size) == 64


def test_the_painting_is_taken_like_the_image_and_the_blend_is_the_style_mix():
    pil = Image.open(PAINTING).convert("RGB")
    photo = load_image(PHOTO, max_size=64)
    stylizer = get_stylizer(None, "cpu")
    outs = []
    for p in (str(PAINTING), pil, np.asarray(pil), load_image(PAINTING)[0]):
        blend = zero_shot_model(stylizer.model, p, fit=False)
        shot = Stylizer(blend, "cpu")
        outs.append(shot(photo, torch.eye(len(blend.styles))[-1:]))
    assert all(torch.allclose(o, outs[0], atol=1 / 255) for o in outs)
    mix = painting_weights(stylizer.model, str(PAINTING))
    # the row = the style mix, on one engine (the packaged model may run int8 where a new row runs fp32)
    same_engine = Stylizer(stylizer.model, "cpu", engine=shot.choice)
    assert torch.allclose(same_engine(photo, mix[None]), outs[0], atol=1e-4)
    # a stored painting's zero-shot mix is (almost) its own style
    udnie = stylizer.names.index("udnie")
    stored = stylizer.model.styles[udnie].painting.permute(2, 0, 1)[None].float() / 255
    assert int(painting_weights(stylizer.model, stored).argmax()) == udnie
    start = head_start(same_engine, photo, [load_image(PAINTING)])
    assert torch.allclose(start, outs[0], atol=1e-4)


def test_the_fitted_row_follows_the_painting_better_than_the_blend_and_reports_progress():
    """Leave one out: without udnie, the fitted row's loss for udnie's painting on held-out photos is below the
    blend's; its steps are reported, they are the fixed work of FIT_CONFIG whatever the CPU (a seconds cap ends
    them sooner), and a second call is served from the cache."""
    from multistyle.modelfile import subset_model
    from multistyle.refine import model_loss

    full = get_model(None)
    model = subset_model(full, [n for n in full.style_names if n != "udnie"])
    painting = load_image(STYLES / "udnie.jpg", max_size=256)
    steps = []
    fitted = zero_shot_model(model, painting, progress=lambda s, total, record: steps.append(s))
    assert steps == list(range(1, FIT_CONFIG.steps + 1))
    assert fitted.styles[-1].training["fit"] and fitted.styles[-1].training["steps"] == FIT_CONFIG.steps
    assert zero_shot_model(model, painting) is fitted
    capped = zero_shot_model(model, painting, seconds=1e-3)
    assert capped is not fitted and capped.styles[-1].training["steps"] == 1  # the cap ends it after one step
    blend = zero_shot_model(model, painting, fit=False)
    loss = model_loss(full)
    grams = loss.style_targets([painting]).blend()
    totals = {}
    for label, m in (("blend", blend), ("fitted", fitted)):
        totals[label] = 0.0
        for name in ("chelsea_cat.jpg", "tubingen.jpg"):
            photo = load_image(STYLES.parent / "content" / name, max_size=128)
            with torch.no_grad():
                out = Stylizer(m, "cpu")(photo, torch.eye(len(m.styles))[-1:])
                totals[label] += float(loss(out, loss.content_targets(photo), grams).total)
    assert totals["fitted"] < 0.9 * totals["blend"], totals


def test_a_bad_painting_is_one_clear_error(tmp_path):
    from multistyle.errors import ImageError, StyleError

    model = get_model(None)
    tiny = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(StyleError, match="16 px"):
        zero_shot_model(model, tiny)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError):
        zero_shot_model(model, str(bad))
    with pytest.raises(StyleError, match="seconds"):
        zero_shot_model(model, str(PAINTING), seconds=0)


def test_best_with_a_budget_from_the_api():
    """--best with seconds: as many refine iterations as fit (a tiny budget: the first one at most), the best
    iterate kept; the same size out."""
    photo = load_image(PHOTO, max_size=64)
    stylizer = get_stylizer(None, "cpu")
    seen = []
    out = stylizer(photo, torch.eye(len(stylizer.names))[:1], refine=MAX_REFINE, seconds=1e-3,
                   progress=lambda i, n, losses: seen.append(i))
    assert len(seen) <= 1 and out.shape == photo.shape
    assert multistyle.stylize(photo, "udnie", device="cpu", best=True, seconds=1e-3).shape == photo.shape


def test_cli_painting_best_seconds(tmp_path):
    out = tmp_path / "out.png"
    done = run_cli("stylize", str(PHOTO), "--painting", str(PAINTING), "-o", str(out), "--max-size", "64",
                   "--best", "--seconds", "0.5", "--device", "cpu")
    assert done.returncode == 0, done.stderr.decode()
    assert Image.open(out).size == (64, 48)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    for painting, expected in ((bad, "not an image"), (tmp_path / "missing.jpg", "no such file")):
        line = assert_one_line_error(run_main("stylize", str(PHOTO), "--painting", str(painting), "-o",
                                              str(tmp_path / "x.png")))
        assert expected in line, line
    assert not (tmp_path / "x.png").exists()
    line = assert_one_line_error(run_main("stylize", str(PHOTO), "-o", str(out), "--best", "--seconds", "0"))
    assert "--seconds" in line


def test_cli_gatys_budget_and_head_start(tmp_path):
    """--seconds ends the run by its clock: a budget far shorter than one iteration stops it after the first
    (of 100,000 asked) and still writes the full-size picture."""
    out = tmp_path / "g.png"
    done = run_cli("gatys", str(PHOTO), str(PAINTING), "-o", str(out), "--size", "64", "--seconds", "0.001",
                   "--device", "cpu")
    assert done.returncode == 0, done.stderr.decode()
    assert Image.open(out).size == (64, 48)
    iterations = int(re.search(r"(\d+) iterations", done.stdout.decode()).group(1))
    assert iterations <= 2, done.stdout.decode()
