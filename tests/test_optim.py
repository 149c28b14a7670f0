"""multistyle.optim: L-BFGS (with and without the strong-Wolfe line search) and Adam take the same iterates as
torch.optim's, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from multistyle.optim import LBFGS, Adam

A = torch.randn(30, 10, generator=torch.Generator().manual_seed(0))
B = torch.randn(30, generator=torch.Generator().manual_seed(1))


def objective(x: torch.Tensor) -> torch.Tensor:
    return ((A @ x - B) ** 2).sum() + (x ** 4).sum()


@pytest.mark.parametrize("line_search", [False, True])
def test_lbfgs_takes_torch_optims_steps(line_search):
    ours, theirs = torch.zeros(10, requires_grad=True), torch.zeros(10, requires_grad=True)
    reference = torch.optim.LBFGS([theirs], lr=1.0, max_iter=12 if line_search else 1, max_eval=10 ** 6,
                                  history_size=5, line_search_fn="strong_wolfe" if line_search else None,
                                  tolerance_grad=0.0, tolerance_change=0.0)
    optimizer = LBFGS([ours], lr=1.0, history=5, line_search=line_search)
    evaluations = []

    def closure_ours() -> torch.Tensor:
        loss = objective(ours)
        loss.backward()
        evaluations.append(float(loss))
        return loss

    def closure_theirs() -> torch.Tensor:
        reference.zero_grad()
        loss = objective(theirs)
        loss.backward()
        return loss

    start = float(objective(ours))
    for _ in range(1 if line_search else 12):
        reference.step(closure_theirs)
        first = optimizer.step(closure_ours, max_iter=12 if line_search else 1)
    assert first == pytest.approx(evaluations[-1] if not line_search else start)
    assert torch.allclose(ours, theirs, atol=1e-3) and float(objective(ours)) < 0.7 * start


def test_adam_takes_torch_optims_steps_and_its_rate_can_change():
    ours, theirs = torch.zeros(10, requires_grad=True), torch.zeros(10, requires_grad=True)
    reference, optimizer = torch.optim.Adam([theirs], lr=0.1), Adam([ours], lr=0.1)
    for k in range(20):
        reference.param_groups[0]["lr"] = optimizer.lr = 0.1 * 0.9 ** k
        for x, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad()
            objective(x).backward()
            opt.step()
    assert torch.allclose(ours, theirs, atol=1e-6) and not torch.equal(ours, torch.zeros(10))


def test_no_dynamo_import():
    code = ("import sys, torch; from multistyle.optim import LBFGS; x = torch.zeros(3, requires_grad=True); "
            "o = LBFGS([x], line_search=True); o.step(lambda: (x - 1).square().sum().backward() or "
            "(x - 1).square().sum(), max_iter=3); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_lbfgs_first_step_moves_no_entry_further_than_asked():
    """torch's first step (lr·min(1, 1/‖g‖₁)) barely moves a large image; ``first_step`` bounds the move instead."""
    x = torch.zeros(10, requires_grad=True)
    optimizer = LBFGS([x], first_step=0.05)

    def closure() -> torch.Tensor:
        loss = objective(x)
        loss.backward()
        return loss

    start = float(objective(x))
    optimizer.step(closure)
    assert float(x.detach().abs().max()) == pytest.approx(0.05) and float(objective(x)) < start
    optimizer.step(closure)  # later steps are L-BFGS's own
    assert float(objective(x)) < start
