"""Bi-level optimisation of BLADES' task weights (chapter 7, ``book/07_blades.md``).

The pretext network's parameters theta are trained on the weighted sum of the task losses (inner problem),
``L_train(theta, lambda) = sum_i lambda_i L_i(theta)``; the weights lambda are chosen so that the network does well
on what detection needs (outer problem), measured by the coarse manipulation loss on a validation batch after one
virtual SGD step of the inner problem:

    theta'(lambda) = theta - alpha * grad_theta L_train(theta, lambda)
    dL_val(theta') / dlambda_i = -alpha * grad_theta L_i(theta) . grad L_val(theta')          (chain rule)
                               ~ -alpha * [L_i(theta+) - L_i(theta-)] / (2 eps),  theta+- = theta +- eps g',

with ``g' = grad L_val(theta')`` and ``eps = 0.01 / ||g'||`` (a central finite difference of the directional
derivative: two forward passes instead of a Hessian-vector product through the whole network). The weights follow
Adam (lr 3e-4, BLADES) on that hypergradient and are not constrained.

* :func:`finite_difference_hypergradient` -- the approximation above (BLADES' method);
* :func:`exact_hypergradient` -- the same derivative by autograd through the virtual step (second order; for tests
  and small models);
* :class:`TaskWeights` -- the lambdas and their Adam optimiser; :func:`bilevel_step` -- one inner step plus one
  weight update, as the BLADES trainer (:mod:`aigfd_lite.blades`) calls it.

Virtual forward passes must not change BatchNorm's running statistics: :func:`finite_difference_hypergradient`
restores every buffer it touched.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

#: ``task_losses(model, batch) -> (T,)`` losses of the T tasks; ``val_loss(model, batch) -> scalar``.
TaskLosses = Callable[[nn.Module, Any], torch.Tensor]
ValLoss = Callable[[nn.Module, Any], torch.Tensor]


def _trainable(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


@torch.no_grad()
def _set(params: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> None:
    for p, v in zip(params, values):
        p.copy_(v)


def finite_difference_hypergradient(model: nn.Module, task_losses: TaskLosses, train_batch: Any,
                                    val_loss: ValLoss, val_batch: Any, weights: torch.Tensor, alpha: float,
                                    grads: Sequence[torch.Tensor] | None = None,
                                    scale: float = 0.01) -> tuple[torch.Tensor, float]:
    """BLADES' hypergradient dL_val/dlambda (T,) and the validation loss after the virtual step.

    ``grads``: grad_theta of the weighted training loss if already computed (the trainer reuses its own). The
    model's parameters and buffers are the same afterwards as before; ``.grad`` fields are not touched.
    """
    params = _trainable(model)
    buffers = [b.detach().clone() for b in model.buffers()]
    if grads is None:
        total = (weights.detach() * task_losses(model, train_batch)).sum()
        grads = torch.autograd.grad(total, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    theta = [p.detach().clone() for p in params]
    try:
        _set(params, [t - alpha * g for t, g in zip(theta, grads)])  # the virtual step theta'
        lval = val_loss(model, val_batch)
        g_val = torch.autograd.grad(lval, params, allow_unused=True)
        g_val = [torch.zeros_like(p) if g is None else g for p, g in zip(params, g_val)]
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in g_val))
        if not torch.isfinite(norm) or norm == 0:
            return torch.zeros_like(weights), float(lval.detach())  # finally: restores theta and buffers
        eps = scale / float(norm)
        with torch.no_grad():
            _set(params, [t + eps * g for t, g in zip(theta, g_val)])
            plus = task_losses(model, train_batch)
            _set(params, [t - eps * g for t, g in zip(theta, g_val)])
            minus = task_losses(model, train_batch)
    finally:
        _set(params, theta)
        _set(list(model.buffers()), buffers)
    hyper = -alpha * (plus - minus).to(weights.dtype) / (2 * eps)
    return hyper.detach(), float(lval.detach())


def exact_hypergradient(model: nn.Module, task_losses: TaskLosses, train_batch: Any, val_loss: ValLoss,
                        val_batch: Any, weights: torch.Tensor, alpha: float) -> torch.Tensor:
    """dL_val(theta'(lambda))/dlambda by autograd through the virtual step (second order; small models only)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for p in model.parameters() if p.requires_grad]
    lam = weights.detach().clone().requires_grad_(True)
    total = (lam * task_losses(model, train_batch)).sum()
    grads = torch.autograd.grad(total, params, create_graph=True)
    stepped = {n: p - alpha * g for n, p, g in zip(names, params, grads)}
    lval = val_loss(lambda batch: functional_call(model, stepped, (batch,)), val_batch)
    return torch.autograd.grad(lval, lam)[0].detach()


class TaskWeights(nn.Module):
    """The task weights lambda (start at 1, unconstrained) and their Adam optimiser (BLADES: lr 3e-4)."""

    def __init__(self, names: Sequence[str], lr: float = 3e-4) -> None:
        super().__init__()
        self.names = tuple(names)
        self.values = nn.Parameter(torch.ones(len(self.names), dtype=torch.float64))
        self.optimizer = torch.optim.Adam([self.values], lr=lr)

    def update(self, hypergradient: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.values.grad = hypergradient.detach().to(self.values.dtype).clone()
        self.optimizer.step()

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self.values.detach().tolist()))


def bilevel_step(model: nn.Module, optimizer: torch.optim.Optimizer, weights: TaskWeights | None,
                 task_losses: TaskLosses, train_batch: Any, val_loss: ValLoss | None = None,
                 val_batch: Any = None) -> dict[str, Any]:
    """One inner step on ``sum(lambda_i L_i)`` and, when ``val_batch`` is given, one Adam step of the lambdas.

    The virtual step uses the optimiser's current learning rate as ``alpha`` and the same gradient as the real
    step (computed once), so the weights of step t+1 learn from step t's gradient. ``weights=None``: equal weights
    (1 each), no outer problem. Returns the task losses, the validation loss and the hypergradient (for the log).
    """
    losses = task_losses(model, train_batch)
    lam = weights.values.detach().to(losses.dtype) if weights is not None else torch.ones_like(losses)
    total = (lam * losses).sum()
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    out: dict[str, Any] = {"losses": losses.detach(), "total": float(total.detach())}
    if weights is not None and val_batch is not None:
        params = _trainable(model)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        alpha = float(optimizer.param_groups[0]["lr"])
        hyper, lval = finite_difference_hypergradient(model, task_losses, train_batch, val_loss, val_batch,
                                                      weights.values.detach(), alpha, grads=grads)
        weights.update(hyper)
        out.update(val_loss=lval, hypergradient=hyper)
    optimizer.step()
    return out
