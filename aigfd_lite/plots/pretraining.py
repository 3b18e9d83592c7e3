"""Figures of chapter 4 (pretraining: batches, loss curves, held-out accuracies); see the package docstring."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# Chapter 4 ---------------------------------------------------------------------------------------------------------


def tag_caption(tags: Sequence[float], simulated: bool) -> str:
    """Two lines of camera settings (``F2.8 1/250s`` / ``50mm ISO400``) and whether they are real or simulated."""
    aperture, exposure, focal, iso = (float(t) for t in tags)
    if not np.isfinite(exposure):
        shutter = "?s"
    else:
        shutter = f"1/{1 / exposure:.0f}s" if exposure < 1 else f"{exposure:.1f}s"
    parts = [f"F{aperture:.1f}" if np.isfinite(aperture) else "F?", shutter,
             f"{focal:.0f}mm" if np.isfinite(focal) else "?mm", f"ISO{iso:.0f}" if np.isfinite(iso) else "ISO?"]
    return " ".join(parts[:2]) + "\n" + " ".join(parts[2:]) + ("\n(simulated)" if simulated else "\n(real EXIF)")


def pretext_batch(dataset: Any, indices: Sequence[int], columns: int = 8) -> plt.Figure:
    """The raw items ``indices`` of a :class:`aigfd_lite.pretext.PretextDataset`: kind (red if manipulated) + tags."""
    rows = int(np.ceil(len(indices) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(15, 2.7 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), indices):
        image, tags, label, kind = dataset.raw_item(index)
        face = dataset.item_kind(index)[0]
        ax.imshow(image)
        ax.set_title(f"{dataset.labels[kind]}\n" + tag_caption(tags, dataset.simulated[face]), fontsize=7,
                     color="tab:red" if label else "black")
    fig.suptitle(f"{len(indices)} training items (red: manipulated; tags real or simulated, as marked)")
    fig.tight_layout()
    return fig


def loss_curves(log: pd.DataFrame, tags: Sequence[str], window: int) -> plt.Figure:
    """Per-task fidelity losses (left) and the Eq. 6 total with the learning rate (right), rolling means."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    for column in [f"loss_{t}" for t in tags] + ["loss_manipulation"]:
        axes[0].plot(log["epoch"], log[column].rolling(window, min_periods=1).mean(), label=column[5:])
    axes[0].set(xlabel="epoch", ylabel=f"loss (rolling mean of {window} steps)", title="loss per task")
    axes[0].legend(fontsize=8)
    axes[1].plot(log["epoch"], log["loss"].rolling(window, min_periods=1).mean(), color="k")
    axes[1].set(xlabel="epoch", ylabel="Eq. 6 total", title="total loss")
    lr_axis = axes[1].twinx()
    lr_axis.plot(log["epoch"], log["lr"], color="tab:gray", ls="--")
    lr_axis.set_ylabel("learning rate (cosine)", color="tab:gray")
    fig.tight_layout()
    return fig


def short_metric(metric: str) -> str:
    """``ranking_accuracy_iso`` -> ``rank iso``; ``manipulation_balanced_accuracy`` -> ``manipulated?``."""
    return metric.replace("ranking_accuracy_", "rank ").replace("manipulation_balanced_accuracy", "manipulated?")


def held_out_bars(intervals: pd.DataFrame, n_faces: int, control: str = "untrained") -> plt.Figure:
    """Held-out accuracy per pretext task with its bootstrap interval, beside a control column, and chance."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = np.arange(len(intervals))
    error = [intervals["value"] - intervals["low"], intervals["high"] - intervals["value"]]
    ax.bar(x - 0.2, intervals["value"], 0.4, yerr=error, capsize=4, label="trained (95 % bootstrap interval)")
    ax.bar(x + 0.2, intervals[control], 0.4, color="tab:gray", label=f"{control} control")
    ax.axhline(0.5, color="k", ls=":", label="chance")
    ax.set_xticks(x, [short_metric(m) for m in intervals["metric"]])
    ax.set(ylim=(0, 1), ylabel="held-out accuracy", title=f"Pretext tasks on {n_faces} held-out faces")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def logit_histogram(logits: np.ndarray, labels: np.ndarray) -> plt.Figure:
    """Held-out manipulation logits of real (0) and manipulated (1) items, with the decision threshold at 0."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    bins = np.linspace(min(-6.0, logits.min()), max(6.0, logits.max()), 40)
    for label, name, colour in ((0, "real", "tab:blue"), (1, "manipulated", "tab:red")):
        ax.hist(logits[labels == label], bins=bins, alpha=0.55, color=colour, label=name)
    ax.axvline(0.0, color="k", ls=":", label="threshold (q = 0.5)")
    ax.set(xlabel="manipulation logit", ylabel="held-out items", title="Where the manipulation head puts each item")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
