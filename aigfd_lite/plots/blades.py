"""Figures of the BLADES chapter (task weights over training, loss curves); see the package docstring."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


# Chapter 7 -----------------------------------------------------------------------------------------------------
def plot_task_weights(log: pd.DataFrame, names: list[str] | tuple[str, ...], ax=None, title: str = ""):
    """BLADES' task weights lambda_i over training (chapter 7): one line per task, from ``lambda_<name>`` columns
    of a BLADES training log; the equal-weight level 1 dotted."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    styles = ["-", "--", "-.", ":"]
    for k, name in enumerate(names):
        ax.plot(log["epoch"], log[f"lambda_{name}"], ls=styles[k // 10 % 4], label=name)
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set(xlabel="epoch", ylabel="task weight $\\lambda_i$", title=title or "Task weights learned by bi-level "
           "optimisation")
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return ax


def plot_loss_comparison(logs: dict[str, pd.DataFrame], column: str = "loss_manipulation", ax=None,
                         window: int = 3):
    """One training-loss column (rolling mean of ``window`` steps) for several BLADES runs (chapter 7)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, log in logs.items():
        ax.plot(log["epoch"], log[column].rolling(window, min_periods=1).mean(), label=label)
    ax.set(xlabel="epoch", ylabel=f"{column} (rolling mean of {window} steps)", title=column.replace("_", " "))
    ax.legend(fontsize=8)
    return ax
