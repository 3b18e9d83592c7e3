"""The ceiling of a one-class detector on given features: what no choice of its settings could reach (chapter 6).

Chapter 5 chooses the detector's settings without a generated face (BLADES' proxy, :mod:`aigfd_lite.evaluation.proxy`).
When the chosen detector catches few generated faces, two explanations compete: the criterion chose badly, or no
setting would have done better. :func:`oracle_ceiling` separates them by doing what chapter 5 must not do: it scores
*every* candidate on the test faces and keeps the best. The result is an upper bound on the candidates, not a
detector: a setting chosen this way is tuned to the test faces and says nothing about new ones.

A candidate is one feature set (a pretext run, ImageNet or random features), one preprocessing (the raw features or
BLADES' L2-normalised ones) and one ``n_components`` x ``pca_components`` pair, fitted on the GMM's real faces with
the profile's threshold rule. For each candidate the operating point is measured on every test set: the share of
generated faces caught (TPR) and the accuracy on the balanced set. Per feature set, the ceiling table gives

* ``best <generator> TPR``: the highest TPR on that generator alone, over the candidates;
* ``best worst-generator TPR``: the highest, over the candidates, of the lowest TPR across generators (one detector
  for every generator, as chapter 5 needs it);
* ``best mean accuracy``: the highest mean accuracy over the generators, and the candidate reaching it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from ..detector import GMMDetector
from .metrics import detector_table

PREPROCESSINGS = {"raw": False, "L2-normalised": True}  # name -> GMMDetector(l2_normalize=...)


def operating_points(features: Mapping[str, Any], candidates: Sequence[Mapping[str, Any]],
                     params: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (preprocessing, candidate): TPR and accuracy per test set at the detector's threshold.

    ``features``: ``{"fit": X, "sets": {generator: (real, generated)}}`` (:func:`~aigfd_lite.evaluation.featurize`);
    ``params``: the detector's other arguments (:func:`~aigfd_lite.evaluation.recipe.detector_params`)."""
    rows = []
    for prep, l2 in PREPROCESSINGS.items():
        for cand in candidates:
            det = GMMDetector(**{**params, **cand, "l2_normalize": l2}).fit(features["fit"])
            table = detector_table(det, features["sets"], mean=False)  # chapter 5's metrics
            row: dict[str, Any] = {"preprocessing": prep, **cand}
            for name in features["sets"]:
                row[f"{name} TPR"], row[f"{name} acc"] = table.loc[name, "tpr"], table.loc[name, "acc"]
            rows.append(row)
    return pd.DataFrame(rows)


def _setting(row: pd.Series) -> str:
    return f"{row['preprocessing']}, K {row['n_components']}, PCA {row['pca_components']}"


def oracle_ceiling(feature_sets: Mapping[str, Mapping[str, Any]], candidates: Sequence[Mapping[str, Any]],
                   params: Mapping[str, Any]) -> pd.DataFrame:
    """Per feature set (rows), the best operating point any candidate reaches on the test faces (see the module
    docstring). Every candidate of every feature set is fitted once."""
    if not candidates:
        raise ValueError("no candidate to bound")
    out = {}
    for name, features in feature_sets.items():
        points = operating_points(features, candidates, params)
        generators = list(features["sets"])
        tpr = points[[f"{g} TPR" for g in generators]]
        acc = points[[f"{g} acc" for g in generators]].mean(axis=1)
        row: dict[str, Any] = {f"best {g} TPR": points[f"{g} TPR"].max() for g in generators}
        worst = tpr.min(axis=1)
        row["best worst-generator TPR"] = worst.max()
        row["its setting"] = _setting(points.loc[worst.idxmax()])
        row["best mean accuracy"] = acc.max()
        row["setting of best accuracy"] = _setting(points.loc[acc.idxmax()])
        row["candidates"] = len(points)
        out[name] = row
    return pd.DataFrame(out).T
