"""The optimisers of the short, interactive runs (add-style's row fit, the zero-shot fit, Gatys and refine): L-BFGS
and Adam over a few tensors, with the arithmetic of ``torch.optim.LBFGS`` and ``torch.optim.Adam``.

Why not ``torch.optim`` itself: its first optimiser in a process imports ``torch._dynamo`` (``add_param_group`` is
wrapped in ``torch._disable_dynamo``), 1.4–1.8 s on two cores, which a 7 s ``add-style``, a 2 s zero-shot preview
or a first ``--best`` would pay every time (measured 2026-12-07). The strong-Wolfe line search is torch's own
(``torch.optim.lbfgs._strong_wolfe``, a plain function). Long training runs keep ``torch.optim`` (their state
files hold its Adam moments)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.optim.lbfgs import _strong_wolfe

Closure = Callable[[], torch.Tensor | float]


class _Flat:
    """A list of tensors seen as one flat vector (their gradients too)."""

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self.params = list(params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def grad(self) -> torch.Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in self.params])

    def clone(self) -> list[torch.Tensor]:
        return [p.detach().clone(memory_format=torch.contiguous_format) for p in self.params]

    @torch.no_grad()
    def set(self, values: list[torch.Tensor]) -> None:
        for p, v in zip(self.params, values):
            p.copy_(v)

    @torch.no_grad()
    def add(self, step: float, direction: torch.Tensor) -> None:
        offset = 0
        for p in self.params:
            n = p.numel()
            p.add_(direction[offset:offset + n].view_as(p), alpha=step)
            offset += n


class LBFGS(_Flat):
    """L-BFGS (two-loop recursion over the last ``history`` steps), optionally with torch's strong-Wolfe line search.
    ``first_step``: the first move's largest change of any entry (torch's is ``lr·min(1, 1/‖g‖₁)``, which barely
    moves an image of 10⁵ pixels and costs a whole iteration).
    ``step(closure, max_iter)`` runs up to ``max_iter`` iterations; ``closure()`` computes the loss, calls
    ``backward()`` (gradients are zeroed before it) and returns the loss. Its state (the history) persists between
    calls, as in ``torch.optim.LBFGS``."""

    def __init__(self, params: Sequence[torch.Tensor], lr: float = 1.0, history: int = 100,
                 line_search: bool = False, tolerance_change: float = 0.0, first_step: float | None = None) -> None:
        super().__init__(params)
        self.lr, self.history, self.line_search, self.tolerance_change = lr, history, line_search, tolerance_change
        self.first_step = first_step
        self.iterations = 0
        self.dirs: list[torch.Tensor] = []
        self.steps: list[torch.Tensor] = []
        self.h_diag = 1.0
        self.last: tuple[torch.Tensor, torch.Tensor, float] | None = None  # (gradient, direction, step length)

    def _evaluate(self, closure: Closure) -> tuple[float, torch.Tensor]:
        self.zero_grad()
        with torch.enable_grad():
            value = closure()
        return float(value.detach() if isinstance(value, torch.Tensor) else value), self.grad()

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        if self.last is not None:
            previous, d, t = self.last
            y, s = g - previous, d * t
            ys = float(y.dot(s))
            if ys > 1e-10:
                if len(self.dirs) == self.history:
                    self.dirs.pop(0)
                    self.steps.pop(0)
                self.dirs.append(y)
                self.steps.append(s)
                self.h_diag = ys / float(y.dot(y))
        q = g.neg()
        alphas = []
        for y, s in zip(reversed(self.dirs), reversed(self.steps)):
            alpha = float(s.dot(q)) / float(y.dot(s))
            q.add_(y, alpha=-alpha)
            alphas.append(alpha)
        d = q.mul_(self.h_diag)
        for (y, s), alpha in zip(zip(self.dirs, self.steps), reversed(alphas)):
            beta = float(y.dot(d)) / float(y.dot(s))
            d.add_(s, alpha=alpha - beta)
        return d

    @torch.no_grad()
    def step(self, closure: Closure, max_iter: int = 1) -> float:
        """Up to ``max_iter`` iterations from the current point → the loss there (before moving)."""
        loss, g = self._evaluate(closure)
        first_loss = loss
        for k in range(max_iter):
            self.iterations += 1
            d = self._direction(g)
            t = self.lr
            if self.iterations == 1:  # torch's first step, lr·min(1, 1/‖g‖₁), or one that moves no entry > first_step
                t = (self.first_step / max(float(d.abs().max()), 1e-30) if self.first_step
                     else self.lr * min(1.0, 1.0 / float(g.abs().sum())))
            gtd = float(g.dot(d))
            if gtd > -self.tolerance_change:
                break
            previous_g, previous_loss = g.clone(), loss
            if self.line_search:
                start = self.clone()

                def directional(x: list[torch.Tensor], step: float, direction: torch.Tensor):
                    self.add(step, direction)
                    value = self._evaluate(closure)
                    self.set(x)
                    return value

                loss, g, t, _ = _strong_wolfe(directional, start, t, d, loss, g, gtd)
                self.add(t, d)
            else:
                self.add(t, d)
                if k < max_iter - 1:
                    loss, g = self._evaluate(closure)
            self.last = (previous_g, d, t)
            if k < max_iter - 1 and abs(loss - previous_loss) < self.tolerance_change:
                break
        return first_loss


class Adam(_Flat):
    """Adam (no weight decay, no amsgrad), the update of ``torch.optim.Adam``; ``lr`` may change between steps.
    ``step()`` after ``backward()``, or ``step(closure)`` (the closure computes the loss and calls ``backward()``)."""

    def __init__(self, params: Sequence[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params)
        self.lr, self.betas, self.eps, self.count = lr, betas, eps, 0
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params]

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> None:
        if closure is not None:
            with torch.enable_grad():
                closure()
        self.count += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1 ** self.count, (1 - b2 ** self.count) ** 0.5
        for p, (mean, square) in zip(self.params, self.moments):
            if p.grad is None:
                continue
            mean.lerp_(p.grad, 1 - b1)
            square.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(mean, square.sqrt().div_(correction2).add_(self.eps), value=-self.lr / correction1)
