"""aigfd_lite.detector: the GMM one-class detector (Sec. II-B)."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.base import clone

from aigfd_lite.detector import GMMDetector


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])
    return rng.multivariate_normal([1.0, -2.0, 0.5], cov, size=400)


def test_one_component_is_the_gaussian_mle(data):
    det = GMMDetector(n_components=1, reg_covar=1e-3).fit(data)
    mean, cov = data.mean(axis=0), np.cov(data.T, bias=True) + 1e-3 * np.eye(3)  # MLE (divides by n) + ridge
    expected = multivariate_normal(mean, cov).logpdf(data[:5])
    np.testing.assert_allclose(det.score_samples(data[:5]), expected, rtol=1e-6)


def test_threshold_is_the_false_alarm_quantile(data):
    det = GMMDetector(n_components=2, false_alarm=0.05).fit(data)
    assert det.threshold_ == pytest.approx(np.quantile(det.score_samples(data), 0.05))
    assert det.offset_ == det.threshold_
    accepted = (det.predict(data) == 1).mean()
    assert 0.94 <= accepted <= 0.96
    np.testing.assert_allclose(det.decision_function(data), det.score_samples(data) - det.threshold_)


def test_far_points_are_flagged_as_generated(data):
    det = GMMDetector(n_components=2).fit(data)
    far = data[:3] + 50.0
    assert set(det.predict(far)) == {-1}
    assert set(np.unique(det.predict(data))) == {-1, 1}


def test_l2_normalisation_ignores_feature_length(data):
    det = GMMDetector(n_components=2, l2_normalize=True).fit(data)
    np.testing.assert_allclose(det.score_samples(3.0 * data[:10]), det.score_samples(data[:10]), rtol=1e-9)


def test_pca_option_reduces_dimension(data):
    det = GMMDetector(n_components=2, pca_components=2).fit(data)
    assert det.gmm_.means_.shape == (2, 2) and det.n_features_in_ == 3
    with pytest.raises(ValueError, match="pca_components"):
        GMMDetector(n_components=2, pca_components=5).fit(data)


@pytest.mark.parametrize("kw", [dict(), dict(pca_components=2, l2_normalize=True), dict(covariance_type="diag")])
def test_save_load_round_trip_gives_identical_scores(data, tmp_path, kw):
    det = GMMDetector(n_components=3, **kw).fit(data)
    path = det.save(tmp_path / "gmm.npz")
    again = GMMDetector.load(path)
    np.testing.assert_array_equal(again.score_samples(data), det.score_samples(data))
    np.testing.assert_array_equal(again.predict(data), det.predict(data))
    assert again.threshold_ == det.threshold_ and again.get_params() == det.get_params()


def test_load_refuses_other_files(tmp_path):
    np.savez(tmp_path / "x.npz", meta=np.array('{"format": "something else"}'))
    with pytest.raises(ValueError, match="not a saved GMMDetector"):
        GMMDetector.load(tmp_path / "x.npz")


def test_bad_input_raises_clear_errors(data):
    with pytest.raises(ValueError, match="cannot fit"):
        GMMDetector(n_components=8).fit(data[:5])
    bad = data.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        GMMDetector(n_components=2).fit(bad)
    det = GMMDetector(n_components=2).fit(data)
    with pytest.raises(ValueError):
        det.score_samples(data[:, :2])  # wrong number of features
    with pytest.raises(ValueError, match="false_alarm"):
        GMMDetector(n_components=2, false_alarm=1.5).fit(data)


def test_defaults_follow_the_paper_and_clone():
    det = GMMDetector()
    assert (det.n_components, det.covariance_type, det.init_params, det.random_state, det.false_alarm) == (
        8, "full", "k-means++", 2024, 0.05)
    assert clone(GMMDetector(n_components=12)).n_components == 12


def test_fit_is_deterministic(data):
    a = GMMDetector(n_components=3).fit(data).score_samples(data)
    b = GMMDetector(n_components=3).fit(data).score_samples(data)
    np.testing.assert_array_equal(a, b)


def test_round_trip_identical_in_high_dimension(tmp_path):
    """PCA on wide features (as in chapter 5) must reload bit-identically too."""
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(150, 768)), rng.normal(size=(20, 768))
    det = GMMDetector(n_components=3, pca_components=16).fit(X)
    again = GMMDetector.load(det.save(tmp_path / "wide.npz"))
    assert np.array_equal(again.score_samples(Y), det.score_samples(Y))
