"""The v2 (cin-fast-v2) network, its model files beside v1's, and distillation from v1. Real networks, tiny sizes."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import CONTENT, ROOT
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from multistyle.errors import ModelFileError, MultistyleError
from multistyle.images import load_image
from multistyle.modelfile import (
    PACKAGED_MODEL,
    PACKAGED_V1,
    ModelFile,
    StyleInfo,
    export_model,
    load_model,
    read_metadata,
    save_model,
)
from multistyle.nets import FastStyleNet, StyleNet, instance_norm_affine
from multistyle.stylizer import Stylizer, pad_to_multiple
from multistyle.train.distill import (
    DistillConfig,
    distill,
    distill_loss,
    make_student,
    target_weights,
)


def styled_v2(num_styles: int = 3, **kw) -> FastStyleNet:
    """A v2 net whose styles differ (γ/β rows drawn at random), seeded."""
    torch.manual_seed(0)
    net = FastStyleNet(num_styles, **kw)
    with torch.no_grad():
        for p in net.style_parameters():
            p.normal_(1.0, 0.5)
    return net.eval()


def model_of(net) -> ModelFile:
    return ModelFile(net, [StyleInfo(f"style{i}") for i in range(net.num_styles)], {"style_weight": 100.0})


def test_forward_odd_sizes_after_padding_and_through_the_stylizer():
    net = styled_v2()
    x = torch.rand(2, 3, 29, 37)
    padded, (h, w) = pad_to_multiple(x, net.multiple)
    out = net(padded, torch.tensor([0, 2]))[..., :h, :w]
    assert out.shape == (2, 3, 29, 37) and 0 <= out.min() and out.max() <= 1
    assert not torch.allclose(out[0], net(padded[:1], torch.tensor([1]))[0, :, :h, :w])  # styles differ
    stylized = Stylizer(model_of(net), "cpu")(x[:1], torch.tensor([[0.5, 0.5, 0.0]]))
    assert stylized.shape == (1, 3, 29, 37) and 0 <= stylized.min() and stylized.max() <= 1


def test_fused_norm_matches_instance_norm_in_channels_last():
    x = (torch.randn(2, 5, 12, 9) * 0.1 + 3).contiguous(memory_format=torch.channels_last)
    gamma, beta = torch.rand(2, 5, 1, 1), torch.rand(2, 5, 1, 1)
    expected = torch.nn.functional.instance_norm(x, eps=1e-5) * gamma + beta
    assert torch.allclose(instance_norm_affine(x, gamma, beta), expected, atol=1e-5)
    assert torch.equal(instance_norm_affine(x, gamma, beta, relu=True), instance_norm_affine(x, gamma, beta).relu())


@pytest.mark.parametrize("kw", [{}, {"blocks": 2, "block": "dw", "cond_encoder": False}])
def test_save_load_round_trip(tmp_path, kw):
    net = styled_v2(**kw)
    path = save_model(model_of(net), tmp_path / "v2.safetensors")
    meta = read_metadata(path)
    assert meta["architecture"] == "cin-fast-v2" and meta["blocks"] == net.blocks and meta["block"] == net.block
    loaded, _ = load_model(path)
    assert isinstance(loaded.net, FastStyleNet) and loaded.net.arch_params() == net.arch_params()
    x = torch.rand(1, 3, 16, 24)
    assert torch.equal(loaded.net(x, torch.tensor([1])), net(x, torch.tensor([1])))


# The packaged v1 model's output on a seeded 24x32 input for a 0.6/0.4 mix of styles 3 and 7, computed with the
# v1 code before v2 existed (every 8th pixel, and the per-channel means).
V1_PIXELS = [0.70771766, 0.64105487, 0.58199948, 0.49758255, 0.40854099, 0.38707414, 0.18114276, 0.19434448,
             0.80881023, 0.82766467, 0.48517653, 0.63002843, 0.74881411, 0.66867948, 0.61026984, 0.51818496,
             0.52411395, 0.44069237, 0.23969349, 0.27348113, 0.63867188, 0.76782924, 0.48107517, 0.63156968,
             0.69722372, 0.62274480, 0.53240180, 0.66997403, 0.61304486, 0.45110813, 0.37537631, 0.46836960,
             0.60183477, 0.64100295, 0.60919547, 0.57876283]
V1_MEANS = [0.45536682, 0.50156069, 0.50517517]


def test_v1_file_still_loads_with_the_same_output():
    assert read_metadata(PACKAGED_V1)["architecture"] == "cin-transformer-v1"
    model, _ = load_model(PACKAGED_V1)
    assert type(model.net) is StyleNet and "layers.0.conv.weight" in model.net.state_dict()
    x = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    w = torch.zeros(1, 13)
    w[0, 3], w[0, 7] = 0.6, 0.4
    with torch.no_grad():
        out = model.net(x, w)
    assert torch.allclose(out[0, :, ::8, ::8].flatten(), torch.tensor(V1_PIXELS), atol=1e-5)
    assert torch.allclose(out.mean((2, 3)).flatten(), torch.tensor(V1_MEANS), atol=1e-5)


def rewrite_metadata(path, change) -> None:
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["multistyle"])
    change(meta)
    save_file(load_file(str(path)), str(path), metadata={"multistyle": json.dumps(meta)})


def test_unknown_architecture_and_missing_arch_params_are_clear_errors(tmp_path):
    path = save_model(model_of(styled_v2()), tmp_path / "v2.safetensors")
    rewrite_metadata(path, lambda m: m.update(architecture="cin-future-v9"))
    with pytest.raises(ModelFileError, match="cin-future-v9.*does not know"):
        load_model(path)
    path = save_model(model_of(styled_v2()), tmp_path / "v2b.safetensors")
    rewrite_metadata(path, lambda m: m.pop("blocks"))
    with pytest.raises(ModelFileError, match="incomplete"):
        load_model(path)


def test_append_and_freeze_keep_old_styles_bit_identical():
    net = styled_v2().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    old_rows = net.style_rows(1)
    [new] = net.append_styles(1, init_from=0)
    tables = net.freeze_except_styles([new])
    optimizer = torch.optim.Adam(tables, lr=0.1)
    for _ in range(3):
        loss = net(torch.rand(2, 3, 16, 16), torch.tensor([new, new])).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = net.state_dict()
    assert all(torch.equal(after[k][:3], before[k]) for k in before if k.endswith((".gamma", ".beta")))
    assert all(torch.equal(after[k], before[k]) for k in before if not k.endswith((".gamma", ".beta")))
    assert all(torch.equal(net.style_rows(1)[k], v) for k, v in old_rows.items())
    assert not torch.equal(net.style_rows(new)["output_norm.beta"], net.style_rows(0)["output_norm.beta"])


@pytest.fixture
def teacher_file(tmp_path):
    torch.manual_seed(1)
    teacher = StyleNet(2, 0.25)
    with torch.no_grad():
        for p in teacher.style_parameters():
            p.normal_(1.0, 0.3)
    return save_model(model_of(teacher.eval()), tmp_path / "teacher.safetensors")


def tiny_config(steps: int) -> DistillConfig:
    return DistillConfig(size=32, photo_size=48, batch=2, steps=steps, lr=5e-3, workers=0, checkpoint_seconds=1e6)


PHOTOS = [CONTENT / n for n in ("chelsea_cat.jpg", "coffee.jpg", "kodak_houses.jpg")]


def test_student_starts_from_the_teacher_body():
    teacher = load_model(PACKAGED_V1)[0].net
    student = make_student(teacher, DistillConfig(blocks=5))
    for i in range(5):
        assert torch.equal(student.body[i].conv1.conv.weight, teacher.layers[3 + i].conv1.conv.weight)
        assert torch.equal(student.body[i].conv2.norm.gamma, teacher.layers[3 + i].conv2.norm.gamma)
    assert torch.equal(student.output_norm.beta, teacher.output.norm.beta)


def test_distillation_lowers_the_loss_and_resumes_exactly(tmp_path, teacher_file):
    teacher = load_model(teacher_file)[0].net
    held_out = [ROOT / "examples" / "tubingen.jpg", CONTENT / "kodak_parrots.jpg"]
    batch = torch.cat([load_image(photo, max_size=48)[..., :32, :32] for photo in held_out])
    weights = target_weights(2, 2, 0.5, torch.Generator().manual_seed(4))
    with torch.no_grad():
        target = teacher(batch, weights)
        before = float(distill_loss(make_student(teacher, tiny_config(1))(batch, weights), target, 1.0)["total"])
    straight = distill(teacher_file, PHOTOS, tmp_path / "a.safetensors", tiny_config(12), log=lambda s: None)
    with torch.no_grad():
        after = float(distill_loss(straight.net(batch, weights), target, 1.0)["total"])
    assert after < before
    distill(teacher_file, PHOTOS, tmp_path / "b.safetensors", tiny_config(5), log=lambda s: None)
    resumed = distill(teacher_file, PHOTOS, tmp_path / "b.safetensors", tiny_config(12), resume=True,
                      log=lambda s: None)
    assert resumed.extra["step"] == 12
    a, b = straight.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    saved, _ = load_model(tmp_path / "b.safetensors")
    assert saved.net.arch_params() == straight.net.arch_params() and saved.style_names == ["style0", "style1"]


def test_phase_two_adds_the_perceptual_loss_of_the_stored_paintings(tmp_path, teacher_file):
    config = DistillConfig(size=32, photo_size=48, batch=2, steps=2, workers=0, log_every=1, perceptual_weight=0.5,
                           checkpoint_seconds=1e6)
    with pytest.raises(MultistyleError, match="no stored painting"):
        distill(teacher_file, PHOTOS, tmp_path / "p.safetensors", config, log=lambda s: None)
    model, _ = load_model(teacher_file)
    for i, style in enumerate(model.styles):
        noise = torch.Generator().manual_seed(i)
        style.painting = torch.randint(0, 256, (40, 48, 3), dtype=torch.uint8, generator=noise)
    painted = save_model(model, tmp_path / "painted.safetensors")
    distill(painted, PHOTOS, tmp_path / "p.safetensors", config, log=lambda s: None)
    history = load_model(tmp_path / "p.train.safetensors")[0].extra["history"]
    assert [h["step"] for h in history] == [1, 2]
    for h in history:
        assert h["perceptual"] > 0 and h["total"] == pytest.approx(h["pixel"] + h["grad"] + 0.5 * h["perceptual"])
    # the perceptual loss alone (distill-weight 0): no teacher forward, the total is the perceptual term
    alone = DistillConfig(**{**config.to_dict(), "steps": 3, "distill_weight": 0.0})
    distill(painted, PHOTOS, tmp_path / "p.safetensors", alone, resume=True, log=lambda s: None)
    last = load_model(tmp_path / "p.train.safetensors")[0].extra["history"][-1]
    assert last["step"] == 3 and "pixel" not in last and last["total"] == pytest.approx(0.5 * last["perceptual"])
    with pytest.raises(ValueError, match="nothing to train on"):
        DistillConfig(perceptual_weight=0.0, distill_weight=0.0)


def test_packaged_default_is_v2_and_both_packaged_models_are_named():
    from multistyle.modelfile import resolve_model_path

    assert read_metadata(PACKAGED_MODEL)["architecture"] == "cin-fast-v2"
    assert load_model(PACKAGED_MODEL)[0].net.padding == "replicate"
    assert resolve_model_path("v1") == PACKAGED_V1 and resolve_model_path("v2") == PACKAGED_MODEL
    v1, v2 = Stylizer(load_model(PACKAGED_V1)[0]), Stylizer(load_model(PACKAGED_MODEL)[0])
    assert v1.names == v2.names  # the same 13 styles: v2 was distilled from v1, then trained on their paintings


def test_shipped_default_is_the_export_of_the_committed_training_state(tmp_path):
    state = ROOT / "train" / "checkpoints" / "v2.train.safetensors"
    exported = export_model(state, tmp_path / "v2.safetensors")
    shipped, ours = load_model(PACKAGED_MODEL)[0], load_model(exported)[0]
    for (name, a), b in zip(shipped.net.state_dict().items(), ours.net.state_dict().values()):
        assert torch.equal(a, b), name
    assert ours.extra["step"] == shipped.extra["step"] and "history" not in ours.extra
    assert "history" in load_model(state)[0].extra  # the state keeps it: only the export drops it
    assert exported.stat().st_size < state.stat().st_size  # no Adam moments either


def test_padding_is_recorded_and_old_v2_files_load_zero_padded(tmp_path):
    net = styled_v2(padding="zeros")
    path = save_model(model_of(net), tmp_path / "old.safetensors")
    rewrite_metadata(path, lambda m: m.pop("padding"))  # a file from before the parameter existed
    old = load_model(path)[0].net
    x = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert old.padding == "zeros" and torch.equal(old(x, torch.tensor([1])), net(x, torch.tensor([1])))
        replicate = styled_v2(padding="replicate")
        # the same weights, another border treatment: the borders change most
        diff = (replicate(x, torch.tensor([1])) - net(x, torch.tensor([1]))).abs().mean(1)[0]
    assert diff[0].mean() > diff[8:16, 8:24].mean()
    with pytest.raises(ValueError, match="padding must be one of"):
        FastStyleNet(2, padding="circular")


def test_resume_may_switch_the_padding_keeping_the_weights(tmp_path, teacher_file):
    zeros = DistillConfig(**{**tiny_config(2).to_dict(), "padding": "zeros"})
    first = distill(teacher_file, PHOTOS, tmp_path / "s.safetensors", zeros, log=lambda s: None)
    lines: list[str] = []
    switched = distill(teacher_file, PHOTOS, tmp_path / "s.safetensors", tiny_config(2), resume=True,
                       log=lines.append)  # already at step 2: loads the state and returns it
    assert any("padding zeros -> replicate" in line for line in lines)
    assert switched.net.padding == "replicate"
    a, b = first.net.state_dict(), switched.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
