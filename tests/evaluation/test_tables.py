"""aigfd_lite.evaluation.tables: the paper's rows and ours in one table with the same columns."""
import numpy as np
import pytest

from aigfd_lite.evaluation.metrics import metrics_table
from aigfd_lite.evaluation.reported import reported_table
from aigfd_lite.evaluation.tables import NOT_IN_PAPER, PAPER, side_by_side


def _measured(seed):
    rng = np.random.default_rng(seed)
    sets = {g: (rng.normal(1, 1, 20), rng.normal(0, 1, 20)) for g in ("DCGAN", "Autoencoder")}
    return metrics_table(sets, threshold=0.0)


def test_table1_has_all_seven_paper_rows_and_ours_with_separate_means():
    ours = _measured(0)
    table = side_by_side("table1", {"ours (GMM)": ours}, {"ours (GMM)": "ours"}, "lite", ["acc"])
    paper = table.xs(PAPER, level="source")
    assert len(paper) == 7 and "GramNet" in paper.index.get_level_values(0)
    assert ("acc", "mean of 9") in table.columns and ("acc", "mean of 2") in table.columns
    row = table.xs("measured, lite", level="source").iloc[0]
    assert row[("acc", "mean of 2")] == pytest.approx(ours.loc["mean", "acc"])
    assert np.isnan(row[("acc", "mean of 9")]) and np.isnan(row[("acc", "SDXL")])
    assert table.loc[(PAPER, "ours", "ours"), ("acc", "mean of 9")] == reported_table("table1").loc[
        "ours", ("mean", "acc")]
    assert np.isnan(table.loc[(PAPER, "ours", "ours"), ("acc", "DCGAN")])


def test_rows_without_a_paper_counterpart_say_so_and_bad_counterparts_fail():
    table = side_by_side("table2", {"random init": _measured(1)}, {"random init": None}, "lite", ["auc"])
    assert ("measured, lite", "random init", NOT_IN_PAPER) in table.index
    assert len(table.xs(PAPER, level="source")) == 5
    with pytest.raises(KeyError, match="no row"):
        side_by_side("table2", {"x": _measured(1)}, {"x": "ResNet random"}, "lite", ["auc"])


def test_full_profile_means_share_the_column():
    rng = np.random.default_rng(2)
    gens = list(reported_table("table1").columns.unique("generator"))[:-1]
    ours = metrics_table({g: (rng.normal(1, 1, 10), rng.normal(0, 1, 10)) for g in gens}, 0.0)
    table = side_by_side("table1", {"ours": ours}, {"ours": "ours"}, "full", ["acc", "ap"])
    assert [g for g in table.columns.unique("generator") if g.startswith("mean")] == ["mean of 9"]
    assert not table.loc[("measured, full", "ours", "ours")].isna().any()


def test_measured_columns_come_first():
    """A lite table's own generators and means lead; the paper-only generators follow."""
    rng = np.random.default_rng(1)
    gens = list(reported_table("table1").columns.unique("generator"))[:-1]
    ours = metrics_table({"DCGAN": (rng.normal(1, 1, 10), rng.normal(0, 1, 10)),
                          gens[0]: (rng.normal(1, 1, 10), rng.normal(0, 1, 10))}, 0.0)
    table = side_by_side("table1", {"ours": ours}, {"ours": "ours"}, "lite", ["acc", "ap"])
    acc = [g for m, g in table.columns if m == "acc"]
    assert acc[:2] == [gens[0], "DCGAN"] or acc[:2] == ["DCGAN", gens[0]]
    assert acc[2:4] == ["mean of 9", "mean of 2"]
    assert set(acc[4:]) == set(gens[1:])


def test_one_block_per_requested_metric_and_no_empty_columns():
    """Table I's accuracy table holds the accuracy block only (not the paper's AP block), and every column has a
    value in some row; the measured generators lead."""
    table = side_by_side("table1", {"ours (GMM)": _measured(0)}, {"ours (GMM)": "ours"}, "lite", ["acc"])
    assert list(table.columns.unique("metric")) == ["acc"]
    assert table.notna().any(axis=0).all()
    assert [g for _, g in table.columns][:3] == ["DCGAN", "Autoencoder", "mean of 9"] or \
        [g for _, g in table.columns][:3] == ["Autoencoder", "DCGAN", "mean of 9"]
    both = side_by_side("table3", {"ours": _measured(0)}, {"ours": "both (ours)"}, "lite",
                        ["acc", "ap", "auc"])
    assert list(both.columns.unique("metric")) == ["acc", "ap", "auc"]  # the order asked for
