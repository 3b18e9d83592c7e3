"""aigfd_lite.evaluation.ceiling: the best operating point any candidate reaches, found on the test faces."""
import numpy as np
import pytest

from aigfd_lite.evaluation.ceiling import operating_points, oracle_ceiling

PARAMS = dict(reg_covar=1e-6, false_alarm=0.05, threshold_rule="split-conformal", calibration_fraction=1 / 3,
              random_state=0)
CANDS = [{"n_components": 1, "pca_components": 4}, {"n_components": 1, "pca_components": 16}]


def _features(seed=0, n=300, d=20):
    """Real faces with four loud directions; generator "quiet" moves along the quiet ones (a 4-d PCA misses it),
    generator "same" is drawn like the real faces (nothing can catch it beyond the false alarm)."""
    rng = np.random.default_rng(seed)
    scales = np.r_[np.full(4, 10.0), np.full(d - 4, 0.3)]
    draw = lambda: rng.normal(size=(n, d)) * scales
    fit, real = draw(), draw()
    quiet = draw() + np.r_[np.zeros(4), np.full(d - 4, 1.0)]
    return {"fit": fit, "sets": {"quiet": (real, quiet), "same": (real, draw())}}


def test_operating_points_measure_each_candidate():
    points = operating_points(_features(), CANDS, PARAMS)
    assert len(points) == 2 * len(CANDS)  # raw and L2-normalised
    raw = points[points["preprocessing"] == "raw"].set_index("pca_components")
    assert raw.loc[16, "quiet TPR"] > 0.9 > 0.2 > raw.loc[4, "quiet TPR"]
    assert raw.loc[16, "quiet acc"] == pytest.approx((raw.loc[16, "quiet TPR"] + 1 - 0.05) / 2, abs=0.05)
    assert (points["same TPR"] < 0.15).all()  # at the 5 % threshold, like a real face


def test_ceiling_is_the_best_candidate_and_names_it():
    ceiling = oracle_ceiling({"feats": _features()}, CANDS, PARAMS).loc["feats"]
    points = operating_points(_features(), CANDS, PARAMS)
    assert ceiling["best quiet TPR"] == points["quiet TPR"].max()
    # one detector for both generators: the lowest of its two TPRs, maximised
    assert ceiling["best worst-generator TPR"] == points[["quiet TPR", "same TPR"]].min(axis=1).max()
    assert ceiling["best worst-generator TPR"] < 0.15  # "same" cannot be caught by any setting
    assert "PCA 16" in ceiling["setting of best accuracy"]
    assert ceiling["candidates"] == 4


def test_ceiling_needs_candidates():
    with pytest.raises(ValueError, match="no candidate"):
        oracle_ceiling({"feats": _features()}, [], PARAMS)
