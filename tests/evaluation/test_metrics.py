"""aigfd_lite.evaluation.metrics against values computed by hand."""
import numpy as np
import pytest

from aigfd_lite.evaluation import metrics
from aigfd_lite.evaluation.metrics import COLUMNS, detection_metrics, detector_table, metrics_table

REAL = [3.0, 2.0, 0.5]
FAKE = [1.0, -1.0, 0.0]


def test_detection_metrics_by_hand():
    m = detection_metrics(REAL, FAKE, threshold=1.5)
    # called real: 3, 2 (real) -> 2 of 3 real accepted; every generated face is below 1.5 -> all flagged.
    assert m["acc"] == pytest.approx(5 / 6)
    assert m["tpr"] == pytest.approx(1.0) and m["fnr"] == pytest.approx(0.0)
    assert m["tnr"] == pytest.approx(2 / 3) and m["fpr"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(6 / 7)  # precision 3/4, recall 1
    # AUC: 8 of the 9 (real, fake) pairs are ordered correctly (0.5 < 1 is the exception).
    assert m["auc"] == pytest.approx(8 / 9)
    # AP, real = positive: ranking R R F R F F -> precisions at the reals 1, 1, 3/4.
    assert m["ap"] == pytest.approx((1 + 1 + 0.75) / 3)


def test_threshold_at_a_score_counts_as_real():
    m = detection_metrics([1.0], [0.0], threshold=1.0)
    assert m["acc"] == 1.0 and m["fpr"] == 0.0


def test_no_face_flagged_gives_zero_f1_not_nan():
    m = detection_metrics([5.0, 6.0], [4.0, 3.0], threshold=-10)
    assert m["tpr"] == 0.0 and m["f1"] == 0.0 and m["acc"] == 0.5 and m["auc"] == 1.0


def test_bad_scores_raise():
    with pytest.raises(ValueError, match="no generated"):
        detection_metrics([1.0], [], 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        detection_metrics([1.0, np.nan], [0.0], 0.0)


def test_table_has_generators_and_mean():
    t = metrics_table({"a": (REAL, FAKE), "b": ([1.0, 2.0], [3.0, 4.0])}, threshold=1.5)
    assert list(t.index) == ["a", "b", "mean"] and list(t.columns) == COLUMNS
    assert t.loc["b", "auc"] == 0.0
    assert t.loc["mean", "auc"] == pytest.approx((8 / 9 + 0.0) / 2)
    with pytest.raises(ValueError):
        metrics_table({}, 0.0)


def test_detector_table_uses_score_samples_and_threshold():
    class Fake:
        threshold_ = 1.5

        def score_samples(self, x):
            return np.asarray(x)[:, 0]

    t = detector_table(Fake(), {"a": (np.c_[REAL], np.c_[FAKE])}, mean=False)
    assert list(t.index) == ["a"] and t.loc["a", "acc"] == pytest.approx(5 / 6)


def test_auc_difference_by_hand_and_its_interval():
    a = (np.array([1.0, 2.0]), np.array([0.0, 3.0]))  # AUC 2/4 = 0.5
    b = (np.array([2.0, 3.0]), np.array([0.0, 1.0]))  # AUC 1.0
    assert metrics.auc_difference(a, b, n_resamples=200)["difference"] == pytest.approx(0.5)
    same = metrics.auc_difference(a, a, n_resamples=200)
    assert same["difference"] == 0.0 and same["low"] == 0.0 and same["high"] == 0.0


def test_auc_difference_interval_excludes_zero_only_for_a_real_difference():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=60), rng.normal(size=60)
    clear = metrics.auc_difference((real, fake), (real + 3.0, fake), seed=1)
    assert clear["pairs"] == 60 and clear["low"] > 0.3
    noise = metrics.auc_difference((real, fake), (real + rng.normal(0, 0.01, 60), fake), seed=1)
    assert noise["low"] <= 0.0 <= noise["high"]


def test_auc_difference_needs_paired_sets():
    with pytest.raises(ValueError, match="equally many"):
        metrics.auc_difference((np.zeros(3), np.ones(3)), (np.zeros(3), np.ones(2)))
    with pytest.raises(ValueError, match="non-finite"):
        metrics.auc_difference((np.array([np.nan, 1.0]), np.ones(2)), (np.zeros(2), np.ones(2)))


def test_pairwise_auc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    real, fake = rng.integers(0, 5, 40).astype(float), rng.integers(0, 4, 30).astype(float)  # many ties
    expected = roc_auc_score(np.r_[np.ones(40), np.zeros(30)], np.r_[real, fake])
    assert metrics.pairwise_auc(real, fake) == pytest.approx(expected, abs=1e-12)
    assert metrics.pairwise_auc(REAL, FAKE) == pytest.approx(detection_metrics(REAL, FAKE, 0.0)["auc"])


def test_operating_intervals_count_the_thresholded_decisions():
    from aigfd_lite.evaluation.metrics import operating_intervals

    class Threshold:  # scores are the features themselves
        threshold_ = 0.0

        def score_samples(self, x):
            return np.asarray(x, dtype=float).ravel()

    real = np.r_[np.ones(18), -np.ones(2)]  # 2 of 20 real faces flagged
    fake = np.r_[-np.ones(15), np.ones(5)]  # 15 of 20 generated faces caught
    row = operating_intervals(Threshold(), {"g": (real, fake)}, n_resamples=500).loc["g"]
    assert row["tpr"] == 0.75 and row["fpr"] == 0.1 and row["acc"] == (18 + 15) / 40
    for m in ("acc", "tpr", "fpr"):
        assert row[f"{m}_low"] <= row[m] <= row[f"{m}_high"]
    assert row["tpr_low"] > 0.4 and row["tpr_high"] < 1.0
