"""BLADES' proxy for choosing a one-class detector without a generated face (chapter 5).

A detector of AI-generated faces must be tuned somehow: its features (which training run), the PCA dimension and
the number of mixture components K. Tuning on generated faces, even ones kept out of the test sets, would tune a
one-class detector to the generators it saw; tuning on the test sets would leak the answer. BLADES
{cite}`zou2025blades` scores a detector instead by how well it separates *held-out real faces* from *manipulated
versions of the same faces*: the paper's own pretext manipulations (eye and mouth flips, a piecewise-affine warp,
chapter 3), which need no generator. The criterion, written down before it is applied:

* :func:`manipulated_versions`: one manipulated copy of each real face, its kind drawn uniformly among the four
  (seeded), placed with dlib's 68 landmarks found inside the crop's central box (the face box the crop was made
  from, ``crop_scale`` times smaller than the crop), manipulated at 224 px and resized back as in training;
* :func:`proxy_auc`: k-fold cross-fitting over the real faces (3 folds, shuffled with the detector's random state):
  the mixture (and its PCA) is fitted on the other folds, and the AUC separating the held-out faces (high
  likelihood) from their manipulated copies (low) is averaged over folds;
* :func:`choose_by_proxy`: the candidate with the highest proxy AUC; candidates within :data:`TIE` of the best are
  tied, and the one with the fewest mixture parameters wins (smaller PCA dimension, then smaller K).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold

from ..detector import GMMDetector
from ..faces import landmarks_68

TIE = 0.005  # proxy AUCs closer than this to the best count as tied (the smaller mixture wins)
N_SPLITS = 3


def manipulated_versions(faces: np.ndarray, *, crop_scale: float, seed: int = 2024,
                         backend: str = "dlib") -> tuple[np.ndarray, list[str]]:
    """One manipulated copy of each uint8 face crop (N, S, S, 3) and its kind (see the module docstring)."""
    # imported here, not at the top: `import aigfd_lite.evaluation.proxy` stays free of scipy
    from ..manipulate import MANIPULATIONS, manipulate

    if faces.ndim != 4 or faces.shape[-1] != 3 or faces.dtype != np.uint8:
        raise ValueError(f"faces must be uint8 (N, S, S, 3), got {faces.dtype} {faces.shape}")
    rng = np.random.default_rng(seed)
    out, kinds = [], []
    for face in faces:
        side = face.shape[0]
        margin = int(round(side * (1 - 1 / crop_scale) / 2))
        points = landmarks_68(face, (margin, margin, side - margin, side - margin), backend=backend)
        kind = MANIPULATIONS[int(rng.integers(len(MANIPULATIONS)))]
        out.append(manipulate(face, points, kind, rng, resample=224))
        kinds.append(kind)
    return (np.stack(out) if out else np.zeros_like(faces)), kinds


def _auc(real_scores: np.ndarray, manipulated_scores: np.ndarray) -> float:
    """AUC of "manipulated" with the negative log-likelihood as the score (0.5: no separation)."""
    y = np.r_[np.zeros(len(real_scores)), np.ones(len(manipulated_scores))]
    return float(roc_auc_score(y, -np.r_[real_scores, manipulated_scores]))


def proxy_auc(X_real: np.ndarray, X_manipulated: np.ndarray, *, n_splits: int = N_SPLITS,
              random_state: Optional[int] = 2024, **detector_kwargs: Any) -> float:
    """Mean over folds of the AUC separating held-out real faces from their manipulated copies (row i of
    ``X_manipulated`` is the copy of row i of ``X_real``); ``detector_kwargs`` go to the mixture."""
    X_real, X_manipulated = np.asarray(X_real, np.float64), np.asarray(X_manipulated, np.float64)
    if X_real.shape != X_manipulated.shape:
        raise ValueError(f"X_real {X_real.shape} and X_manipulated {X_manipulated.shape} must pair row by row")
    kw = dict(detector_kwargs, threshold_rule="train-quantile", random_state=random_state)
    aucs = []
    for fit, held in KFold(n_splits, shuffle=True, random_state=random_state).split(X_real):
        det = GMMDetector(**kw).fit(X_real[fit])
        aucs.append(_auc(det.score_samples(X_real[held]), det.score_samples(X_manipulated[held])))
    return float(np.mean(aucs))


def n_parameters(n_components: int, dim: int) -> int:
    """Free parameters of a full-covariance mixture: weights, means and covariances."""
    return (n_components - 1) + n_components * (dim + dim * (dim + 1) // 2)


def choose_by_proxy(X_real: np.ndarray, X_manipulated: np.ndarray, candidates: Sequence[Mapping[str, Any]], *,
                    random_state: Optional[int] = 2024, **detector_kwargs: Any) -> tuple[dict, pd.DataFrame]:
    """The candidate (``n_components`` and ``pca_components``) with the best :func:`proxy_auc`, ties
    (:data:`TIE`) going to the fewest parameters; and the table of every candidate, best first."""
    if not candidates:
        raise ValueError("no candidate to choose from")
    rows = []
    for cand in candidates:
        dim = cand.get("pca_components") or X_real.shape[1]
        auc = proxy_auc(X_real, X_manipulated, random_state=random_state, **{**detector_kwargs, **cand})
        rows.append({**cand, "proxy AUC": auc, "parameters": n_parameters(cand["n_components"], dim)})
    table = pd.DataFrame(rows)
    tied = table[table["proxy AUC"] >= table["proxy AUC"].max() - TIE]
    best = tied.sort_values(["parameters", "proxy AUC"], ascending=[True, False]).index[0]
    table["chosen"] = table.index == best
    return dict(candidates[best]), table.sort_values("proxy AUC", ascending=False).reset_index(drop=True)
