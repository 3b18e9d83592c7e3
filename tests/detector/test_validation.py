"""aigfd_lite.detector.validation: choosing K and measuring the false-alarm rate with real faces only."""
import numpy as np
import pytest

from aigfd_lite.plots import toy_real_faces
from aigfd_lite.detector.validation import choose_n_components, held_out_false_alarm, rate_interval


def test_held_out_likelihood_finds_well_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [8, 0], [0, 8]])
    X = np.concatenate([rng.normal(c, 0.5, size=(60, 2)) for c in centres])
    k, table = choose_n_components(X, [1, 2, 3, 6, 12], random_state=0)
    assert k == 3 and list(table.index) == [1, 2, 3, 6, 12]
    assert table.loc[3, "BIC"] < table.loc[1, "BIC"]
    assert table.loc[3, "faces per component"] == pytest.approx(120 / 3)
    with pytest.raises(ValueError, match="exceeds"):
        choose_n_components(X[:9], [7])


def test_rate_interval():
    r = rate_interval(np.r_[np.ones(10), np.zeros(90)], seed=0)
    assert r["rate"] == 0.1 and r["low"] < 0.1 < r["high"] and r["n"] == 100
    assert rate_interval(np.zeros(5)) == {"rate": 0.0, "low": 0.0, "high": 0.0, "n": 5}
    with pytest.raises(ValueError, match="two faces"):
        rate_interval(np.ones(1))


def test_cross_fitted_false_alarm_conformal_versus_paper_rule():
    X = toy_real_faces(300, seed=5)
    rules = {"conformal": dict(n_components=12), "paper": dict(n_components=12,
                                                                threshold_rule="train-quantile")}
    table = held_out_false_alarm(X, rules, groups=np.arange(300) // 2, random_state=0)
    assert list(table.index) == ["conformal", "paper"] and (table["n"] == 300).all()
    assert table.loc["paper", "in_sample"] == pytest.approx(0.05, abs=0.01)
    assert table.loc["paper", "rate"] > table.loc["conformal", "rate"]
    assert 0.01 <= table.loc["conformal", "rate"] <= 0.12
    held = held_out_false_alarm(X[:200], rules, X_held_out=X[200:])
    assert (held["n"] == 100).all() and (held["nominal"] == 0.05).all()
