"""Tests of aigfd_lite.blades.bilevel (chapter 7): the finite-difference hypergradient against the exact second-order one,
parameters and BatchNorm buffers restored after the virtual steps, and the Adam update of the task weights."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from aigfd_lite.blades.bilevel import TaskWeights, bilevel_step, exact_hypergradient, finite_difference_hypergradient


def _tiny(batchnorm: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)]
    if batchnorm:
        layers.insert(1, nn.BatchNorm1d(6))
    return nn.Sequential(*layers).double()


def _task_losses(model, batch):
    x, y = batch
    out = model(x)
    return torch.stack([((out[:, k] - y[:, k]) ** 2).mean() for k in range(3)])


def _val_loss(model, batch):
    x, y = batch
    return ((model(x)[:, 0] - y[:, 0]) ** 2).mean() + 0.3 * ((model(x)[:, 2] - y[:, 2]) ** 2).mean()


def _batches():
    g = torch.Generator().manual_seed(1)
    train = (torch.randn(16, 4, generator=g, dtype=torch.float64), torch.randn(16, 3, generator=g,
                                                                               dtype=torch.float64))
    val = (torch.randn(16, 4, generator=g, dtype=torch.float64), torch.randn(16, 3, generator=g,
                                                                             dtype=torch.float64))
    return train, val


@pytest.mark.parametrize("alpha", [0.05, 0.5])
def test_finite_difference_matches_exact_second_order(alpha):
    model = _tiny()
    train, val = _batches()
    weights = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    exact = exact_hypergradient(model, _task_losses, train, _val_loss, val, weights, alpha)
    approx, _ = finite_difference_hypergradient(model, _task_losses, train, _val_loss, val, weights, alpha)
    assert exact.abs().max() > 1e-4  # a non-trivial hypergradient
    assert torch.allclose(approx, exact, rtol=1e-4, atol=1e-8), (approx, exact)


def test_hypergradient_is_a_derivative_of_the_validation_loss():
    """The exact hypergradient itself, checked against a finite difference in lambda of L_val(theta'(lambda))."""
    model, (train, val), alpha = _tiny(), _batches(), 0.3
    weights = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    exact = exact_hypergradient(model, _task_losses, train, _val_loss, val, weights, alpha)

    def after_step(lam):
        params = list(model.parameters())
        grads = torch.autograd.grad((lam * _task_losses(model, train)).sum(), params)
        from torch.func import functional_call
        names = [n for n, _ in model.named_parameters()]
        stepped = {n: p - alpha * g for n, p, g in zip(names, params, grads)}
        return float(_val_loss(lambda x: functional_call(model, stepped, (x,)), val).detach())

    h = 1e-6
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = h
        numeric = (after_step(weights + e) - after_step(weights - e)) / (2 * h)
        assert numeric == pytest.approx(float(exact[i]), rel=1e-5, abs=1e-9)


def test_virtual_steps_leave_parameters_and_buffers_unchanged():
    model = _tiny(batchnorm=True)
    train, val = _batches()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finite_difference_hypergradient(model, _task_losses, train, _val_loss, val, torch.ones(3, dtype=torch.float64),
                                    0.1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bilevel_step_moves_weights_by_adam_and_equal_weights_stay():
    model = _tiny()
    train, val = _batches()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    weights = TaskWeights(["a", "b", "c"], lr=3e-4)
    expected, _ = finite_difference_hypergradient(model, _task_losses, train, _val_loss, val,
                                                  weights.values.detach(), 0.1)
    out = bilevel_step(model, opt, weights, _task_losses, train, _val_loss, val)
    assert torch.allclose(out["hypergradient"], expected)
    # Adam's first step moves every weight by lr against the sign of its gradient.
    assert torch.allclose(weights.values.detach(), 1 - 3e-4 * torch.sign(expected), atol=1e-9)
    plain = _tiny()
    bilevel_step(plain, torch.optim.SGD(plain.parameters(), lr=0.1), None, _task_losses, train)
    assert not torch.equal(plain[0].weight, _tiny()[0].weight)  # the inner step happened
