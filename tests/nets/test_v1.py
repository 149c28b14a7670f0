"""The conditional instance norm network and its style bank."""

from __future__ import annotations

import copy

import pytest
import torch

from multistyle.nets import StyleNet, scaled_channels


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


def test_one_hot_mix_equals_pure_style_and_a_mix_is_the_style_of_mixed_rows():
    """Mixing styles with weights w must equal a style whose γ/β rows are the w-weighted rows (Dumoulin et al.'s
    convex combination), checked through the whole forward pass, not on the tables alone."""
    net = random_styles_net(3)
    x = torch.rand(2, 3, 32, 32)
    pure = net(x, torch.tensor([1, 1]))
    assert torch.equal(pure, net(x, torch.tensor([[0.0, 1.0, 0.0]])))
    w = torch.tensor([[0.3, 0.7, 0.0]])
    mixed = net(x, w)
    assert not torch.allclose(mixed, pure, atol=1e-3) and not torch.allclose(mixed, net(x, torch.tensor([0, 0])), atol=1e-3)
    blended = copy.deepcopy(net)
    with torch.no_grad():
        for norm in blended.norms():
            for table in (norm.gamma, norm.beta):
                table[2] = 0.3 * table[0] + 0.7 * table[1]
    assert torch.allclose(mixed, blended(x, torch.tensor([2, 2])), atol=1e-5)
    per_example = net(x, torch.tensor([[0.0, 1.0, 0.0], [0.3, 0.7, 0.0]]))  # a different mix per batch entry
    assert torch.allclose(per_example[0], pure[0], atol=1e-6) and torch.allclose(per_example[1], mixed[1], atol=1e-5)


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
