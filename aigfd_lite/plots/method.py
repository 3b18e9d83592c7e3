"""Figures of chapters 0-3 (the method: EXIF labels, the fidelity loss, manipulations); see the package docstring.

Every function draws one figure from data the chapter computed, returns the matplotlib ``Figure`` (the chapter
calls ``plt.show()``), and computes nothing the text relies on. Blocks are marked ``# Chapter N``; each function's
docstring names the figure it draws.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle


# Chapter 0 ----------------------------------------------------------------------------------------------------------


def _box(ax, xy, text, color, w=2.3, h=0.9):
    ax.add_patch(FancyBboxPatch(xy, w, h, boxstyle="round,pad=0.05", fc=color, ec="0.3"))
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=9)


def _arrow(ax, start, end):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="0.3"))


def method_diagram() -> Figure:
    """Chapter 0: the method in one picture (our drawing of the paper's Fig. 1), with its equation numbers."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.set(xlim=(0, 13.6), ylim=(0, 5))
    ax.axis("off")
    ax.text(0.1, 4.7, "Training: real photographs only", fontsize=10, weight="bold")
    ax.text(0.1, 1.75, "Detection", fontsize=10, weight="bold")
    _box(ax, (0.1, 3.4), "real face photos\n+ EXIF tags", "#e8f1fb")
    _box(ax, (0.1, 2.2), "manipulated faces\n(eye / mouth flips, warp)", "#fdecea")
    _box(ax, (3.2, 2.8), "ResNet-50\n-> 768-d feature", "#eef7e9")
    _box(ax, (6.4, 3.4), "4 EXIF rankers\nThurstone + fidelity (Eq. 1-3)", "#e8f1fb")
    _box(ax, (6.4, 2.2), "manipulation head\nfidelity loss (Eq. 4-5)", "#fdecea")
    _box(ax, (9.6, 2.8), "loss (Eq. 6)\n= sum of 5 tasks", "#f5f5f5")
    for a, b in [((2.45, 3.85), (3.2, 3.3)), ((2.45, 2.65), (3.2, 3.2)), ((5.55, 3.3), (6.4, 3.85)),
                 ((5.55, 3.2), (6.4, 2.65)), ((8.75, 3.85), (9.6, 3.3)), ((8.75, 2.65), (9.6, 3.2))]:
        _arrow(ax, a, b)
    _box(ax, (0.1, 0.3), "a test face", "#f5f5f5", w=1.8)
    _box(ax, (2.6, 0.3), "frozen ResNet-50\nfeature", "#eef7e9")
    _box(ax, (5.6, 0.3), "GMM fitted on\nreal faces' features", "#fff6da")
    _box(ax, (8.6, 0.3), "log-likelihood < 5th pct\nof real faces?", "#fff6da", w=2.4)
    _box(ax, (11.7, 0.3), "yes: AI-generated\nno: photograph", "#f5f5f5", w=1.65)
    for a, b in [((1.95, 0.75), (2.6, 0.75)), ((4.95, 0.75), (5.6, 0.75)), ((7.95, 0.75), (8.6, 0.75)),
                 ((11.15, 0.75), (11.7, 0.75))]:
        _arrow(ax, a, b)
    ax.set_title("The method (our drawing of the paper's Fig. 1)")
    return fig


# Chapter 1 ----------------------------------------------------------------------------------------------------------

#: Photographers' scales (whole stops) for the four ordinal tags' axes: positions and optional labels.
TAG_TICKS = {"aperture": ([1.4, 2, 2.8, 4, 5.6, 8, 11], None),
             "exposure_time": ([1 / 500, 1 / 125, 1 / 30, 1 / 8, 1 / 2, 2],
                               ["1/500", "1/125", "1/30", "1/8", "1/2", "2"]),
             "focal_length": ([4, 8, 16, 50, 200], None),
             "iso": ([100, 400, 1600, 6400, 25600], None)}
TAG_UNITS = {"aperture": "f-number", "exposure_time": "seconds", "focal_length": "mm", "iso": "ISO"}


def tag_distributions(table: pd.DataFrame, tags: Sequence[str], title: str) -> Figure:
    """Chapter 1: one panel per ordinal tag, log axis; every photo a dot (few photos) or a histogram (many)."""
    # imported here, not at the top: `import aigfd_lite.plots` stays free of seaborn (two figures only)
    import seaborn as sns

    fig, axes = plt.subplots(1, len(tags), figsize=(13, 3.2))
    for ax, name in zip(np.atleast_1d(axes), tags):
        data = table.dropna(subset=[name]).astype({name: float})
        if len(table) > 200:  # each source normalised on its own
            sns.histplot(data=data, x=name, hue="source", log_scale=True, element="step", stat="density",
                         common_norm=False, ax=ax, legend=(name == tags[-1]))
        else:
            sns.stripplot(data=data, x=name, hue="source", log_scale=True, jitter=0.25, size=6, ax=ax,
                          legend=(name == tags[-1]))
        low, high = data[name].min() / 1.3, data[name].max() * 1.3
        positions, labels = TAG_TICKS[name]
        keep = [k for k, v in enumerate(positions) if low <= v <= high]
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(mticker.FixedLocator([positions[k] for k in keep]))
        ax.xaxis.set_major_formatter(mticker.FixedFormatter(
            [labels[k] if labels else f"{positions[k]:g}" for k in keep]))
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        ax.set_xlabel(f"{name} ({TAG_UNITS[name]}, log scale)")
        ax.set_title(f"{name}: {len(data)} photos")
    fig.suptitle(title, y=1.03)
    return fig


def pair_label_heatmaps(matrices: Mapping[str, np.ndarray], annotate: bool = True) -> Figure:
    """Chapter 1: Eq. 1's targets of one minibatch, one heatmap per tag (grey: undefined pairs)."""
    # imported here, not at the top: `import aigfd_lite.plots` stays free of seaborn (two figures only)
    import seaborn as sns

    names = list(matrices)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(17, 4.4),
                             gridspec_kw={"width_ratios": [1] * len(names) + [0.05]})
    symbols = {1.0: "1", 0.0: "0", 0.5: "½"}
    for ax, name in zip(axes, names):
        matrix = matrices[name]
        labels = np.vectorize(lambda v: symbols.get(v, ""))(matrix)
        last = name == names[-1]
        sns.heatmap(matrix, mask=np.isnan(matrix), vmin=0, vmax=1, cmap="coolwarm", cbar=last,
                    cbar_ax=axes[-1] if last else None, annot=labels if annotate else False, fmt="",
                    annot_kws={"fontsize": 7}, square=True, linewidths=0.3, ax=ax)
        ax.set_facecolor("0.88")
        n = len(matrix)
        ax.set_title(f"{name}: {int(np.isfinite(matrix).sum())} of {n * (n - 1) // 2} pairs")
        ax.set_xlabel("photo j")
        ax.set_ylabel("photo i" if name == names[0] else "")
    fig.suptitle("Pair labels of one minibatch (Eq. 1, ties 0.5): 1 = photo i has the larger tag, "
                 "grey = undefined", y=1.0)
    return fig


