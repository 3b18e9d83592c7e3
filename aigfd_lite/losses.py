"""The losses of the pretext task (Eq. 2-6 of the paper): Thurstone ranking probability, fidelity loss, the pairwise
ranking loss over a minibatch, the manipulation-classification loss and the overall loss.

Equation -> function (numbering as the book cites the paper): Eq. 1 (pair labels) ->
:func:`aigfd_lite.exif.pair_labels`; Eq. 2 -> :func:`thurstone_probability`; Eq. 3 -> :func:`fidelity_loss` (and
its mean over a minibatch's pairs, :func:`pairwise_ranking_loss`); Eq. 4 (the manipulation loss: the fidelity loss
of the manipulation probability against the binary label) and Eq. 5 (that probability, the sigmoid of the
manipulation head's output) -> :func:`manipulation_loss`; Eq. 6 (the overall loss) -> :func:`total_loss`.

Taught in chapter 2 (``book/02_fidelity_loss.md``); used by the pretraining loop of chapter 4.

Paper and published code differ in three places here (reference notes, differences 1, 4 and 5): the paper's
Thurstone model is ``Phi((s_x - s_y) / sqrt(2))`` (Eq. 2), the code's ``Phi(2 (s_x - s_y))`` (both offered through
``variant``; the paper's is the default); the code gives tied pairs the target 0.5 (Eq. 1 has ">=" over ordered
pairs; see :func:`pairwise_ranking_loss`); and the code adds ``eps`` inside the fidelity loss's roots
(:data:`FIDELITY_EPS`; the book keeps it).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .exif import ORDINAL_TAGS, pair_labels

#: The four ordinal EXIF tags ranked by the pretext task (one ranking loss each in Eq. 6), named as in chapter 1.
RANKING_TAGS: tuple[str, ...] = tuple(ORDINAL_TAGS)
#: Keys :func:`total_loss` accepts in ``weights``.
LOSS_TERMS: tuple[str, ...] = (*RANKING_TAGS, "manipulation")
#: Added inside both square roots of the fidelity loss, as the published code does (the paper's Eq. 3 has none).
#: Without it the derivative d sqrt(u) / du = 1 / (2 sqrt(u)) is infinite at u = 0, i.e. at p_hat = 0 or 1, and one
#: saturated pair would turn a whole batch's gradient into inf/NaN. With it the derivative is at most
#: 1 / (2 sqrt(1e-8)) = 5000, and the loss moves down by at most 2 sqrt(eps) = 2e-4 (each root grows by at most
#: sqrt(eps); both reach it when p and p_hat are 0 or 1).
FIDELITY_EPS: float = 1e-8

_VARIANTS = ("paper", "code")


def thurstone_probability(s_x: torch.Tensor, s_y: torch.Tensor, variant: str = "paper") -> torch.Tensor:
    """Probability that x ranks above y under Thurstone's model, from the two scores (Eq. 2).

    ``variant="paper"``: ``Phi((s_x - s_y) / sqrt(2))`` (Case V: each score carries unit-variance Gaussian noise, so
    the difference has variance 2). ``variant="code"``: the published code's ``Phi(2 (s_x - s_y))``, i.e. the same
    curve on a score axis stretched by ``2 sqrt(2)``. ``Phi`` is the standard normal CDF. Elementwise, broadcasting.
    """
    diff = s_x - s_y
    if variant == "paper":
        z = diff / math.sqrt(2.0)
    elif variant == "code":
        z = 2.0 * diff
    else:
        raise ValueError(f"unknown Thurstone variant {variant!r}; choose one of {_VARIANTS}")
    return torch.special.ndtr(z)


def fidelity_loss(p_hat: torch.Tensor, p: torch.Tensor | float, eps: float = FIDELITY_EPS) -> torch.Tensor:
    """Fidelity loss between a predicted probability ``p_hat`` and a target ``p`` (Eq. 3), elementwise.

    ``1 - sqrt(p * p_hat + eps) - sqrt((1 - p) * (1 - p_hat) + eps)``: one minus the Bhattacharyya coefficient of the
    two Bernoulli distributions, so it is 0 when ``p_hat == p`` and at most 1 (Eq. 3 without ``eps``). ``eps``
    (:data:`FIDELITY_EPS`, the published code's, not in the paper) keeps the gradient finite at ``p_hat`` = 0 and 1
    and shifts the value down by at most ``2 sqrt(eps)`` = 2e-4 (e.g. -1e-4 when p = p_hat is 0 or 1; 1 - 2e-4 at
    the other extreme). No reduction: average it yourself.
    """
    p = torch.as_tensor(p, dtype=p_hat.dtype, device=p_hat.device)
    return 1.0 - torch.sqrt(p * p_hat + eps) - torch.sqrt((1.0 - p) * (1.0 - p_hat) + eps)


def pairwise_ranking_loss(
    scores: torch.Tensor, tags: torch.Tensor, variant: str = "paper", tie: float = 0.5
) -> torch.Tensor:
    """Mean fidelity loss over all valid i < j pairs of one minibatch (Eq. 1-3) for one EXIF tag.

    ``scores`` (N,) are the ranking head's outputs, ``tags`` (N,) the tag values with NaN for missing tags. The
    labels come from :func:`aigfd_lite.exif.pair_labels` (target 1 / 0 / 0.5 when tag_i is greater / smaller / equal;
    pairs with a NaN tag are dropped). The 0.5 on ties is the published code's rule, not the paper's: Eq. 1 gives 1
    when tag_x >= tag_y, over ordered pairs, so a tied pair appears in both orders with target 1 each time, which is
    order-free too. ``tie=1.0`` puts Eq. 1's value on the i < j pairs used here, one direction only, which does
    depend on the order in the batch (exercise in chapter 2). Vectorised: one gather and one
    fidelity evaluation for all pairs; ``variant`` picks the Thurstone model (:func:`thurstone_probability`).

    If no pair is valid (fewer than two tagged images), returns ``scores.sum() * 0``: a zero that is still attached
    to the graph, so ``backward()`` on the overall loss works and the batch simply contributes nothing to this term.
    """
    if not isinstance(tags, torch.Tensor):  # lists / numpy arrays of tag values (None is not a tag: use NaN)
        tags = torch.as_tensor(tags, dtype=torch.float64)
    if scores.ndim != 1 or tags.ndim != 1:
        raise ValueError(f"scores and tags must be 1-D, got shapes {tuple(scores.shape)} and {tuple(tags.shape)}")
    if scores.shape[0] != tags.shape[0]:
        raise ValueError(f"scores ({scores.shape[0]}) and tags ({tags.shape[0]}) differ in length")
    if variant not in _VARIANTS:
        raise ValueError(f"unknown Thurstone variant {variant!r}; choose one of {_VARIANTS}")
    i, j, target = pair_labels(tags, tie=tie)
    i = torch.as_tensor(i, dtype=torch.long, device=scores.device)
    j = torch.as_tensor(j, dtype=torch.long, device=scores.device)
    if i.numel() == 0:
        return scores.sum() * 0.0 + 0.0  # "+ 0.0" turns IEEE -0.0 (negative sum) into 0.0; NaN scores stay NaN
    target = torch.as_tensor(target, dtype=scores.dtype, device=scores.device)
    p_hat = thurstone_probability(scores[i], scores[j], variant)
    return fidelity_loss(p_hat, target).mean()


@torch.no_grad()
def pairwise_ranking_accuracy(scores: torch.Tensor, tags: torch.Tensor) -> tuple[float, int]:
    """Fraction of valid, untied i < j pairs whose scores are ordered like their tags, and the number of such pairs.

    Equal scores count as half right (chance level is 0.5). Returns ``(nan, 0)`` when no pair qualifies.
    """
    i, j, target = pair_labels(tags)
    i = torch.as_tensor(i, dtype=torch.long, device=scores.device)
    j = torch.as_tensor(j, dtype=torch.long, device=scores.device)
    target = torch.as_tensor(target, dtype=torch.float64, device=scores.device)
    keep = target != 0.5
    i, j, target = i[keep], j[keep], target[keep]
    if i.numel() == 0:
        return float("nan"), 0
    predicted = (scores[i] > scores[j]).double() + 0.5 * (scores[i] == scores[j]).double()
    right = torch.where(target == 1.0, predicted, 1.0 - predicted)
    return float(right.mean()), int(i.numel())


def manipulation_loss(logits: torch.Tensor, targets: torch.Tensor, form: str = "fidelity") -> torch.Tensor:
    """Manipulation-classification loss (Eq. 4, with Eq. 5's probability), averaged over the batch.

    ``targets``: 1 = manipulated, 0 = real. ``form="fidelity"`` (default, the paper's form; the published code does
    the same): the manipulation head's logit goes through a sigmoid to a probability ``q_hat`` (Eq. 5), which Eq. 4
    scores with the fidelity loss against the binary label. ``form="bce"``: ordinary binary cross-entropy on the logit
    (``binary_cross_entropy_with_logits``), offered for comparison (chapter 2 plots both).
    ``logits`` may be (N,) or (N, 1). An empty batch gives a graph-attached zero.
    """
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits.squeeze(1)
    targets = torch.as_tensor(targets, device=logits.device).to(logits.dtype)
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    if targets.numel() and (torch.isnan(targets).any() or (targets < 0).any() or (targets > 1).any()):
        raise ValueError("manipulation targets must lie in [0, 1] (1 = manipulated, 0 = real), without NaN")
    if logits.numel() == 0:
        return logits.sum() * 0.0
    if form == "fidelity":
        return fidelity_loss(torch.sigmoid(logits), targets).mean()
    if form == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets)
    raise ValueError(f"unknown manipulation loss form {form!r}; choose 'fidelity' or 'bce'")


def total_loss(
    ranking_losses: Mapping[str, torch.Tensor],
    manipulation: torch.Tensor,
    weights: Mapping[str, float] | None = None,
    strict: bool = True,
) -> torch.Tensor:
    """The overall pretext loss (Eq. 6): the four ranking losses plus the manipulation loss, each weight 1 by default.

    ``ranking_losses`` maps tag names (:data:`RANKING_TAGS`) to scalar losses; ``weights`` maps any of
    :data:`LOSS_TERMS` to a float (missing terms keep weight 1). Unknown keys raise ``ValueError``; so does a
    missing tag unless ``strict=False`` (e.g. an ablation that ranks only some tags).
    """
    unknown = sorted(set(ranking_losses) - set(RANKING_TAGS))
    if unknown:
        raise ValueError(f"unknown ranking loss(es) {unknown}; known tags: {list(RANKING_TAGS)}")
    missing = [t for t in RANKING_TAGS if t not in ranking_losses]
    if strict and missing:
        raise ValueError(f"missing ranking loss(es) {missing} (pass strict=False to rank only some tags)")
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(LOSS_TERMS))
    if unknown:
        raise ValueError(f"unknown loss weight(s) {unknown}; known terms: {list(LOSS_TERMS)}")
    terms = {**ranking_losses, "manipulation": manipulation}
    for name, value in terms.items():
        if not isinstance(value, torch.Tensor) or value.ndim != 0:
            raise ValueError(f"loss {name!r} must be a scalar tensor, got {type(value).__name__} "
                             f"{tuple(getattr(value, 'shape', ()))}")
    total = manipulation.new_zeros(())
    for name, value in terms.items():
        total = total + float(weights.get(name, 1.0)) * value
    return total


# ---------------------------------------------------------------------------------------------------------------
# BLADES' losses (chapter 7, book/07_blades.md): categorical, multi-label and three-level ordinal tasks.


def focal_fidelity_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                        eps: float = FIDELITY_EPS) -> torch.Tensor:
    """Focal fidelity loss of one categorical task (BLADES), per sample: shape (N,).

    With ``p = softmax(logits)`` (N, C) and integer targets ``y`` (N,): ``(1 - p_y)^gamma * (1 - sqrt(p_y + eps))``.
    The fidelity term ``1 - sqrt(p_y)`` is the multi-class form of Eq. 3 (one minus the Bhattacharyya coefficient
    of ``p`` and the one-hot target); the focal factor ``(1 - p_y)^gamma`` (gamma = 2, BLADES) down-weights
    classes the model already gets right, so rare categories (a seldom-seen camera make) keep pulling.
    ``p_y`` comes from ``log_softmax`` (exp of a log-probability), so extreme logits give 0 or 1, never NaN;
    ``eps`` (as in the published code) bounds the square root's derivative. ``gamma = 0`` gives the plain
    multi-class fidelity loss. Targets outside ``[0, C)`` raise ``ValueError``; mask missing labels yourself.
    """
    if logits.ndim != 2 or target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(f"logits must be (N, C) and target (N,), got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    target = target.long()
    if target.numel() and (target.min() < 0 or target.max() >= logits.shape[1]):
        raise ValueError(f"targets must lie in [0, {logits.shape[1]}), got {target.min()}..{target.max()}")
    p_y = torch.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1).exp()
    return (1.0 - p_y).pow(gamma) * (1.0 - torch.sqrt(p_y + eps))


def multilabel_fidelity_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Multi-label fidelity loss (BLADES' fine-grained parts: eye, mouth), per sample: shape (N,).

    Each of the L labels is its own Bernoulli: ``sigmoid(logits)`` (N, L) against 0/1 ``targets`` (N, L) with
    :func:`fidelity_loss` (Eq. 3), then the mean over the labels.
    """
    if logits.shape != targets.shape or logits.ndim != 2:
        raise ValueError(f"logits and targets must both be (N, L), got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    return fidelity_loss(torch.sigmoid(logits), targets.to(logits.dtype)).mean(dim=1)


def expected_level(logits: torch.Tensor) -> torch.Tensor:
    """Expected level ``E = sum_k k p_k`` (k = 1..K) of a softmax over K ordered levels; (N, K) -> (N,)."""
    levels = torch.arange(1, logits.shape[1] + 1, dtype=logits.dtype, device=logits.device)
    return torch.softmax(logits, dim=1) @ levels


def ordinal_level_ranking_loss(logits: torch.Tensor, levels: torch.Tensor, variant: str = "paper") -> torch.Tensor:
    """BLADES' ranking loss of one ordinal tag discretised into levels (low / medium / high), a scalar.

    ``logits`` (N, K) over the levels, ``levels`` (N,) integer levels with ``-1`` for a missing tag. The score of a
    face is its expected level (:func:`expected_level`); all valid i < j pairs get the target
    ``0.5 (sign(level_i - level_j) + 1)`` (1 / 0.5 / 0), the Thurstone probability of the two scores
    (:func:`thurstone_probability`: ``variant="paper"`` is paper 1's ``Phi(x / sqrt 2)``, ``"code"`` the published
    code's ``Phi(2 x)``) and the fidelity loss (Eq. 3), averaged over the pairs. No valid pair: a graph-attached 0.
    """
    if logits.ndim != 2 or levels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (N, K) and levels (N,), got {tuple(logits.shape)} and "
                         f"{tuple(levels.shape)}")
    valid = torch.nonzero(levels >= 0).squeeze(1)
    i, j = torch.triu_indices(len(valid), len(valid), offset=1, device=logits.device)
    if i.numel() == 0:
        return logits.sum() * 0.0
    i, j = valid[i], valid[j]
    score = expected_level(logits)
    target = 0.5 * (torch.sign((levels[i] - levels[j]).to(logits.dtype)) + 1.0)
    return fidelity_loss(thurstone_probability(score[i], score[j], variant), target).mean()
