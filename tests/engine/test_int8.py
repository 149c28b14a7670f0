"""int8 (issue 45): the shipped int8 graph, as OpenVINO runs it, stays within 0.5 % of the float network's
perceptual loss for every style on held-out photos; `auto` offers it only to a model whose styles were all checked;
the fake quantizers are what OpenVINO computes; the fine-tuning trains the convs only."""

from __future__ import annotations

import copy

import pytest
import torch

from multistyle.engine import EngineChoice, choose_engine, installed
from multistyle.engine import choice as choice_module
from multistyle.engine.choice import candidates
from multistyle.engine.int8 import (
    MAX_LOSS_RATIO,
    QuantConv2d,
    calibrate,
    int8_network,
    int8_record,
    passes,
    quantize_convs,
)
from multistyle.modelfile import PACKAGED_CONTENT, get_model

pytestmark = pytest.mark.skipif(not installed("openvino"), reason="OpenVINO is not installed")
CHECK_PHOTOS = ("kodak_lighthouse.jpg", "kodak_parrots.jpg")  # packaged held-out photos
CHECK_SIZE = 256  # long side, px (the recorded check: 9 photos at 256 and 480; at 128 the loss moves ±1 %)


def _shipped():
    model = get_model()
    if int8_record(model.net) is None:
        pytest.skip("no int8 file is shipped for the packaged model")
    return model


def test_shipped_int8_graph_is_within_tolerance_for_every_style_on_held_out_photos():
    from multistyle.train.quantize import check_int8

    model = _shipped()
    _, meta = int8_record(model.net)
    assert passes(meta["check"]) and set(meta["check"]["styles"]) == set(model.style_names)
    check = check_int8(model, int8_network(model.net), [PACKAGED_CONTENT / n for n in CHECK_PHOTOS],
                       (CHECK_SIZE,))
    worst = {name: row["ratio"] for name, row in check["styles"].items() if row["ratio"] > MAX_LOSS_RATIO}
    assert not worst and set(check["styles"]) == set(model.style_names), worst


def test_a_style_added_later_gets_no_int8(monkeypatch):
    model = _shipped()
    assert ("openvino", "int8") in candidates(model.net)
    grown = copy.deepcopy(model.net)
    grown.append_styles(1)  # an unchecked row: a zero-shot or added style
    assert int8_record(grown) is None and int8_network(grown) is None
    assert ("openvino", "int8") not in candidates(grown)
    monkeypatch.setattr(choice_module, "measured_choice", lambda net: EngineChoice("openvino", "fp32", "measured"))
    kept = EngineChoice("openvino", "int8", "measured")
    assert choose_engine(kept, "cpu", model.net) == kept
    assert choose_engine(kept, "cpu", grown).precision == "fp32"


def test_pick_takes_int8_only_within_its_own_limit():
    record = {"ms": {"torch fp32": 30.0, "openvino fp32": 20.0, "openvino int8": 12.0},
              "mean_diff": {"torch fp32": 0.0, "openvino fp32": 1e-5, "openvino int8": 0.009},
              "limit": {"torch fp32": 0.005, "openvino fp32": 0.005, "openvino int8": 0.015}}
    assert choice_module.pick(record) == ("openvino", "int8")
    record["mean_diff"]["openvino int8"] = 0.04  # e.g. int16 overflow on a CPU the check did not see
    assert choice_module.pick(record) == ("openvino", "fp32")


def test_fake_quantizers_keep_names_grids_and_norms():
    net = get_model().net
    qnet = quantize_convs(net, ["head"])
    assert set(net.state_dict()) <= set(qnet.state_dict())
    assert not isinstance(qnet.head, QuantConv2d) and isinstance(qnet.up.conv, QuantConv2d)
    calibrate(qnet, [(torch.rand(1, 3, 32, 32), torch.eye(net.num_styles)[:1])])
    conv = qnet.encoder[0].conv
    assert float(conv.lo) >= 0 and float(conv.hi) <= 1  # the first conv sees the image
    w = conv.quant_weight()
    steps = w / (conv.weight.abs().amax(dim=(1, 2, 3), keepdim=True) / conv.weight_max)
    assert torch.allclose(steps, steps.round(), atol=1e-3) and steps.abs().max() <= conv.weight_max + 1e-3
    for a, b in zip(net.norms(), qnet.norms()):
        assert torch.equal(a.gamma, b.gamma) and torch.equal(a.beta, b.beta)


def test_quantization_aware_fine_tuning_trains_only_the_convs():
    from multistyle.train.quantize import QuantizeConfig, quantization_aware

    model = get_model()
    config = QuantizeConfig(steps=1, batch=1, size=32, photo_sizes=(48,), lr=1e-3, calibration=1)
    qnet = quantization_aware(model, sorted(PACKAGED_CONTENT.glob("*.jpg"))[:2], config)
    assert not torch.equal(qnet.body[0].conv1.conv.weight, model.net.body[0].conv1.conv.weight)
    for a, b in zip(model.net.norms(), qnet.norms()):
        assert torch.equal(a.gamma, b.gamma) and torch.equal(a.beta, b.beta)
    assert all(not p.requires_grad for p in qnet.parameters())


def test_a_users_own_int8_file_is_found_in_their_data_folder(tmp_path, monkeypatch):
    import shutil

    from multistyle.cli.quantize import default_out
    from multistyle.engine import int8 as int8_module
    from multistyle.modelfile import PACKAGED_MODEL

    model = _shipped()
    shipped, _ = int8_record(model.net)
    home, empty = tmp_path / "home", tmp_path / "empty"
    home.mkdir()
    empty.mkdir()
    monkeypatch.setenv("MULTISTYLE_HOME", str(home))
    monkeypatch.setattr(int8_module, "INT8_DIR", empty)
    assert int8_record(model.net) is None  # neither folder has one yet
    mine = default_out(home / "model.safetensors")  # a user's model: the int8 file goes to their data folder
    assert mine == home / "model.int8.safetensors"
    shutil.copy(shipped, mine)
    assert int8_record(model.net)[0] == str(mine)
    monkeypatch.undo()
    assert default_out(PACKAGED_MODEL).parent == PACKAGED_MODEL.parent  # the packaged model's: beside it
