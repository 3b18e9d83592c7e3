"""The anomaly detector of Sec. II-B: a Gaussian mixture fitted to the features of real faces only (chapter 5).

A face is called a photograph when the log-likelihood of its feature under the mixture is at least a threshold;
anything less likely is flagged as AI-generated. The estimator follows scikit-learn's outlier-detection conventions
(``fit`` / ``score_samples`` / ``decision_function`` / ``predict`` with +1 = inlier = photograph, -1 = outlier).

Two threshold rules (``threshold_rule``):

* ``"train-quantile"``, the paper's: the 5th percentile of the log-likelihoods of the mixture's own training faces.
  It holds on the training faces only: a flexible mixture scores its training faces higher than new ones (so
  more than 5 % of unseen faces fall below), while a PCA fitted on few faces in many dimensions over-states their
  spread (so fewer may). Chapter 5 measures which way and by how much.
* ``"split-conformal"``, the default: the real faces are split; the mixture is fitted on one part and the threshold
  set on the other (calibration) part, at the ``k``-th smallest calibration score with ``k = floor((n + 1) alpha)``.
  For a new real face exchangeable with the ``n`` calibration faces, its rank among the ``n + 1`` scores is uniform,
  so the chance that it falls below the threshold is exactly ``k / (n + 1) <= alpha`` (split-conformal prediction;
  Vovk et al. 2005, Lei et al. 2018). ``ceil((n + 1) alpha)`` would give a rate of at least ``alpha`` instead; the
  two agree when ``(n + 1) alpha`` is an integer.

The paper's settings are K = 8 components and full covariances on the raw 768-d features; k-means++ initialisation
and ``random_state=2024`` are the published code's settings (the paper does not state them). Options: the
published code's K = 12; BLADES' L2-normalised features (K = 10 there); and a PCA projection before the mixture.
The PCA option exists for small data: a full covariance in d dimensions has d(d+1)/2 parameters and its estimate
is singular unless a component has more than d faces; below that only ``reg_covar`` (a ridge added to every
covariance diagonal) keeps it invertible, and the likelihood then measures mostly that ridge. Chapter 5 measures
both ways on the lite data.

Saved and loaded without pickle: :meth:`GMMDetector.save` writes an ``.npz`` of plain arrays plus a JSON string.
"""
from __future__ import annotations

import json
from pathlib import Path
import math
from typing import Optional

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted, validate_data

DETECTOR_FORMAT = "aigfd_lite.GMMDetector/2"
THRESHOLD_RULES = ("split-conformal", "train-quantile")


def conformal_threshold(calibration_scores: np.ndarray, false_alarm: float) -> float:
    """The split-conformal threshold: the ``floor((n + 1) alpha)``-th smallest of ``n`` calibration scores.

    A new score exchangeable with the calibration scores falls below it with probability ``k / (n + 1) <= alpha``.
    Raises ``ValueError`` when ``n`` is too small for any order statistic to keep that promise (``k = 0``).
    """
    scores = np.sort(np.asarray(calibration_scores, dtype=np.float64).ravel())
    if not np.all(np.isfinite(scores)):
        raise ValueError("calibration scores must be finite")
    n = scores.size
    k = math.floor((n + 1) * false_alarm + 1e-9)  # 1e-9: (n + 1) * 0.05 may be 2.9999999999999996
    if k < 1:
        need = math.ceil(1 / false_alarm - 1 - 1e-9) if false_alarm > 0 else float("inf")
        raise ValueError(f"{n} calibration faces cannot certify a false-alarm rate of {false_alarm} "
                         f"(need at least {need})")
    return float(scores[k - 1])