# Chapter 2 ----------------------------------------------------------------------------------------------------------


def thurstone_curves(d: np.ndarray, p_paper: np.ndarray, p_code: np.ndarray) -> Figure:
    """Chapter 2: Eq. 2's two variants against the score difference, and the code's on a stretched axis."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(d, p_paper, label=r"paper: $\Phi((s_x-s_y)/\sqrt{2})$")
    axes[0].plot(d, p_code, label=r"code: $\Phi(2(s_x-s_y))$")
    axes[0].axhline(0.9, color="0.6", lw=0.8, ls=":")
    axes[0].set(xlabel=r"score difference $s_x - s_y$", ylabel=r"$\hat p(x \succ y)$",
                title="Eq. 2, both variants")
    axes[0].legend(loc="lower right")
    axes[1].plot(np.asarray(d) * 2 * np.sqrt(2), p_code, lw=4, alpha=0.4,
                 label="code, axis stretched by $2\\sqrt{2}$")
    axes[1].plot(d, p_paper, "--", label="paper")
    axes[1].set(xlim=(-4, 4), xlabel="score difference in paper units",
                title="the same curve on a rescaled axis")
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    return fig


def loss_and_slopes(curves: Mapping[float, Mapping[str, Mapping[str, np.ndarray]]]) -> Figure:
    """Chapter 2: loss, slope in p_hat and slope in the score difference, per target (rows) and loss (lines).

    ``curves[p][loss_name]`` holds arrays ``p_hat``, ``loss``, ``slope``, ``d``, ``slope_d``.
    """
    fig, axes = plt.subplots(len(curves), 3, figsize=(13, 3.25 * len(curves)), squeeze=False)
    for row, (p, by_loss) in enumerate(curves.items()):
        for name, c in by_loss.items():
            axes[row, 0].plot(c["p_hat"], c["loss"], label=name)
            axes[row, 1].plot(c["p_hat"], c["slope"], label=name)
            axes[row, 2].plot(c["d"], c["slope_d"], label=name)
        axes[row, 0].set(ylabel=f"p = {p}", ylim=(-0.05, 3))
        axes[row, 1].set(yscale="symlog", ylabel="slope")
        axes[row, 2].set(ylabel="slope")
    axes[0, 0].set_title(r"loss against $\hat p$")
    axes[0, 1].set_title(r"$\partial \ell / \partial \hat p$ (symlog)")
    axes[0, 2].set_title(r"$\partial \ell / \partial (s_x - s_y)$, paper's Eq. 2")
    for k, ax in enumerate(axes[-1]):
        ax.set_xlabel(r"$s_x - s_y$" if k == 2 else r"$\hat p$")
    axes[0, 0].legend()
    fig.tight_layout()
    return fig


def ranker_training(runs: Mapping[str, Mapping], hidden: np.ndarray, window: int = 25) -> Figure:
    """Chapter 2: the tiny ranker's smoothed training loss, and held-out scores against the hidden exposure."""
    fig, axes = plt.subplots(1, 1 + len(runs), figsize=(14, 3.8))
    jitter = np.random.default_rng(0).normal(0, 0.03, len(hidden))
    for ax, (variant, run) in zip(axes[1:], runs.items()):
        smooth = np.convolve(run["history"], np.ones(window) / window, mode="valid")
        axes[0].plot(smooth, label=variant)
        ax.scatter(hidden + jitter, run["test_scores"], s=4, alpha=0.4)
        ax.set(xlabel="hidden exposure (EV stops)", ylabel="learned score",
               title=f"{variant}: held-out accuracy {run['held_out_accuracy']:.3f}")
    axes[0].set(xlabel="step", ylabel=f"ranking loss (moving mean of {window})", title="training")
    axes[0].legend()
    fig.tight_layout()
    return fig


