"""The conditional instance norm network and its style bank."""

from __future__ import annotations

import pytest
import torch

from multistyle.network import StyleNet, scaled_channels


def random_styles_net(num_styles: int) -> StyleNet:
    """A network whose styles differ (γ/β rows drawn at random), seeded."""
    torch.manual_seed(0)
    net = StyleNet(num_styles, width=0.25)
    with torch.no_grad():
        for p in net.style_parameters():
            p.normal_(1.0, 0.5)
    return net


def test_shapes_and_width():
    net = StyleNet(3, width=0.25)
    assert scaled_channels(0.25) == (8, 16, 32)
    out = net(torch.rand(2, 3, 32, 48), torch.tensor([0, 2]))
    assert out.shape == (2, 3, 32, 48) and 0 <= out.min() and out.max() <= 1
    assert len(net.norms()) == 3 + 10 + 2 + 1


def test_one_hot_mix_equals_pure_style_and_mix_is_convex():
    net = random_styles_net(3)
    x = torch.rand(1, 3, 32, 32)
    pure = net(x, torch.tensor([1]))
    assert torch.equal(pure, net(x, torch.tensor([[0.0, 1.0, 0.0]])))
    half = net(x, torch.tensor([[0.5, 0.5, 0.0]]))
    assert not torch.allclose(half, pure) and not torch.allclose(half, net(x, torch.tensor([0])))
    norm = net.norms()[0]
    w = torch.tensor([[0.5, 0.5, 0.0]])
    assert torch.allclose(w @ norm.gamma, (norm.gamma[0] + norm.gamma[1]) / 2)


def test_style_rows_stay_independent_under_training():
    """Training only style 0 with Adam (momentum!) must leave every row of style 1 untouched."""
    torch.manual_seed(0)
    net = StyleNet(2, width=0.25)
    before = net.style_rows(1)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    for _ in range(3):
        loss = net(torch.rand(2, 3, 32, 32), torch.tensor([0, 0])).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = net.style_rows(1)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not all(torch.equal(a, b) for a, b in zip(net.style_rows(0).values(), before.values()))


def test_append_remove_and_freeze():
    net = random_styles_net(2)
    x = torch.rand(1, 3, 32, 32)
    old = [net(x, torch.tensor([i])) for i in range(2)]
    assert net.append_styles(2, init_from=1) == [2, 3]
    assert net.num_styles == 4
    assert torch.equal(net(x, torch.tensor([3])), old[1])
    assert all(torch.equal(net(x, torch.tensor([i])), old[i]) for i in range(2))
    tables = net.freeze_except_styles([2])
    optimizer = torch.optim.Adam(tables, lr=0.5)
    for _ in range(2):
        optimizer.zero_grad()
        net(x, torch.tensor([2])).mean().backward()
        optimizer.step()
    assert all(torch.equal(net(x, torch.tensor([i])), old[i]) for i in range(2))
    assert not torch.equal(net(x, torch.tensor([2])), old[1])
    assert not any(p.requires_grad for n, p in net.named_parameters() if "conv" in n and "norm" not in n)
    net.remove_style(0)
    assert net.num_styles == 3 and torch.equal(net(x, torch.tensor([0])), old[1])
    with pytest.raises(IndexError):
        net.remove_style(7)
