"""The book's figures, one module per part of the book, so that a chapter's code cell shows the idea, not the plotting.

Every function draws one figure from data its chapter computed and returns the matplotlib ``Figure`` (or axes);
it computes nothing the text relies on. ``method`` holds chapters 0-3, ``pretraining`` chapter 4, ``detector``
chapters 5-6 and ``blades`` the BLADES chapter; every figure function is importable from ``aigfd_lite.plots``.
"""
from .method import (
    method_diagram, tag_distributions, pair_label_heatmaps, thurstone_curves, loss_and_slopes,
    ranker_training, image_grid, landmark_panels, flip_steps, shortcut_histograms, camera_sweeps,
)
from .pretraining import (
    tag_caption, pretext_batch, loss_curves, short_metric, held_out_bars, logit_histogram,
)
from .detector import (
    toy_real_faces, plot_toy_detectors, plot_image_rows, plot_false_alarm, plot_proxy_choice,
    plot_score_histograms, plot_fig4, tsne_embedding, plot_tsne, plot_interval_rows,
)
from .blades import plot_loss_comparison, plot_task_weights
from .robustness import robustness_curves
