"""Figures of chapters 5-6 (the detector and the results); see the package docstring."""
from __future__ import annotations

from typing import Any, Mapping, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


# Chapter 5 ------------------------------------------------------------------------------------------------------
TOY_MEANS = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
TOY_COVS = np.array([[[1.0, 0.6], [0.6, 0.8]], [[0.6, -0.3], [-0.3, 1.2]], [[1.5, 0.0], [0.0, 0.3]]])


def toy_real_faces(n: int, seed: int = 0) -> np.ndarray:
    """2-D stand-ins for real faces' features: ``n`` draws from a fixed three-component Gaussian mixture."""
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(TOY_MEANS), n)
    return np.stack([rng.multivariate_normal(TOY_MEANS[k], TOY_COVS[k]) for k in which])


def plot_toy_detectors(detectors: Mapping[str, Any], fit: np.ndarray, new: np.ndarray):
    """Log-likelihood contours of each fitted 2-D detector, its threshold contour (dashed), its training faces
    (dots) and new real faces (crosses: red where the detector flags them)."""
    fig, axes = plt.subplots(1, len(detectors), figsize=(4.2 * len(detectors), 3.9), squeeze=False)
    grid = np.linspace(-6, 6, 200)
    xx, yy = np.meshgrid(grid, grid)
    points = np.c_[xx.ravel(), yy.ravel()]
    for ax, (title, det) in zip(axes[0], detectors.items()):
        ll = det.score_samples(points).reshape(xx.shape)
        ax.contourf(xx, yy, np.maximum(ll, det.threshold_ - 8), levels=12, cmap="Greys_r", alpha=0.6)
        ax.contour(xx, yy, ll, levels=[det.threshold_], colors="k", linestyles="--")
        ax.scatter(*fit.T, s=8, c="tab:blue", label="training faces")
        flagged = det.predict(new) == -1
        ax.scatter(*new[~flagged].T, s=14, marker="x", c="tab:green", label="new real: accepted")
        ax.scatter(*new[flagged].T, s=14, marker="x", c="tab:red", label="new real: flagged")
        ax.set(title=title, xlim=(-6, 6), ylim=(-6, 6), xticks=[], yticks=[])
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_image_rows(rows: Mapping[str, np.ndarray], per_row: int = 8, title: str = ""):
    """A grid: one row of ``per_row`` images (uint8, (N, H, W, 3)) per entry of ``rows``."""
    fig, axes = plt.subplots(len(rows), per_row, figsize=(12, 1.6 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(per_row):
            axes[r, c].axis("off")
            if c < len(images):
                axes[r, c].imshow(images[c])
        axes[r, 0].set_title(name, loc="left", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_false_alarm(table: pd.DataFrame, nominal: float):
    """Held-out false-alarm rate per threshold rule with its interval, the in-sample rate, and the nominal rate."""
    fig, ax = plt.subplots(figsize=(6.5, 0.6 + 0.55 * len(table)))
    y = np.arange(len(table))
    err = np.vstack([table["rate"] - table["low"], table["high"] - table["rate"]])
    ax.errorbar(table["rate"], y, xerr=err, fmt="o", capsize=4, label="real faces it never saw (95 % interval)")
    ax.scatter(table["in_sample"], y, marker="|", s=200, c="k", label="its own training faces")
    ax.axvline(nominal, color="tab:red", ls=":", label=f"nominal {nominal:.0%}")
    ax.set(yticks=y, yticklabels=table.index, xlabel="share of real faces flagged as AI-generated", xlim=(0, None))
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3)
    fig.tight_layout()
    return fig


def plot_proxy_choice(table: pd.DataFrame, chosen: Any):
    """BLADES' proxy AUC (held-out real vs manipulated copies) against the PCA dimension, one line per K; the
    chosen detector (a :class:`~aigfd_lite.evaluation.recipe.Choice`) circled."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for k, rows in table.groupby("n_components"):
        rows = rows.sort_values("pca_components")
        ax.plot(rows["pca_components"], rows["proxy AUC"], "o-", label=f"K = {k}")
    ax.scatter([chosen.pca_components], table.loc[table["chosen"], "proxy AUC"], s=220, facecolors="none",
               edgecolors="k", label="chosen")
    ax.axhline(0.5, color="0.5", ls=":", label="no separation")
    ax.set(xscale="log", xlabel="PCA dimension", ylabel="proxy AUC (higher is better)")
    ax.set_xticks(sorted(table["pca_components"].unique()), labels=sorted(table["pca_components"].unique()))
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    return fig


def plot_score_histograms(detector: Any, features: Mapping[str, tuple[np.ndarray, np.ndarray]]):
    """Per test set: log-likelihoods of the detector's training faces, real test faces and generated faces."""
    fig, axes = plt.subplots(1, len(features), figsize=(5.5 * len(features), 3.4), sharey=True, squeeze=False)
    for ax, (name, (real_f, fake_f)) in zip(axes[0], features.items()):
        real_s, fake_s = detector.score_samples(real_f), detector.score_samples(fake_f)
        bins = np.histogram_bin_edges(np.r_[real_s, fake_s, detector.train_scores_], bins=30)
        ax.hist(detector.train_scores_, bins=bins, alpha=0.35, label="real (GMM fit)", density=True)
        ax.hist(real_s, bins=bins, alpha=0.6, label="real (test)", density=True)
        ax.hist(fake_s, bins=bins, alpha=0.6, label=name, density=True)
        ax.axvline(detector.threshold_, color="k", ls="--", label="threshold")
        ax.set(xlabel="log-likelihood under the GMM", title=name)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("density")
    fig.tight_layout()
    return fig


# Chapter 6 ------------------------------------------------------------------------------------------------------
def plot_fig4(by_k: pd.DataFrame, validation: pd.DataFrame, chosen: int, label: str, paper_k: int = 8):
    """Fig. 4, measured: test-set metrics against K (read only, never used to choose K) above the criterion that
    chose K (``validation``'s first column, indexed by K)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.2), sharex=True,
                                      gridspec_kw={"height_ratios": [2, 1]})
    for col in by_k:
        top.plot(by_k.index, by_k[col], marker="o", label=col)
    for ax in (top, bottom):
        ax.axvline(chosen, color="tab:green", ls="--")
        ax.axvline(paper_k, color="0.5", ls=":")
    top.set(ylabel="mean over generators", title=f"Fig. 4 ({label}): test sets, read only")
    top.legend(fontsize=8)
    bottom.plot(validation.index, validation.iloc[:, 0], "o-", color="tab:green")
    bottom.set(xlabel=f"components K (green: chosen K = {chosen}; grey: paper K = {paper_k})",
               ylabel=f"{validation.columns[0]}\n(chose K)")
    fig.tight_layout()
    return fig


def tsne_embedding(groups: Mapping[str, np.ndarray], n_points: int, seed: int = 2024):
    """A 2-D t-SNE of at most ``n_points`` features drawn evenly from ``groups``; returns (embedding, counts)."""
    # imported here, not at the top: `import aigfd_lite.plots` stays free of sklearn
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    per_group = max(1, n_points // len(groups))
    picked = {k: v[np.sort(rng.choice(len(v), min(len(v), per_group), replace=False))] for k, v in groups.items()}
    X = np.concatenate(list(picked.values()))
    emb = TSNE(n_components=2, perplexity=min(30, (len(X) - 1) // 3), init="pca",
               random_state=seed).fit_transform(X)
    return emb, {k: len(v) for k, v in picked.items()}


def plot_tsne(embedding: np.ndarray, counts: Mapping[str, int], title: str):
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    start = 0
    for label, n in counts.items():
        ax.scatter(*embedding[start:start + n].T, s=12, alpha=0.7, label=f"{label} ({n})")
        start += n
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_interval_rows(table: pd.DataFrame, xlabel: str, title: Optional[str] = None):
    """Differences with their intervals (columns difference, low, high), one row each, zero marked."""
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.4 * len(table)))
    y = np.arange(len(table))
    err = np.vstack([table["difference"] - table["low"], table["high"] - table["difference"]])
    ax.errorbar(table["difference"], y, xerr=err, fmt="o", capsize=3)
    ax.axvline(0, color="k", lw=0.8)
    ax.set(yticks=y, yticklabels=[" / ".join(map(str, i)) if isinstance(i, tuple) else i for i in table.index],
           xlabel=xlabel, title=title or "")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig
