"""Tests of aigfd_lite.losses (chapter 2): hand-computed values, gradchecks in double precision, the vectorised
ranking loss against a plain double loop over pairs, and bad inputs."""
from __future__ import annotations

import math

import pytest
import torch

from aigfd_lite.losses import (
    FIDELITY_EPS,
    RANKING_TAGS,
    fidelity_loss,
    manipulation_loss,
    pairwise_ranking_accuracy,
    pairwise_ranking_loss,
    thurstone_probability,
    total_loss,
)

D = torch.float64
SQRT_EPS = math.sqrt(FIDELITY_EPS)  # 1e-4


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=D)


# --- Eq. 2: Thurstone probability -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["paper", "code"])
def test_thurstone_equal_scores_is_one_half(variant):
    assert thurstone_probability(t(0.0, 3.2, -7.0), t(0.0, 3.2, -7.0), variant).tolist() == [0.5, 0.5, 0.5]


def test_thurstone_known_values_of_phi():
    # Phi(1) = 0.8413447460685429, Phi(-1.959963984540054) = 0.025, Phi(2) = 0.9772498680518208.
    # paper: z = d / sqrt 2, so d = sqrt 2 gives Phi(1); code: z = 2 d, so d = 0.5 gives Phi(1).
    paper = thurstone_probability(t(math.sqrt(2.0), 0.0, 2 * math.sqrt(2.0)), t(0.0, 1.959963984540054 * math.sqrt(2.0), 0.0))
    assert paper.tolist() == pytest.approx([0.8413447460685429, 0.025, 0.9772498680518208], abs=1e-12)
    code = thurstone_probability(t(0.5, 0.0, 1.0), t(0.0, 1.959963984540054 / 2, 0.0), variant="code")
    assert code.tolist() == pytest.approx([0.8413447460685429, 0.025, 0.9772498680518208], abs=1e-12)


def test_thurstone_is_antisymmetric_and_code_is_a_rescaled_paper():
    g = torch.Generator().manual_seed(0)
    sx, sy = torch.randn(50, generator=g, dtype=D), torch.randn(50, generator=g, dtype=D)
    for variant in ("paper", "code"):
        p = thurstone_probability(sx, sy, variant) + thurstone_probability(sy, sx, variant)
        assert torch.allclose(p, torch.ones_like(p), atol=1e-12)
    # Phi(2 d) = Phi((2 sqrt 2 d) / sqrt 2): the code's scores live on a scale 2 sqrt 2 times smaller.
    scale = 2 * math.sqrt(2.0)
    assert torch.allclose(thurstone_probability(sx, sy, "code"), thurstone_probability(scale * sx, scale * sy), atol=1e-12)


def test_thurstone_unknown_variant_raises():
    with pytest.raises(ValueError, match="variant"):
        thurstone_probability(t(1.0), t(0.0), variant="Paper")


# --- Eq. 3: fidelity loss ---------------------------------------------------------------------------------------


def test_fidelity_is_zero_when_prediction_matches_target():
    p = t(0.0, 0.2, 0.5, 0.9, 1.0)
    loss = fidelity_loss(p.clone(), p)
    # eps inside the roots: exactly -sqrt(eps) = -1e-4 at the ends, ~ -1e-8/(...) inside.
    assert loss.tolist() == pytest.approx([-SQRT_EPS, 0.0, 0.0, 0.0, -SQRT_EPS], abs=2e-7)


def test_fidelity_hand_values():
    # p = 1, p_hat = 0: 1 - sqrt(eps) - sqrt(eps) (the maximum, ~1).
    assert fidelity_loss(t(0.0), t(1.0)).item() == pytest.approx(1 - 2 * SQRT_EPS, abs=1e-12)
    assert fidelity_loss(t(1.0), t(0.0)).item() == pytest.approx(1 - 2 * SQRT_EPS, abs=1e-12)
    # p = 0.5, p_hat = 1: 1 - sqrt(0.5 + eps) - sqrt(eps).
    assert fidelity_loss(t(1.0), t(0.5)).item() == pytest.approx(1 - math.sqrt(0.5 + 1e-8) - 1e-4, abs=1e-12)
    # p = 1, p_hat = 0.25: 1 - sqrt(0.25 + eps) - sqrt(eps) = 0.5 - 1e-4 (approximately).
    assert fidelity_loss(t(0.25), 1.0).item() == pytest.approx(0.5 - 1e-4, abs=1e-7)
    # Without eps it is exactly one minus the Bhattacharyya coefficient: p = 0.3, p_hat = 0.6.
    expected = 1 - math.sqrt(0.3 * 0.6) - math.sqrt(0.7 * 0.4)
    assert fidelity_loss(t(0.6), t(0.3), eps=0.0).item() == pytest.approx(expected, abs=1e-15)


