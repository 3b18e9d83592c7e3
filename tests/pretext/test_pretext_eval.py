"""Tests of aigfd_lite.pretext.evaluation: ranking accuracy on all pairs or on seeded samples of pairs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aigfd_lite.losses import pairwise_ranking_accuracy
from aigfd_lite.pretext.batches import ranking_accuracy as reexported
from aigfd_lite.pretext.evaluation import MAX_PAIRS, ranking_accuracy


def noisy_scores(n, seed=0):
    rng = np.random.default_rng(seed)
    tags = rng.choice([100.0, 200.0, 400.0, 800.0, np.nan], n)
    scores = np.nan_to_num(np.log(tags), nan=0.0) + rng.normal(0, 0.8, n)
    return torch.from_numpy(scores), torch.from_numpy(tags)


def test_all_pairs_below_the_threshold_are_exact():
    assert reexported is ranking_accuracy
    scores, tags = noisy_scores(33)  # lite's 33 held-out faces: 528 pairs, far below MAX_PAIRS
    assert 33 * 32 // 2 <= MAX_PAIRS
    assert ranking_accuracy(scores, tags) == pairwise_ranking_accuracy(scores, tags)
    exact = pairwise_ranking_accuracy(scores, tags)
    assert ranking_accuracy(scores, tags, max_pairs=528) == exact  # a "sample" as large as all pairs: all pairs


def test_by_hand():
    scores, tags = torch.tensor([0.1, 0.5, 0.5, 2.0]), torch.tensor([1.0, 2.0, 3.0, 3.0])
    # untied pairs: (0,1) right, (0,2) right, (0,3) right, (1,2) score tie -> 0.5, (1,3) right; (2,3) tag tie
    assert ranking_accuracy(scores, tags) == (pytest.approx(4.5 / 5), 5)


def test_sampled_pairs_are_seeded_and_estimate_the_exact_value():
    scores, tags = noisy_scores(3000, seed=1)  # 4.5 M pairs: sampled
    exact, n_exact = pairwise_ranking_accuracy(scores, tags)
    sampled, n = ranking_accuracy(scores, tags, max_pairs=200_000, seed=7)
    assert 0 < n < 200_000 and n_exact > 10 * n  # NaN and tied tags dropped from the sample
    assert sampled == pytest.approx(exact, abs=0.01)  # ~130K untied pairs: standard error ~0.0013
    assert ranking_accuracy(scores, tags, max_pairs=200_000, seed=7) == (sampled, n)
    assert ranking_accuracy(scores, tags, max_pairs=200_000, seed=8) != (sampled, n)
    with pytest.raises(ValueError, match="max_pairs"):
        ranking_accuracy(scores, tags, max_pairs=0)


def test_a_sample_never_pairs_an_item_with_itself():
    scores, tags = torch.arange(5.0), torch.arange(5.0)  # perfectly ordered: every distinct pair is right
    assert ranking_accuracy(scores, tags, max_pairs=3, seed=0)[0] == 1.0
    assert ranking_accuracy(scores, tags, max_pairs=9, seed=1) == (1.0, 9)


def test_evaluate_pretext_samples_pairs_only_at_scale():
    from test_train import dataset, model  # the tiny synthetic set and network of the training tests

    from aigfd_lite.pretext.evaluation import bootstrap_intervals, evaluate_pretext

    data = dataset(n=40)
    full = evaluate_pretext(model(), data, batch_size=16, progress=False)
    assert full["max_pairs"] == MAX_PAIRS
    n_real = int((full["labels"] == 0).sum())
    scores, tags = torch.from_numpy(full["scores"]["iso"]), torch.from_numpy(full["tags"][:, 3])
    real = torch.from_numpy(full["labels"] == 0)
    assert (full["ranking_accuracy_iso"], full["ranking_pairs_iso"]) == pairwise_ranking_accuracy(
        scores[real], tags[real])  # every pair while there are few
    few = evaluate_pretext(model(), data, batch_size=16, progress=False, max_pairs=50, seed=3)
    assert n_real * (n_real - 1) // 2 > 50 and 0 < few["ranking_pairs_iso"] <= 50
    again = evaluate_pretext(model(), data, batch_size=16, progress=False, max_pairs=50, seed=3)
    assert few["ranking_accuracy_iso"] == again["ranking_accuracy_iso"]
    table = bootstrap_intervals(few, n_resamples=20, seed=1)
    assert table.equals(bootstrap_intervals(few, n_resamples=20, seed=1))  # seeded resamples, seeded pairs