class GMMDetector(OutlierMixin, BaseEstimator):
    """One-class detector: a Gaussian mixture on real faces' features, thresholded at a false-alarm quantile.

    Parameters
    ----------
    n_components : number of mixture components K (paper 8; published code 12; BLADES 10).
    covariance_type : sklearn's covariance type; the paper uses ``"full"``.
    reg_covar : added to each covariance diagonal (sklearn's default 1e-6). It keeps a full covariance invertible when
        a component has fewer members than feature dimensions, at the price of dominating the likelihood there.
    false_alarm : the false-alarm rate the threshold aims at, alpha (paper 0.05).
    threshold_rule : ``"split-conformal"`` (default: held-out calibration, the rate holds on unseen real faces) or
        ``"train-quantile"`` (the paper's: the rate holds on the training faces only).
    calibration_fraction : with ``"split-conformal"`` and no ``X_calibration`` given to :meth:`fit`, the share of
        ``X`` (drawn with ``random_state``) kept aside to set the threshold; the mixture never sees it.
    l2_normalize : scale each feature to unit length first (BLADES-OC); the paper uses raw features.
    pca_components : project onto this many principal components (fitted on the training features) before the
        mixture; ``None`` (the paper) keeps all dimensions. An explicit small-data option, off by default.
    init_params, max_iter, n_init, random_state : passed to :class:`sklearn.mixture.GaussianMixture`.

    Fitted attributes: ``gmm_`` (the mixture), ``pca_`` (or None), ``threshold_`` (log-likelihood cut),
    ``offset_`` (= ``threshold_``, sklearn's name), ``train_scores_`` (log-likelihoods of the faces the mixture was
    fitted on), ``calibration_scores_`` (of the calibration faces; None for the paper's rule),
    ``calibration_index_`` (rows of ``X`` used for calibration; None when none or when given separately),
    ``n_iter_`` and ``converged_`` (the mixture's EM iterations and whether EM converged within ``max_iter``),
    ``n_features_in_``.
    """

    def __init__(
        self,
        n_components: int = 8,
        *,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        false_alarm: float = 0.05,
        threshold_rule: str = "split-conformal",
        calibration_fraction: float = 1 / 3,
        l2_normalize: bool = False,
        pca_components: Optional[int] = None,
        init_params: str = "k-means++",
        max_iter: int = 100,
        n_init: int = 1,
        random_state: Optional[int] = 2024,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.false_alarm = false_alarm
        self.threshold_rule = threshold_rule
        self.calibration_fraction = calibration_fraction
        self.l2_normalize = l2_normalize
        self.pca_components = pca_components
        self.init_params = init_params
        self.max_iter = max_iter
        self.n_init = n_init
        self.random_state = random_state

    # -- the pipeline: (L2) -> (PCA) -> GMM -------------------------------------------------------------------
    def _prepare(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.l2_normalize:
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            X = X / np.maximum(norms, 1e-12)  # an all-zero feature stays zero instead of becoming NaN
        if getattr(self, "pca_", None) is not None:
            X = self._project(X)
        return X

    def _project(self, X: np.ndarray) -> np.ndarray:
        # The projection written out (not PCA.transform), so a reloaded detector computes bit-identical scores.
        return (X - self.pca_.mean_) @ self.pca_.components_.T

    def fit(self, X: np.ndarray, y: None = None, X_calibration: Optional[np.ndarray] = None) -> "GMMDetector":
        """Fit on real faces' features ``X`` (n_samples, n_features) and set the threshold.

        With ``"split-conformal"``, the threshold comes from ``X_calibration`` if given, else from a random
        ``calibration_fraction`` of ``X`` that the mixture (and the PCA) never sees.
        """
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        if not 0.0 <= self.false_alarm < 1.0:
            raise ValueError(f"false_alarm must be in [0, 1), got {self.false_alarm}")
        if self.threshold_rule not in THRESHOLD_RULES:
            raise ValueError(f"threshold_rule must be one of {THRESHOLD_RULES}, got {self.threshold_rule!r}")
        self.calibration_index_ = None
        X_fit, X_cal = X, None
        if self.threshold_rule == "split-conformal":
            if X_calibration is not None:
                X_cal = validate_data(self, X_calibration, dtype=np.float64, reset=False)
            else:
                if not 0.0 < self.calibration_fraction < 1.0:
                    raise ValueError(f"calibration_fraction must be in (0, 1), got {self.calibration_fraction}")
                order = np.random.default_rng(self.random_state).permutation(len(X))
                n_cal = int(round(self.calibration_fraction * len(X)))
                self.calibration_index_ = np.sort(order[:n_cal])
                X_fit, X_cal = X[np.sort(order[n_cal:])], X[self.calibration_index_]
        elif X_calibration is not None:
            raise ValueError("X_calibration is only used by threshold_rule='split-conformal'")
        self._fit_mixture(X_fit)
        self.train_scores_ = self.gmm_.score_samples(self._prepare(X_fit))
        if X_cal is None:  # the paper's rule: 5 % of the training faces fall below the threshold
            self.calibration_scores_ = None
            self.threshold_ = float(np.quantile(self.train_scores_, self.false_alarm))
        else:
            self.calibration_scores_ = self.gmm_.score_samples(self._prepare(X_cal))
            self.threshold_ = conformal_threshold(self.calibration_scores_, self.false_alarm)
        self.offset_ = self.threshold_
        return self

    def _fit_mixture(self, X: np.ndarray) -> None:
        if X.shape[0] < self.n_components:
            raise ValueError(f"{X.shape[0]} training samples cannot fit {self.n_components} components")
        self.pca_ = None
        if self.pca_components is not None:
            limit = min(X.shape)
            if not 1 <= self.pca_components <= limit:
                raise ValueError(f"pca_components must be in [1, {limit}] for data of shape {X.shape}")
        Z = self._prepare(X)  # L2 only (pca_ is None)
        if self.pca_components is not None:
            self.pca_ = PCA(n_components=self.pca_components, random_state=self.random_state).fit(Z)
            # C order, as np.load returns it: the same memory layout makes BLAS give bit-identical projections.
            self.pca_.components_ = np.ascontiguousarray(self.pca_.components_)
            Z = self._project(Z)
        self.gmm_ = GaussianMixture(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            init_params=self.init_params,
            max_iter=self.max_iter,
            n_init=self.n_init,
            random_state=self.random_state,
        ).fit(Z)
        # sklearn's convention for an estimator with max_iter: the EM iterations and convergence of the best init
        self.n_iter_, self.converged_ = int(self.gmm_.n_iter_), bool(self.gmm_.converged_)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Log-likelihood of each feature under the mixture (higher = more like a real photograph)."""
        check_is_fitted(self, "gmm_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.gmm_.score_samples(self._prepare(X))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-likelihood minus the threshold: >= 0 means photograph."""
        return self.score_samples(X) - self.threshold_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """+1 for a photograph (log-likelihood >= threshold), -1 for AI-generated."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    # -- persistence without pickle ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted detector to ``path`` (an ``.npz`` of arrays plus its parameters as a JSON string)."""
        check_is_fitted(self, "gmm_")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": DETECTOR_FORMAT,
            "params": self.get_params(),
            "threshold": self.threshold_,
            "n_features_in": int(self.n_features_in_),
            "has_pca": self.pca_ is not None,
            "n_iter": int(self.n_iter_),
            "converged": bool(self.converged_),
        }
        arrays = {
            "meta": np.array(json.dumps(meta)),
            "weights": self.gmm_.weights_,
            "means": self.gmm_.means_,
            "covariances": self.gmm_.covariances_,
            "precisions_cholesky": self.gmm_.precisions_cholesky_,
            "train_scores": self.train_scores_,
        }
        if self.calibration_scores_ is not None:
            arrays["calibration_scores"] = self.calibration_scores_
        if self.calibration_index_ is not None:
            arrays["calibration_index"] = self.calibration_index_
        if self.pca_ is not None:
            arrays.update(pca_mean=self.pca_.mean_, pca_components=self.pca_.components_,
                          pca_explained_variance=self.pca_.explained_variance_)
        with open(path, "wb") as fh:  # np.savez on a file handle keeps the name exactly as given
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "GMMDetector":
        """Rebuild a detector written by :meth:`save`; scores are identical to the saved one's."""
        with np.load(Path(path), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") == "aigfd_lite.GMMDetector/1":  # before threshold rules: always the paper's
            meta["format"] = DETECTOR_FORMAT
            meta["params"].update(threshold_rule="train-quantile")
        if meta.get("format") != DETECTOR_FORMAT:
            raise ValueError(f"{path} is not a saved GMMDetector (format {meta.get('format')!r})")
        det = cls(**meta["params"])
        p = det.get_params()
        gmm = GaussianMixture(n_components=p["n_components"], covariance_type=p["covariance_type"],
                              reg_covar=p["reg_covar"], init_params=p["init_params"], max_iter=p["max_iter"],
                              n_init=p["n_init"], random_state=p["random_state"])
        gmm.weights_ = arrays["weights"]
        gmm.means_ = arrays["means"]
        gmm.covariances_ = arrays["covariances"]
        gmm.precisions_cholesky_ = arrays["precisions_cholesky"]
        # precisions_ is only informative; rebuild it from the Cholesky factors as sklearn does.
        pc = gmm.precisions_cholesky_
        if p["covariance_type"] == "full":
            gmm.precisions_ = np.einsum("kij,klj->kil", pc, pc)
        elif p["covariance_type"] == "tied":
            gmm.precisions_ = pc @ pc.T
        else:
            gmm.precisions_ = pc**2
        # files written before n_iter_ was kept: 0 iterations recorded, convergence assumed (as before)
        gmm.converged_, gmm.n_iter_ = bool(meta.get("converged", True)), int(meta.get("n_iter", 0))
        gmm.lower_bound_ = float("nan")
        gmm.n_features_in_ = gmm.means_.shape[1]
        det.gmm_ = gmm
        det.pca_ = None
        if meta["has_pca"]:
            pca = PCA(n_components=p["pca_components"])
            pca.mean_, pca.components_ = arrays["pca_mean"], arrays["pca_components"]
            pca.explained_variance_ = arrays["pca_explained_variance"]
            pca.n_components_ = pca.components_.shape[0]
            pca.n_features_in_ = pca.components_.shape[1]
            pca.whiten = False
            det.pca_ = pca
        det.train_scores_ = arrays["train_scores"]
        det.calibration_scores_ = arrays.get("calibration_scores")
        det.calibration_index_ = arrays.get("calibration_index")
        det.threshold_ = det.offset_ = float(meta["threshold"])
        det.n_iter_, det.converged_ = gmm.n_iter_, gmm.converged_
        det.n_features_in_ = int(meta["n_features_in"])
        return det
