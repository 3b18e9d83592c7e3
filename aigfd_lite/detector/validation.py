"""Checking the detector on real faces only (chapters 5 and 6): no generated face is needed for either check.

* :func:`choose_n_components` picks the number of mixture components K by the mean log-likelihood of *held-out real
  faces* (k-fold cross-validation on the faces the detector is fitted on). The detector is a density model of real
  faces, so the K that predicts unseen real faces best is the one to keep; choosing K with generated faces would tune
  a one-class detector to the generators it was tuned on, and choosing it on the test sets would leak the answer.
  The Bayesian information criterion (BIC, on all the faces) is printed beside it.
* :func:`held_out_false_alarm` measures the share of real faces, used neither to fit nor to calibrate, that a
  detector flags, with a percentile-bootstrap interval: cross-fitted over the real faces (each face is scored by
  detectors that never saw it), or on a separate held-out set.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold

from .gmm import GMMDetector


def _folds(n: int, n_splits: int, groups: Optional[np.ndarray], random_state: Optional[int]):
    if groups is None:
        return KFold(n_splits, shuffle=True, random_state=random_state).split(np.zeros(n))
    return GroupKFold(n_splits, shuffle=True, random_state=random_state).split(np.zeros(n), groups=groups)


def choose_n_components(X: np.ndarray, candidates: Sequence[int], *, n_splits: int = 3,
                        random_state: Optional[int] = 2024, **detector_kwargs: Any) -> tuple[int, pd.DataFrame]:
    """K with the highest mean held-out log-likelihood of real faces (k-fold CV over ``X``), and the table.

    Columns: ``held-out log-lik.`` (mean over folds and faces), ``BIC`` (mixture fitted on all of ``X``, lower is
    better), ``faces per component`` (training faces per fold / K). ``detector_kwargs`` go to
    :class:`~aigfd_lite.detector.GMMDetector` (e.g. ``pca_components``); the mixture uses all training faces of a
    fold (the threshold plays no part here).
    """
    X = np.asarray(X, dtype=np.float64)
    if not candidates:
        raise ValueError("no candidate K")
    kw = dict(detector_kwargs, threshold_rule="train-quantile", random_state=random_state)
    folds = list(_folds(len(X), n_splits, None, random_state))
    rows = {}
    for k in candidates:
        if k > min(len(fit) for fit, _ in folds):
            raise ValueError(f"K = {k} exceeds the {min(len(f) for f, _ in folds)} faces of a training fold")
        held = [GMMDetector(n_components=k, **kw).fit(X[fit]).score_samples(X[test]).mean() for fit, test in folds]
        full = GMMDetector(n_components=k, **kw).fit(X)
        rows[k] = {"held-out log-lik.": float(np.mean(held)), "BIC": float(full.gmm_.bic(full._prepare(X))),
                   "faces per component": len(folds[0][0]) / k}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "K"
    return int(table["held-out log-lik."].idxmax()), table


def rate_interval(flags: np.ndarray, *, level: float = 0.95, n_resamples: int = 2000,
                  seed: int = 0) -> dict[str, float]:
    """The share of ``True`` in ``flags`` with a percentile-bootstrap interval (faces resampled)."""
    # imported here, not at the top: `import aigfd_lite.detector` stays free of scipy
    from scipy.stats import bootstrap

    flags = np.asarray(flags, dtype=np.float64).ravel()
    if flags.size < 2:
        raise ValueError(f"need at least two faces, got {flags.size}")
    rate = float(flags.mean())
    if rate in (0.0, 1.0):  # every resample equals the sample: the bootstrap cannot say more
        return {"rate": rate, "low": rate, "high": rate, "n": int(flags.size)}
    ci = bootstrap((flags,), np.mean, n_resamples=n_resamples, confidence_level=level, method="percentile",
                   rng=np.random.default_rng(seed)).confidence_interval
    return {"rate": rate, "low": float(ci.low), "high": float(ci.high), "n": int(flags.size)}


def held_out_false_alarm(X: np.ndarray, rules: Mapping[str, Mapping[str, Any]], *,
                         X_held_out: Optional[np.ndarray] = None, groups: Optional[np.ndarray] = None,
                         n_splits: int = 5, random_state: Optional[int] = 2024,
                         seed: int = 0) -> pd.DataFrame:
    """False-alarm rate on real faces that neither fitted nor calibrated the detector, per detector setting.

    ``rules[name]`` holds :class:`~aigfd_lite.detector.GMMDetector` arguments. With ``X_held_out`` each detector
    is fitted (and calibrated) on ``X`` and scored on ``X_held_out``; otherwise ``X`` is cross-fitted in
    ``n_splits`` folds (faces with the same ``groups`` label, e.g. one photo, stay in one fold) and every face is
    scored by the detector fitted on the other folds. Rows: rule; columns: rate, low, high (95 % bootstrap), n,
    nominal, threshold on the training faces (the share of *fit* faces flagged, averaged over folds).
    """
    X = np.asarray(X, dtype=np.float64)
    out = {}
    for name, kwargs in rules.items():
        flags, in_sample = [], []
        if X_held_out is not None:
            det = GMMDetector(**kwargs).fit(X)
            flags.append(det.predict(np.asarray(X_held_out, dtype=np.float64)) == -1)
            in_sample.append(np.mean(det.train_scores_ < det.threshold_))
        else:
            for fit, test in _folds(len(X), n_splits, groups, random_state):
                det = GMMDetector(**kwargs).fit(X[fit])
                flags.append(det.predict(X[test]) == -1)
                in_sample.append(np.mean(det.train_scores_ < det.threshold_))
        row = rate_interval(np.concatenate(flags), seed=seed)
        row.update(nominal=GMMDetector(**kwargs).false_alarm, in_sample=float(np.mean(in_sample)))
        out[name] = row
    table = pd.DataFrame.from_dict(out, orient="index")
    table.index.name = "threshold rule"
    return table