def test_eps_shifts_the_fidelity_loss_by_at_most_two_root_eps():
    # Each root grows by at most sqrt(eps); both do when p and p_hat sit at opposite ends (p = 1, p_hat = 0).
    grid = torch.linspace(0, 1, 201, dtype=D)
    p_hat, p = torch.meshgrid(grid, grid, indexing="ij")
    shift = fidelity_loss(p_hat, p, eps=0.0) - fidelity_loss(p_hat, p)
    assert shift.min() >= 0 and shift.max() <= 2 * SQRT_EPS + 1e-15
    assert shift.max() == pytest.approx(2 * SQRT_EPS, rel=1e-9)


def test_fidelity_broadcasts_and_is_bounded():
    p_hat = torch.linspace(0, 1, 101, dtype=D)
    for p in (0.0, 0.5, 1.0):
        loss = fidelity_loss(p_hat, p)
        assert loss.shape == p_hat.shape
        assert loss.min() >= -1.001 * SQRT_EPS and loss.max() <= 1.0


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("at", [0.0, 1.0])
def test_fidelity_gradient_is_finite_at_the_ends(p, at):
    p_hat = torch.tensor([at], dtype=D, requires_grad=True)
    fidelity_loss(p_hat, torch.tensor([p], dtype=D)).sum().backward()
    assert torch.isfinite(p_hat.grad).all()
    # Hand value: d/dp_hat = -p / (2 sqrt(p p_hat + eps)) + (1 - p) / (2 sqrt((1 - p)(1 - p_hat) + eps)).
    expected = -p / (2 * math.sqrt(p * at + 1e-8)) + (1 - p) / (2 * math.sqrt((1 - p) * (1 - at) + 1e-8))
    assert p_hat.grad.item() == pytest.approx(expected, rel=1e-9)


def test_fidelity_gradient_at_the_ends_is_finite_in_float32_too():
    p_hat = torch.tensor([0.0, 1.0, 0.0, 1.0], requires_grad=True)
    fidelity_loss(p_hat, torch.tensor([1.0, 0.0, 0.0, 1.0])).sum().backward()
    assert torch.isfinite(p_hat.grad).all()
    assert p_hat.grad[0].item() == pytest.approx(-5000.0, rel=1e-3)


@pytest.mark.parametrize("variant", ["paper", "code"])
def test_gradcheck_thurstone_and_fidelity(variant):
    g = torch.Generator().manual_seed(1)
    sx = torch.randn(7, generator=g, dtype=D, requires_grad=True)
    sy = torch.randn(7, generator=g, dtype=D, requires_grad=True)
    p = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0, 0.5, 1.0], dtype=D)
    assert torch.autograd.gradcheck(lambda a, b: fidelity_loss(thurstone_probability(a, b, variant), p), (sx, sy))


# --- the pairwise ranking loss (Eq. 1-3 over a minibatch) ------------------------------------------------------


def loop_ranking_loss(scores: list[float], tags: list[float], variant: str) -> float:
    """The plain, unvectorised reference: every i < j pair with both tags present, scalar math only."""
    total, count = 0.0, 0
    for i in range(len(scores)):
        for j in range(i + 1, len(scores)):
            if math.isnan(tags[i]) or math.isnan(tags[j]):
                continue
            p = 1.0 if tags[i] > tags[j] else 0.0 if tags[i] < tags[j] else 0.5
            d = scores[i] - scores[j]
            z = d / math.sqrt(2.0) if variant == "paper" else 2.0 * d
            p_hat = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
            total += 1 - math.sqrt(p * p_hat + 1e-8) - math.sqrt((1 - p) * (1 - p_hat) + 1e-8)
            count += 1
    return total / count


