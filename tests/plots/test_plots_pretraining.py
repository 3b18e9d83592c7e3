"""aigfd_lite.plots, chapter 4: each figure draws what it is given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from aigfd_lite import plots

# Chapter 4


def test_tag_caption_formats_settings_and_missing_values():
    assert plots.tag_caption([2.8, 1 / 250, 50, 400], False) == "F2.8 1/250s\n50mm ISO400\n(real EXIF)"
    assert plots.tag_caption([np.nan, 2.0, np.nan, np.nan], True) == "F? 2.0s\n?mm ISO?\n(simulated)"


def test_loss_curves_and_held_out_bars_draw_their_data():
    log = pd.DataFrame({"epoch": np.arange(6) / 2, "loss": np.linspace(2, 1, 6), "lr": np.linspace(1, 0, 6),
                        **{f"loss_{t}": np.ones(6) for t in ("iso", "manipulation")}})
    fig = plots.loss_curves(log, ["iso"], window=2)
    assert [len(ax.lines) for ax in fig.axes] == [2, 1, 1]
    intervals = pd.DataFrame({"metric": ["ranking_accuracy_iso", "manipulation_balanced_accuracy"],
                              "value": [0.8, 0.7], "low": [0.7, 0.6], "high": [0.9, 0.8], "untrained": [0.5, 0.5]})
    ax = plots.held_out_bars(intervals, 33).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["rank iso", "manipulated?"]
    assert [round(p.get_height(), 3) for p in ax.patches] == [0.8, 0.7, 0.5, 0.5]


def test_logit_histogram_counts_every_item():
    logits, labels = np.array([-3.0, -1.0, 0.5, 2.0, 4.0]), np.array([0, 0, 1, 1, 1])
    ax = plots.logit_histogram(logits, labels).axes[0]
    assert sum(p.get_height() for p in ax.patches) == len(logits)
