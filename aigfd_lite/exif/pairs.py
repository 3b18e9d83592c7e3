"""The pairwise ranking labels of the paper's Eq. 1 (chapter 1), on which chapter 2's ranking loss is built."""
from __future__ import annotations

from typing import Any

import torch

def _as_float_tensor(tags: Any) -> torch.Tensor:
    tags = torch.as_tensor(tags)
    if tags.ndim != 1:
        raise ValueError(f"tags must be a 1-D tensor (one value per image), got shape {tuple(tags.shape)}")
    return tags if tags.is_floating_point() else tags.to(torch.get_default_dtype())


def pair_labels(tags: Any, tie: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets of all i<j pairs of a minibatch (the paper's Eq. 1), vectorised.

    ``tags`` is 1-D with one tag value per image; NaN marks a missing tag and every pair touching it is dropped.
    Returns ``(i, j, target)``: index tensors (int64) of the kept pairs and their targets in ``tags``' float dtype,
    1 where ``tags[i] > tags[j]``, 0 where smaller and ``tie`` (0.5, the published code's choice) where equal.
    Eq. 1 states ">=" over ordered pairs, which is order-free: a tied pair appears as (i, j) and as (j, i) with
    target 1 both times. ``tie=1.0`` puts ">=" on the i<j pairs only, which depends on the batch order, so it is
    not the paper's reading; the 0.5 tie rule is the code's (chapter 1 measures how often ties occur).
    """
    tags = _as_float_tensor(tags)
    i, j = torch.triu_indices(len(tags), len(tags), offset=1, device=tags.device)
    left, right = tags[i], tags[j]
    keep = ~(torch.isnan(left) | torch.isnan(right))
    i, j, left, right = i[keep], j[keep], left[keep], right[keep]
    target = torch.full_like(left, float(tie))
    target = torch.where(left > right, torch.ones_like(left), target)
    target = torch.where(left < right, torch.zeros_like(left), target)
    return i, j, target


def pair_label_matrix(tags: Any, tie: float = 0.5, upper_only: bool = True) -> torch.Tensor:
    """The (B, B) matrix of pair targets for a heatmap: entry (i, j) is :func:`pair_labels`' target for pair (i, j).

    NaN where undefined: the diagonal, pairs with a missing tag and, with ``upper_only`` (the pairs the loss
    uses), the lower triangle. With ``upper_only=False`` the lower triangle holds 1 - target (the same pair, seen
    the other way round).
    """
    tags = _as_float_tensor(tags)
    matrix = torch.full((len(tags), len(tags)), float("nan"), dtype=tags.dtype, device=tags.device)
    i, j, target = pair_labels(tags, tie=tie)
    matrix[i, j] = target
    if not upper_only:
        matrix[j, i] = 1.0 - target
    return matrix