def random_batch(seed: int, n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, generator=g, dtype=D) * 1.5
    tags = torch.randint(0, 5, (n,), generator=g).to(D)  # few distinct values: many ties
    tags[torch.rand(n, generator=g) < 0.25] = float("nan")
    return scores, tags


@pytest.mark.parametrize("variant", ["paper", "code"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vectorised_ranking_loss_matches_double_loop(variant, seed):
    scores, tags = random_batch(seed)
    assert torch.isnan(tags).any() and len(set(tags[~torch.isnan(tags)].tolist())) < (~torch.isnan(tags)).sum()
    got = pairwise_ranking_loss(scores, tags, variant).item()
    assert got == pytest.approx(loop_ranking_loss(scores.tolist(), tags.tolist(), variant), abs=1e-12)


def test_tie_option_passes_through_to_pair_labels():
    # A tie with tie=1.0 (Eq. 1's ">=" on the one i < j pair) has target 1: s_0 - s_1 = sqrt 2 gives p_hat = Phi(1).
    scores, tags = t(math.sqrt(2.0), 0.0), t(3.0, 3.0)
    expected_one = 1 - math.sqrt(0.8413447460685429 + 1e-8) - 1e-4
    assert pairwise_ranking_loss(scores, tags, tie=1.0).item() == pytest.approx(expected_one, abs=1e-12)
    half = 1 - math.sqrt(0.5 * 0.8413447460685429 + 1e-8) - math.sqrt(0.5 * (1 - 0.8413447460685429) + 1e-8)
    assert pairwise_ranking_loss(scores, tags).item() == pytest.approx(half, abs=1e-12)


def test_ranking_loss_hand_value_two_images():
    # tag_0 > tag_1, s_0 - s_1 = sqrt 2: p_hat = Phi(1), target 1.
    loss = pairwise_ranking_loss(t(math.sqrt(2.0), 0.0), t(5.0, 2.0))
    assert loss.item() == pytest.approx(1 - math.sqrt(0.8413447460685429 + 1e-8) - 1e-4, abs=1e-12)
    # The same scores with the order of the tags reversed: target 0.
    loss = pairwise_ranking_loss(t(math.sqrt(2.0), 0.0), t(2.0, 5.0))
    assert loss.item() == pytest.approx(1 - 1e-4 - math.sqrt(1 - 0.8413447460685429 + 1e-8), abs=1e-12)


def test_ranking_loss_direction_decreases_when_scores_follow_tags():
    tags = t(1.0, 2.0, 3.0, 4.0)
    assert pairwise_ranking_loss(3 * tags, tags) < pairwise_ranking_loss(0 * tags, tags) < pairwise_ranking_loss(-3 * tags, tags)


def test_gradcheck_ranking_loss():
    scores, tags = random_batch(5, n=10)
    scores.requires_grad_(True)
    for variant in ("paper", "code"):
        assert torch.autograd.gradcheck(lambda s: pairwise_ranking_loss(s, tags, variant), (scores,))


@pytest.mark.parametrize("tags", [[float("nan")] * 6, [float("nan")] * 5 + [3.0], []])
def test_no_valid_pair_gives_a_graph_attached_zero(tags):
    scores = torch.randn(len(tags), dtype=D, requires_grad=True)
    loss = pairwise_ranking_loss(scores, torch.tensor(tags, dtype=D))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(scores.grad, torch.zeros_like(scores))


def test_ranking_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        pairwise_ranking_loss(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="length"):
        pairwise_ranking_loss(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match="variant"):
        pairwise_ranking_loss(torch.zeros(4), torch.arange(4.0), variant="cdoe")


def test_pairwise_ranking_accuracy():
    tags = t(1.0, 2.0, 2.0, float("nan"), 4.0)
    assert pairwise_ranking_accuracy(tags.nan_to_num(0.0), tags) == (1.0, 5)  # 6 valid pairs, one tie dropped
    assert pairwise_ranking_accuracy(-tags.nan_to_num(0.0), tags) == (0.0, 5)
    assert pairwise_ranking_accuracy(torch.zeros(5, dtype=D), tags) == (0.5, 5)
    acc, n = pairwise_ranking_accuracy(torch.zeros(3, dtype=D), t(1.0, 1.0, float("nan")))
    assert math.isnan(acc) and n == 0


# --- Eq. 4 (with Eq. 5's sigmoid): manipulation loss; Eq. 6: overall loss ------------------------------------


def test_manipulation_loss_hand_values():
    logits, targets = t(0.0, 0.0), t(1.0, 0.0)
    # sigmoid(0) = 0.5 against 1 (or 0): 1 - sqrt(0.5 + eps) - sqrt(eps).
    assert manipulation_loss(logits, targets).item() == pytest.approx(1 - math.sqrt(0.5 + 1e-8) - 1e-4, abs=1e-12)
    assert manipulation_loss(logits, targets, form="bce").item() == pytest.approx(math.log(2.0), abs=1e-12)
    # logit log(3): q_hat = 0.75 -> fidelity vs 1 = 1 - sqrt(0.75) (up to eps); BCE = -log 0.75.
    logit = t(math.log(3.0))
    assert manipulation_loss(logit, t(1.0)).item() == pytest.approx(1 - math.sqrt(0.75 + 1e-8) - 1e-4, abs=1e-12)
    assert manipulation_loss(logit, t(1.0), form="bce").item() == pytest.approx(-math.log(0.75), abs=1e-12)


def test_manipulation_loss_shapes_and_bad_input():
    logits = torch.randn(6, 1, dtype=D, requires_grad=True)
    targets = torch.tensor([1, 0, 1, 0, 0, 1])
    loss = manipulation_loss(logits, targets)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(logits.grad).all()
    assert torch.autograd.gradcheck(lambda z: manipulation_loss(z, targets), (logits,))
    with pytest.raises(ValueError, match="shape"):
        manipulation_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        manipulation_loss(torch.zeros(2), torch.tensor([2.0, 0.0]))
    with pytest.raises(ValueError, match="form"):
        manipulation_loss(torch.zeros(2), torch.zeros(2), form="ce")
    empty = torch.zeros(0, requires_grad=True)
    assert manipulation_loss(empty, torch.zeros(0)).item() == 0.0


def test_total_loss_sums_with_weights():
    ranking = {tag: torch.tensor(float(k + 1), dtype=D, requires_grad=True) for k, tag in enumerate(RANKING_TAGS)}
    manip = torch.tensor(10.0, dtype=D, requires_grad=True)
    assert total_loss(ranking, manip).item() == 1 + 2 + 3 + 4 + 10
    weighted = total_loss(ranking, manip, {"iso": 0.0, "manipulation": 0.5})
    assert weighted.item() == 1 + 2 + 3 + 0 + 5
    weighted.backward()
    assert ranking["iso"].grad.item() == 0.0 and manip.grad.item() == 0.5 and ranking["aperture"].grad.item() == 1.0


def test_total_loss_rejects_unknown_and_missing_keys():
    ranking = {tag: torch.tensor(1.0) for tag in RANKING_TAGS}
    with pytest.raises(ValueError, match="unknown ranking"):
        total_loss({**ranking, "shutter": torch.tensor(1.0)}, torch.tensor(0.0))
    with pytest.raises(ValueError, match="unknown loss weight"):
        total_loss(ranking, torch.tensor(0.0), {"exposure": 2.0})
    partial = {"iso": torch.tensor(2.0)}
    with pytest.raises(ValueError, match="missing"):
        total_loss(partial, torch.tensor(1.0))
    assert total_loss(partial, torch.tensor(1.0), strict=False).item() == 3.0
    with pytest.raises(ValueError, match="scalar"):
        total_loss({**ranking, "iso": torch.ones(3)}, torch.tensor(0.0))


def test_ranking_loss_accepts_lists_and_integer_tags():
    scores = t(0.3, -0.2, 1.1)
    expected = pairwise_ranking_loss(scores, t(100.0, 200.0, 400.0)).item()
    assert pairwise_ranking_loss(scores, torch.tensor([100, 200, 400])).item() == pytest.approx(expected, abs=1e-12)
    assert pairwise_ranking_loss(scores, [100.0, 200.0, 400.0]).item() == pytest.approx(expected, abs=1e-12)


# --- BLADES' losses (chapter 7) ---------------------------------------------------------------------------------
from aigfd_lite.losses import (  # noqa: E402
    expected_level,
    focal_fidelity_loss,
    multilabel_fidelity_loss,
    ordinal_level_ranking_loss,
)


def test_focal_fidelity_hand_computed():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], dtype=torch.float64)
    target = torch.tensor([0, 1])
    out = focal_fidelity_loss(logits, target)
    assert out.shape == (2,)
    # p_y = 0.5: 0.25 * (1 - sqrt(0.5)); p_y = 0.25: 0.5625 * (1 - 0.5)
    expected = torch.tensor([0.25 * (1 - math.sqrt(0.5)), 0.5625 * 0.5], dtype=torch.float64)
    assert torch.allclose(out, expected, atol=1e-6)
    plain = focal_fidelity_loss(logits, target, gamma=0.0)
    assert torch.allclose(plain, torch.tensor([1 - math.sqrt(0.5), 0.5], dtype=torch.float64), atol=1e-6)


