"""Tests of aigfd_lite.blades.detect (chapter 7): BLADES-OC's two threshold rules, pseudo-outliers, BLADES-BC."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aigfd_lite.blades.detect import (BinaryHead, blades_oc, pseudo_outliers, split_conformal_threshold,
                                      train_blades_bc)


def _features(n, shift, seed, d=6):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, d)) + shift


def test_split_conformal_threshold_hand_computed():
    scores = np.arange(1.0, 40.0)  # 39 scores: k = floor(0.05 * 40) = 2 -> the second smallest
    assert split_conformal_threshold(scores, 0.05) == 2.0
    with pytest.raises(ValueError, match="cannot calibrate"):
        split_conformal_threshold(np.arange(10.0), 0.05)


def test_blades_oc_rules():
    real = _features(400, np.r_[3.0, np.zeros(5)], 0)
    paper = blades_oc(real, n_components=2)
    assert paper.n_components == 2 and paper.l2_normalize and paper.threshold_rule_ == "paper"
    assert np.mean(paper.score_samples(real) < paper.threshold_) == pytest.approx(0.05, abs=0.005)
    conformal = blades_oc(real, n_components=2, threshold_rule="split_conformal")
    assert conformal.threshold_rule_ == "split_conformal" and conformal.threshold_ == conformal.offset_
    unseen = _features(4000, np.r_[3.0, np.zeros(5)], 1)
    assert np.mean(conformal.predict(unseen) == -1) < 0.1
    with pytest.raises(ValueError, match="threshold_rule"):
        blades_oc(real, threshold_rule="median")
    with pytest.raises(ValueError, match="no argument"):
        blades_oc(real, n_component=3)


def test_blades_oc_fits_every_face_under_the_paper_rule_and_splits_once_otherwise():
    real = _features(300, np.r_[3.0, np.zeros(5)], 0)
    paper = blades_oc(real, n_components=2)
    assert len(paper.train_scores_) == 300 and paper.calibration_index_ is None  # nothing held out
    np.testing.assert_allclose(paper.train_scores_, paper.score_samples(real))
    assert paper.threshold_ == np.quantile(paper.score_samples(real), 0.05)
    conformal = blades_oc(real, n_components=2, threshold_rule="split_conformal", calibration_fraction=0.3)
    cal = conformal.calibration_index_
    assert len(cal) == 90 and len(conformal.train_scores_) == 210  # one split: 90 calibrate, 210 fit
    fit = np.setdiff1d(np.arange(300), cal)
    np.testing.assert_allclose(conformal.train_scores_, conformal.score_samples(real[fit]))
    assert conformal.threshold_ == split_conformal_threshold(conformal.score_samples(real[cal]), 0.05)


def test_pseudo_outliers_and_bc_learns_to_separate():
    real = _features(300, np.r_[3.0, np.zeros(5)], 0)
    fake = _features(300, np.r_[0.0, 3.0, np.zeros(4)], 2)
    det = blades_oc(real, n_components=2)
    mask = pseudo_outliers(det, real)
    assert mask.sum() == np.sum(det.score_samples(real) < det.threshold_) > 0
    bc = train_blades_bc(real[~mask], fake, real[mask], epochs=30)
    assert isinstance(bc, BinaryHead) and bc.net[0].out_features == 2 * 6 and bc.net[-1].out_features == 2
    test_real, test_fake = _features(200, np.r_[3.0, np.zeros(5)], 5), _features(200, np.r_[0, 3.0, np.zeros(4)], 6)
    accuracy = (np.mean(bc.score_samples(test_real) >= 0) + np.mean(bc.score_samples(test_fake) < 0)) / 2
    assert accuracy > 0.9
    scaled = bc.score_samples(test_real * 7.0)  # L2-normalised inside: the scale of a feature does not matter
    np.testing.assert_allclose(scaled, bc.score_samples(test_real), rtol=1e-4, atol=1e-4)
    assert torch.is_tensor(bc(torch.zeros(1, 6)))
