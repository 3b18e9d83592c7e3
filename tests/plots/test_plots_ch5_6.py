"""aigfd_lite.plots, chapters 5-6 block: every figure draws from small inputs (Agg backend)."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from aigfd_lite import plots  # noqa: E402
from aigfd_lite.detector.gmm import GMMDetector  # noqa: E402


def test_toy_real_faces_are_seeded_2d_draws():
    a, b = plots.toy_real_faces(50, seed=3), plots.toy_real_faces(50, seed=3)
    assert a.shape == (50, 2) and np.array_equal(a, b)
    assert not np.array_equal(a, plots.toy_real_faces(50, seed=4))


def test_chapter_5_and_6_figures_draw():
    fit, new = plots.toy_real_faces(60), plots.toy_real_faces(40, seed=1)
    det = GMMDetector(n_components=2).fit(fit)
    assert plots.plot_toy_detectors({"a": det}, fit, new).axes
    images = np.zeros((3, 8, 8, 3), np.uint8)
    assert plots.plot_image_rows({"real": images, "fake": images}, per_row=4).axes
    fa = pd.DataFrame({"rate": [0.05], "low": [0.02], "high": [0.09], "in_sample": [0.05]}, index=["x"])
    assert plots.plot_false_alarm(fa, 0.05).axes
    from aigfd_lite.evaluation.recipe import Choice

    proxy = pd.DataFrame({"n_components": [1, 2, 1, 2], "pca_components": [8, 8, 16, 16],
                          "proxy AUC": [0.6, 0.55, 0.62, 0.5], "chosen": [False, False, True, False]})
    assert plots.plot_proxy_choice(proxy, Choice(1, 16, "proxy")).axes
    k_table = pd.DataFrame({"proxy AUC": [0.6, 0.5]}, index=[1, 2])
    assert plots.plot_score_histograms(det, {"g": (fit, new + 3)}).axes
    by_k = pd.DataFrame({"acc": [0.5, 0.6], "ap": [0.6, 0.7], "auc": [0.6, 0.7]}, index=[1, 2])
    assert plots.plot_fig4(by_k, k_table, 2, "measured, lite").axes
    emb, counts = plots.tsne_embedding({"a": np.random.default_rng(0).normal(size=(20, 5)),
                                        "b": np.random.default_rng(1).normal(size=(20, 5))}, 30)
    assert emb.shape == (30, 2) and counts == {"a": 15, "b": 15}
    assert plots.plot_tsne(emb, counts, "t").axes
    diffs = pd.DataFrame({"difference": [0.1], "low": [-0.1], "high": [0.3]}, index=[("x", "g")])
    assert plots.plot_interval_rows(diffs, "AUC").axes
    matplotlib.pyplot.close("all")


def test_robustness_curves_draws_three_series_and_the_nominal_line():
    import pandas as pd

    from aigfd_lite.plots import robustness_curves

    mean = pd.DataFrame({"auc": [0.9, 0.8], "acc": [0.85, 0.7], "false_alarm": [0.05, 0.2]},
                        index=["clean", "JPEG q30"])
    fig = robustness_curves(mean, 0.05, "t")
    ax = fig.axes[0]
    assert len(ax.lines) == 4 and ax.get_title() == "t"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["clean", "JPEG q30"]
