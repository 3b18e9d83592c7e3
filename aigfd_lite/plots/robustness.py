"""Figures of the robustness chapter (chapter 8); see the package docstring."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def robustness_curves(mean: pd.DataFrame, nominal: float, title: str) -> Figure:
    """AUC, accuracy and the false-alarm rate on processed real faces, one point per processing condition."""
    fig, ax = plt.subplots(figsize=(11, 3.8))
    x = np.arange(len(mean))
    ax.plot(x, mean["auc"], "o-", label="AUC")
    ax.plot(x, mean["acc"], "s-", label="accuracy")
    ax.plot(x, mean["false_alarm"], "^-", color="C3", label="false alarms on processed real faces")
    ax.axhline(nominal, color="C3", ls=":", lw=1, label=f"nominal false-alarm rate ({nominal:.0%})")
    ax.set_xticks(x, mean.index, rotation=35, ha="right")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig
