"""Each registered loss network loads offline and returns its named layers with the expected shapes."""

from __future__ import annotations

import pytest
import torch

from multistyle.errors import WeightsNotFoundError
from multistyle.loss import LossConfig, PerceptualLoss
from multistyle.loss.networks import REGISTRY, build_loss_net

X = torch.rand(1, 3, 64, 96)


def test_vgg19_layers():
    out = build_loss_net("vgg19", ["relu1_1", "relu4_2"])(X)
    assert out["relu1_1"].shape == (1, 64, 64, 96) and out["relu4_2"].shape == (1, 512, 8, 12)


def test_efficientnet_lite0_real_weights():
    net = build_loss_net("efficientnet_lite0", REGISTRY["efficientnet_lite0"].layers)
    out = net(X)
    expected = {"stem": (32, 32, 48), "stage1": (16, 32, 48), "stage2": (24, 16, 24), "stage3": (40, 8, 12),
                "stage4": (80, 4, 6), "stage5": (112, 4, 6), "stage6": (192, 2, 3), "stage7": (320, 2, 3)}
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == expected
    assert not any(p.requires_grad for p in net.parameters())
    # real ImageNet weights: batch-norm statistics are loaded, not the defaults
    assert not torch.allclose(net.stem.bn.running_var, torch.ones(32))
    loss = PerceptualLoss(LossConfig(loss_net="efficientnet_lite0"))
    assert loss.config.content_layers == ("stage4",)
    grams = loss.style_targets([X], cache=False).blend()
    terms = loss(X.clone().requires_grad_(True), loss.content_targets(X), grams)
    assert float(terms.content) == 0 and float(terms.style) == 0


@pytest.mark.parametrize("name,file,layers,shapes", [
    ("vgg16", "vgg16-397923af.pth", ("relu1_2", "relu3_3", "relu5_3"), [(64, 64, 96), (256, 16, 24), (512, 4, 6)]),
    ("resnet50", "resnet50-0676ba61.pth", ("conv1", "layer1", "layer4"), [(64, 32, 48), (256, 16, 24), (2048, 2, 3)]),
])
def test_torchvision_nets_need_user_files(name, file, layers, shapes, tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="never downloads"):
        build_loss_net(name, layers)
    # a file the user already has, in torchvision's layout (random weights stand in for the real ones here)
    target = tmp_path / "hub" / "checkpoints" / file
    target.parent.mkdir(parents=True)
    torch.save(getattr(torchvision.models, name)().state_dict(), target)
    out = build_loss_net(name, layers)(X)
    assert [tuple(out[l].shape[1:]) for l in layers] == shapes


def test_unknown_network_and_layers():
    with pytest.raises(ValueError, match="unknown loss network"):
        LossConfig(loss_net="alexnet")
    with pytest.raises(ValueError, match="unknown efficientnet_lite0 layers"):
        LossConfig(loss_net="efficientnet_lite0", style_layers=("relu1_1",))
