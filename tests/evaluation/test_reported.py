"""aigfd_lite.evaluation.reported: the paper's numbers are data, validated, and laid out like the measured tables."""
import copy
import json
import math

import pytest

from aigfd_lite.evaluation.reported import DEFAULT_PATH, ReportedNumbersError, load_reported, paper_labels, reported_table


@pytest.fixture
def shipped() -> dict:
    return json.loads(DEFAULT_PATH.read_text())


def write(tmp_path, data) -> str:
    path = tmp_path / "reported.json"
    path.write_text(json.dumps(data))
    return str(path)


def filled(shipped: dict) -> dict:
    """The shipped file with made-up values in Table I's 'ours' row (a fixture, not the paper's numbers)."""
    data = copy.deepcopy(shipped)
    data["transcribed"] = True
    data["tables"]["table1"]["rows"]["ours"] = {"StyleGAN2": {"acc": 0.25, "ap": 0.5}, "mean": {"acc": 0.75}}
    return data


def test_shipped_file_is_valid_and_covers_the_three_tables():
    data = load_reported()
    assert {"table1", "table2", "table3"} <= set(data["tables"])
    assert data["source"].startswith("Zou")
    assert "ours" in data["tables"]["table1"]["rows"]


def test_untranscribed_table_is_all_nan_with_the_declared_layout(tmp_path, shipped):
    empty = copy.deepcopy(shipped)
    empty["transcribed"] = False
    for table in empty["tables"].values():
        table["rows"] = {row: None for row in table["rows"]}
    frame = reported_table("table1", write(tmp_path, empty))
    assert list(frame.columns.get_level_values("metric").unique()) == ["acc", "ap"]
    assert len(frame.columns) == 2 * len(shipped["tables"]["table1"]["columns"])
    assert frame.isna().all().all()
    assert paper_labels("table1", ["ours"], "acc", path=write(tmp_path, empty)) == ["not transcribed"]


def test_filled_values_land_in_their_cells(tmp_path, shipped):
    frame = reported_table("table1", write(tmp_path, filled(shipped)))
    assert frame.loc["ours", ("StyleGAN2", "acc")] == 0.25
    assert frame.loc["ours", ("StyleGAN2", "ap")] == 0.5
    assert frame.loc["ours", ("mean", "acc")] == 0.75
    assert math.isnan(frame.loc["ours", ("mean", "ap")])  # a value not given stays NaN, never 0
    assert frame.loc["ours"].notna().sum() == 3


@pytest.mark.parametrize("value, message", [(95.3, "divided by 100"), (-0.1, "outside"), ("0.9", "not a number"),
                                            (True, "not a number")])
def test_bad_values_are_refused_naming_the_cell(tmp_path, shipped, value, message):
    data = filled(shipped)
    data["tables"]["table1"]["rows"]["ours"]["StyleGAN2"]["acc"] = value
    with pytest.raises(ReportedNumbersError, match=rf"table1/ours/StyleGAN2/acc.*{message}"):
        load_reported(write(tmp_path, data))


def test_unknown_column_and_metric_are_refused(tmp_path, shipped):
    data = filled(shipped)
    data["tables"]["table1"]["rows"]["ours"]["DALL-E"] = {"acc": 0.5}
    with pytest.raises(ReportedNumbersError, match="unknown column 'DALL-E'"):
        load_reported(write(tmp_path, data))
    data = filled(shipped)
    data["tables"]["table1"]["rows"]["ours"]["mean"]["auc"] = 0.5
    with pytest.raises(ReportedNumbersError, match="unknown metric"):
        load_reported(write(tmp_path, data))


def test_transcribed_flag_must_match_the_values(tmp_path, shipped):
    data = filled(shipped)
    data["transcribed"] = False
    with pytest.raises(ReportedNumbersError, match="has values"):
        load_reported(write(tmp_path, data))
    empty = copy.deepcopy(shipped)
    empty["transcribed"] = True
    for table in empty["tables"].values():
        table["rows"] = {row: None for row in table["rows"]}
    with pytest.raises(ReportedNumbersError, match="has no values"):
        load_reported(write(tmp_path, empty))


def test_unreadable_file_and_unknown_table_give_clear_errors(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ReportedNumbersError, match="cannot read"):
        load_reported(broken)
    with pytest.raises(ReportedNumbersError, match="cannot read"):
        load_reported(tmp_path / "missing.json")
    with pytest.raises(KeyError, match="no table 'table9'"):
        reported_table("table9")


def test_paper_labels_beside_a_measured_table(tmp_path, shipped):
    path = write(tmp_path, filled(shipped))
    labels = paper_labels("table1", ["ours", None, "ours"], "acc", path=path)
    assert labels == ["0.750", "not in the paper", "0.750"]
    assert paper_labels("table1", ["ours"], "ap", path=path) == ["not transcribed"]  # mean AP not given
    with pytest.raises(KeyError, match="no row 'theirs'"):
        paper_labels("table1", ["theirs"], "acc", path=path)