# Chapter 3 ----------------------------------------------------------------------------------------------------------


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_titles: Sequence[str] = (),
               column_titles: Sequence[str] = (), title: str = "", size: float = 1.6,
               cmap: str | None = None) -> Figure:
    """Chapter 3: images in a grid, axes off; a title above each row's first image and/or each column."""
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(size * n_cols, size * len(rows) + 0.4),
                             squeeze=False)
    for r, images in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c], cmap=cmap)
            if r == 0 and c < len(column_titles):
                ax.set_title(column_titles[c], fontsize=9)
        if r < len(row_titles):
            axes[r, 0].set_title(row_titles[r], fontsize=8, loc="left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def landmark_panels(images: Sequence[np.ndarray], points: Sequence[np.ndarray], titles: Sequence[str],
                    corners: Sequence[tuple[int, int]] = ((36, 39), (42, 45), (48, 54))) -> Figure:
    """Chapter 3: faces with their 68 landmarks; the corner pairs the manipulations use in colour."""
    fig, axes = plt.subplots(1, len(images), figsize=(3 * len(images), 3), squeeze=False)
    for ax, image, lm, title in zip(axes[0], images, points, titles):
        ax.imshow(image)
        ax.scatter(lm[:, 0], lm[:, 1], s=4, c="w", edgecolors="k", linewidths=0.3)
        for (a, b), colour in zip(corners, ["tab:blue", "tab:orange", "tab:red"]):
            ax.scatter(lm[[a, b], 0], lm[[a, b], 1], s=18, c=colour)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    return fig