def test_focal_fidelity_extreme_logits_have_finite_gradients():
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 80.0]], requires_grad=True)
    target = torch.tensor([0, 0, 2])
    loss = focal_fidelity_loss(logits, target)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logits.grad).all()
    assert loss[0].item() < 1e-3 and loss[1].item() == pytest.approx(1 - math.sqrt(FIDELITY_EPS), abs=1e-4)


def test_focal_fidelity_gradcheck_and_bad_targets():
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 4, 2, 2])
    assert torch.autograd.gradcheck(lambda x: focal_fidelity_loss(x, target), (logits,))
    with pytest.raises(ValueError, match="targets must lie"):
        focal_fidelity_loss(logits, torch.tensor([0, 5, 1, 1]))
    with pytest.raises(ValueError, match="must be"):
        focal_fidelity_loss(logits, torch.tensor([0, 1]))


def test_multilabel_fidelity_mean_over_labels():
    logits = torch.tensor([[0.0, 100.0]], dtype=torch.float64)
    out = multilabel_fidelity_loss(logits, torch.tensor([[1.0, 1.0]]))
    # label 1: p = 0.5, g = 1: 1 - sqrt(0.5 + eps) - sqrt(eps); label 2: ~ -sqrt(eps) (p = g = 1)
    first = 1 - math.sqrt(0.5 + FIDELITY_EPS) - math.sqrt(FIDELITY_EPS)
    assert out.item() == pytest.approx((first + 1 - math.sqrt(1 + FIDELITY_EPS) - math.sqrt(FIDELITY_EPS)) / 2,
                                       abs=1e-6)
    with pytest.raises(ValueError):
        multilabel_fidelity_loss(logits, torch.tensor([1.0, 1.0]))


