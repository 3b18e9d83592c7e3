"""The paper's metrics: accuracy on balanced sets, AP and AUC, per generator and their mean (chapters 5 and 6).

Conventions follow the paper's evaluation: for AP and AUC the *real* faces are the positive class and the detector's
log-likelihood is the score (higher = more real). Accuracy is the fraction of correct decisions on a balanced set
(equally many real and generated faces), where a face is called real when its score is at least the threshold.

The confusion-matrix rates BLADES reports are given with the *AI-generated* face as the positive class (the thing
a detector is looking for): TPR = generated faces flagged, FNR = generated faces missed, TNR = real faces accepted,
FPR = real faces flagged (the false-alarm rate the 5 % threshold aims at), and the F-score of the generated class.
Underneath: :mod:`sklearn.metrics`.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

from ..detector import rate_interval

COLUMNS = ["acc", "ap", "auc", "tpr", "fnr", "tnr", "fpr", "f1"]


def _scores(name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"no {name} scores")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{int(np.sum(~np.isfinite(values)))} non-finite {name} score(s)")
    return values


def detection_metrics(real_scores: np.ndarray, fake_scores: np.ndarray, threshold: float) -> dict[str, float]:
    """All metrics for one test set: real faces' and generated faces' scores (log-likelihoods) and the threshold.

    Returns acc, ap, auc (real = positive, score = log-likelihood) and tpr, fnr, tnr, fpr, f1 (generated = positive,
    decision = score < threshold). Accuracy is computed over both sets together; it equals the balanced accuracy
    only when the two sets have equal sizes, which :mod:`aigfd_lite.evaluation.testsets` guarantees.
    """
    real, fake = _scores("real", real_scores), _scores("generated", fake_scores)
    is_real = np.r_[np.ones(real.size, dtype=int), np.zeros(fake.size, dtype=int)]
    score = np.r_[real, fake]
    called_real = (score >= threshold).astype(int)
    # Rows/columns ordered [generated, real]; labels= keeps the matrix 2x2 even if one class is never predicted.
    (tp, fn), (fp, tn) = confusion_matrix(1 - is_real, 1 - called_real, labels=[1, 0])
    flagged = tp + fp
    precision = tp / flagged if flagged else 0.0
    tpr = tp / (tp + fn)
    f1 = 2 * precision * tpr / (precision + tpr) if precision + tpr > 0 else 0.0
    return {
        "acc": float((tp + tn) / score.size),
        "ap": float(average_precision_score(is_real, score)),
        "auc": float(roc_auc_score(is_real, score)),
        "tpr": float(tpr),
        "fnr": float(fn / (tp + fn)),
        "tnr": float(tn / (tn + fp)),
        "fpr": float(fp / (tn + fp)),
        "f1": float(f1),
    }


def metrics_table(
    sets: Mapping[str, tuple[np.ndarray, np.ndarray]], threshold: float, *, mean: bool = True
) -> pd.DataFrame:
    """A tidy table: one row per generator (``sets[name] = (real_scores, fake_scores)``), plus their mean.

    The mean row averages the per-generator numbers, as the paper's "mean" column does (not a pooled score).
    """
    if not sets:
        raise ValueError("no test sets")
    rows = {name: detection_metrics(real, fake, threshold) for name, (real, fake) in sets.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")[COLUMNS]
    table.index.name = "generator"
    if mean:
        table.loc["mean"] = table.mean(axis=0)
    return table


def detector_table(detector, feature_sets: Mapping[str, tuple[np.ndarray, np.ndarray]], *, mean: bool = True
                   ) -> pd.DataFrame:
    """:func:`metrics_table` for a fitted detector (anything with ``score_samples`` and ``threshold_``) and
    ``feature_sets[name] = (real_features, fake_features)``."""
    scored = {name: (detector.score_samples(r), detector.score_samples(f)) for name, (r, f) in feature_sets.items()}
    return metrics_table(scored, detector.threshold_, mean=mean)


def pairwise_auc(real_scores: np.ndarray, fake_scores: np.ndarray) -> float:
    """AUC as the Mann-Whitney statistic: the share of (real, generated) pairs the score orders correctly, ties
    counting half. Equal to :func:`sklearn.metrics.roc_auc_score` with real = positive (tested), and cheap enough
    for thousands of bootstrap resamples of a few dozen pairs."""
    real, fake = np.asarray(real_scores, dtype=np.float64), np.asarray(fake_scores, dtype=np.float64)
    greater = real[:, None] > fake[None, :]
    ties = real[:, None] == fake[None, :]
    return float(greater.mean() + 0.5 * ties.mean())


def auc_difference(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], *, n_resamples: int = 2000,
                   level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """AUC of test set ``b`` minus AUC of test set ``a``, with a paired percentile-bootstrap interval.

    ``a`` and ``b`` are ``(real_scores, fake_scores)`` of the *same* test pairs scored two ways (chapter 6: the
    resolution-controlled and the uncontrolled test sets share their faces), so pair ``i`` is resampled in both at
    once. With a few dozen pairs, an interval that contains 0 is no evidence of a difference. Underneath:
    :func:`scipy.stats.bootstrap`.
    """
    # imported here, not at the top: `import aigfd_lite.evaluation` stays free of scipy
    from scipy.stats import bootstrap

    arrays = [_scores(name, v) for name, v in zip(("real (a)", "generated (a)", "real (b)", "generated (b)"),
                                                  (*a, *b))]
    if len({v.size for v in arrays}) != 1:
        raise ValueError(f"paired test sets need equally many scores in each part, got {[v.size for v in arrays]}")

    def statistic(real_a, fake_a, real_b, fake_b):
        return pairwise_auc(real_b, fake_b) - pairwise_auc(real_a, fake_a)

    result = bootstrap(arrays, statistic, paired=True, vectorized=False, n_resamples=n_resamples,
                       confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
    return {"difference": float(statistic(*arrays)), "low": float(result.confidence_interval.low),
            "high": float(result.confidence_interval.high), "pairs": int(arrays[0].size)}


def operating_intervals(detector, feature_sets: Mapping[str, tuple[np.ndarray, np.ndarray]], *, level: float = 0.95,
                        n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The thresholded numbers of Table I with percentile-bootstrap intervals (faces resampled), per generator:
    ``acc`` (correct decisions over the balanced set), ``tpr`` (generated faces flagged) and ``fpr`` (real faces
    flagged), each with ``_low`` and ``_high``."""
    rows = {}
    for name, (real, fake) in feature_sets.items():
        real_flag = detector.score_samples(real) < detector.threshold_
        fake_flag = detector.score_samples(fake) < detector.threshold_
        row = {}
        for metric, flags in (("acc", np.r_[~real_flag, fake_flag]), ("tpr", fake_flag), ("fpr", real_flag)):
            r = rate_interval(flags, level=level, n_resamples=n_resamples, seed=seed)
            row.update({metric: r["rate"], f"{metric}_low": r["low"], f"{metric}_high": r["high"]})
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "generator"
    return table