def flip_steps(steps: Mapping[str, np.ndarray], landmarks: np.ndarray, corners: tuple[int, int],
               box: tuple[int, int, int, int], blended: np.ndarray, original: np.ndarray,
               margin: int = 25) -> Figure:
    """Chapter 3: the flipping process (our version of the paper's Fig. 3), ten panels.

    ``steps`` maps the eight step titles to images in order: face, dilated line, face (for the box), hard flip,
    box mask, blurred, eroded, soft mask. The last column zooms on the blend and on |blend - original|.
    """
    (t0, face), *rest = steps.items()
    panels = [(t0, face), *rest[:3], ("6. soft blend (zoomed)", None), *rest[3:7],
              ("7. |blend - original| (zoomed)", None)]
    fig, axes = plt.subplots(2, 5, figsize=(15, 6.6))
    for ax, (title, img) in zip(axes.ravel(), panels):
        if img is not None:
            ax.imshow(img, cmap="gray", vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    a, b = corners
    x0, y0, x1, y1 = box
    axes[0, 0].scatter(landmarks[:, 0], landmarks[:, 1], s=3, c="w")
    axes[0, 0].scatter(landmarks[[a, b], 0], landmarks[[a, b], 1], s=25, c="tab:orange")
    axes[0, 2].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="tab:orange",
                                   lw=1.5))
    zoom = (slice(max(0, y0 - margin), y1 + margin), slice(max(0, x0 - margin), x1 + margin))
    axes[0, 4].imshow(blended[zoom])
    axes[1, 4].imshow(np.abs(blended.astype(int) - original)[zoom].sum(2), cmap="magma")
    fig.suptitle("The flipping process (our version of the paper's Fig. 3)")
    fig.tight_layout()
    return fig


def shortcut_histograms(table: pd.DataFrame, aucs: Mapping[str, float],
                        real_columns: Mapping[str, str], fake_column: str = "manipulated") -> Figure:
    """Chapter 3: the high-frequency share of real and manipulated faces, per resampling pipeline.

    ``real_columns`` maps a panel title (a key of ``aucs``) to the column of real faces it shows.
    """
    fig, axes = plt.subplots(1, len(real_columns), figsize=(11, 3.4), sharey=True, squeeze=False)
    bins = np.linspace(0, table[[*real_columns.values(), fake_column]].to_numpy().max(), 40)
    for ax, (title, column) in zip(axes[0], real_columns.items()):
        ax.hist(table[column], bins=bins, alpha=0.6, label="real")
        ax.hist(table[fake_column], bins=bins, alpha=0.6, label=fake_column)
        ax.set_title(f"{title}: AUC {aucs[title]:.2f}", fontsize=10)
        ax.set_xlabel("high-frequency share of spectral energy")
    axes[0, 0].legend()
    return fig


def camera_sweeps(face: np.ndarray, sweeps: Mapping[str, Sequence[float]],
                  render: Callable[[str, float], np.ndarray], label: Callable[[str, float], str]) -> Figure:
    """Chapter 3: one face rendered by the camera simulator with one tag varied per row."""
    rows = [[face, *[render(tag, v) for v in values]] for tag, values in sweeps.items()]
    fig = image_grid(rows, size=2.2, title="The camera simulator, one tag at a time "
                                          "(others at the quartile medians)")
    for row_axes, (tag, values) in zip(np.reshape(fig.axes, (len(rows), -1)), sweeps.items()):
        row_axes[0].set_title("original", fontsize=8)
        for ax, value in zip(row_axes[1:], values):
            ax.set_title(f"simulated: {label(tag, value)}", fontsize=8)
    return fig
