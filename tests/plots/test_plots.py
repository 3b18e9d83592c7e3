"""Smoke tests of aigfd_lite.plots (Agg backend): each figure has the panels, lines, points and titles it promises."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from aigfd_lite import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# Chapter 0


def test_method_diagram_names_the_equations():
    fig = plots.method_diagram()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "Eq. 1-3" in texts and "Eq. 4-5" in texts and "Eq. 6" in texts
    assert len(fig.axes[0].patches) >= 11 + 10  # 11 boxes, 10 arrows
    assert "Fig. 1" in fig.axes[0].get_title()


# Chapter 1


def tag_table(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"source": ["a", "b"] * (n // 2),
                         "aperture": rng.choice([2.8, 4.0, 5.6], n),
                         "exposure_time": rng.choice([1 / 250, 1 / 60], n),
                         "focal_length": rng.choice([24.0, 50.0], n),
                         "iso": rng.choice([100.0, 400.0, np.nan], n)})


@pytest.mark.parametrize("n", [20, 400])  # dots for a handful of photos, histograms for many
def test_tag_distributions_one_panel_per_tag(n):
    table = tag_table(n)
    tags = ["aperture", "exposure_time", "focal_length", "iso"]
    fig = plots.tag_distributions(table, tags, "title here")
    assert len(fig.axes) == 4
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == tags
    assert fig.axes[3].get_title() == f"iso: {table['iso'].notna().sum()} photos"
    assert fig._suptitle.get_text() == "title here"
    assert all(ax.get_xscale() == "log" for ax in fig.axes)


def test_pair_label_heatmaps_count_defined_pairs():
    upper = np.full((4, 4), np.nan)
    upper[0, 1], upper[0, 2], upper[1, 2] = 1.0, 0.5, 0.0
    fig = plots.pair_label_heatmaps({"aperture": upper, "iso": np.full((4, 4), np.nan)})
    assert len(fig.axes) == 3  # two heatmaps and one colour bar
    assert fig.axes[0].get_title() == "aperture: 3 of 6 pairs"
    assert fig.axes[1].get_title() == "iso: 0 of 6 pairs"
    assert {t.get_text() for t in fig.axes[0].texts} >= {"1", "½", "0"}


# Chapter 2


def test_thurstone_curves_two_panels_two_curves_each():
    d = np.linspace(-4, 4, 81)
    fig = plots.thurstone_curves(d, 1 / (1 + np.exp(-d)), 1 / (1 + np.exp(-2 * d)))
    assert len(fig.axes) == 2
    assert len(fig.axes[0].get_lines()) == 3  # two curves and the p = 0.9 guide
    assert len(fig.axes[1].get_lines()) == 2
    assert fig.axes[0].get_title() == "Eq. 2, both variants"
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_xdata(), d * 2 * np.sqrt(2))


def test_loss_and_slopes_grid():
    x = np.linspace(0.01, 0.99, 11)
    curve = {"p_hat": x, "loss": x, "slope": x, "d": x, "slope_d": x}
    curves = {1.0: {"fidelity": curve, "ce": curve}, 0.5: {"fidelity": curve, "ce": curve}}
    fig = plots.loss_and_slopes(curves)
    assert len(fig.axes) == 6
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "p = 1.0" and fig.axes[3].get_ylabel() == "p = 0.5"
    assert fig.axes[1].get_yscale() == "symlog"


def test_ranker_training_panels():
    runs = {v: {"history": np.linspace(1, 0, 100), "test_scores": np.arange(10.0),
                "held_out_accuracy": acc} for v, acc in (("paper", 0.9), ("code", 0.8))}
    fig = plots.ranker_training(runs, np.arange(10.0), window=10)
    assert len(fig.axes) == 3
    assert len(fig.axes[0].get_lines()) == 2
    assert len(fig.axes[0].get_lines()[0].get_ydata()) == 100 - 10 + 1
    assert fig.axes[1].get_title() == "paper: held-out accuracy 0.900"
    assert len(fig.axes[2].collections[0].get_offsets()) == 10


# Chapter 3


def test_image_grid_titles_and_blank_cells():
    img = np.zeros((8, 8, 3), np.uint8)
    fig = plots.image_grid([[img, img, img], [img]], row_titles=["r1", "r2"],
                           column_titles=["c1", "c2", "c3"], title="grid")
    assert len(fig.axes) == 6
    assert sum(len(ax.images) for ax in fig.axes) == 4
    assert fig.axes[1].get_title() == "c2" and fig.axes[3].get_title(loc="left") == "r2"


def test_landmark_panels_draw_68_points_and_corners():
    img = np.zeros((32, 32, 3), np.uint8)
    lm = np.random.default_rng(0).uniform(0, 32, (68, 2))
    fig = plots.landmark_panels([img, img], [lm, lm], ["a", "b"])
    assert len(fig.axes) == 2
    offsets = [len(c.get_offsets()) for c in fig.axes[0].collections]
    assert offsets == [68, 2, 2, 2]


def test_flip_steps_ten_panels_and_box():
    face = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64))
    steps = {f"step {k}": face if k in (0, 2, 3) else mask for k in range(8)}
    fig = plots.flip_steps(steps, np.zeros((68, 2)), (42, 45), (10, 12, 30, 20), face, face)
    assert len(fig.axes) == 10
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[4] == "6. soft blend (zoomed)" and titles[9] == "7. |blend - original| (zoomed)"
    assert len(fig.axes[2].patches) == 1  # the region box


def test_shortcut_histograms_show_auc_in_titles():
    table = pd.DataFrame({"real A": [0.1, 0.2], "real B": [0.3, 0.1], "manipulated": [0.05, 0.1]})
    fig = plots.shortcut_histograms(table, {"code": 0.91, "ours": 0.52},
                                    {"code": "real A", "ours": "real B"})
    assert [ax.get_title() for ax in fig.axes] == ["code: AUC 0.91", "ours: AUC 0.52"]
    assert all(len(ax.patches) == 2 * 39 for ax in fig.axes)  # two histograms of 39 bins


def test_camera_sweeps_label_every_rendering():
    face = np.zeros((8, 8, 3), np.uint8)
    sweeps = {"iso": [100, 800], "aperture": [2.8, 8.0]}
    fig = plots.camera_sweeps(face, sweeps, lambda tag, v: face, lambda tag, v: f"{tag} {v:g}")
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes] == [
        "original", "simulated: iso 100", "simulated: iso 800",
        "original", "simulated: aperture 2.8", "simulated: aperture 8"]