def test_ordinal_level_ranking_loss_hand_computed():
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 10.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    levels = torch.tensor([0, 2, -1])  # the third face has no tag: one valid pair (0, 1), target 0
    e = expected_level(logits)
    assert e[2].item() == pytest.approx(2.0)
    for variant, z in (("paper", (e[0] - e[1]) / math.sqrt(2)), ("code", 2 * (e[0] - e[1]))):
        p = torch.special.ndtr(z)
        expected = 1 - math.sqrt(FIDELITY_EPS) - math.sqrt(1 - p.item() + FIDELITY_EPS)
        got = ordinal_level_ranking_loss(logits, levels, variant).item()
        assert got == pytest.approx(expected, abs=1e-9)
    tie = ordinal_level_ranking_loss(logits[:2], torch.tensor([1, 1])).item()  # tie: target 0.5
    p = torch.special.ndtr((e[0] - e[1]) / math.sqrt(2)).item()
    assert tie == pytest.approx(1 - math.sqrt(0.5 * p + FIDELITY_EPS) - math.sqrt(0.5 * (1 - p) + FIDELITY_EPS))


def test_ordinal_level_ranking_loss_gradcheck_and_no_pairs():
    logits = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    levels = torch.tensor([0, 1, 2, 1, -1])
    assert torch.autograd.gradcheck(lambda x: ordinal_level_ranking_loss(x, levels), (logits,))
    alone = ordinal_level_ranking_loss(logits, torch.tensor([0, -1, -1, -1, -1]))
    alone.backward()
    assert alone.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
