"""The reader of committed GPU measurements (aigfd_lite.train.measurements): a fixture, the empty case, bad files."""
import json
import shutil
from pathlib import Path

import pytest

from aigfd_lite.train import measurements as gm
from conftest import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "gpu_measurements"


def test_reads_the_fixture_with_its_label_and_rows():
    (m,) = gm.gpu_measurements(FIXTURES)
    assert gm.label(m) == "Fixture GPU, 2026-01-02, commit 0123456789"
    rows = gm.training_rows(m)
    # the failed bf16 row and the estimate are not training rows; part b's partial result is
    assert [r["configuration"] for r in rows] == ["fp16 + GradScaler", "2 micro-batches of 128"]
    assert rows[0]["images/s (measured)"] == 123.4
    assert rows[0]["peak GiB (measured)"] == 10.0 and rows[0]["GiB (estimate)"] == 12.0
    lines = gm.summary_lines([m])
    assert len(lines) == 4 and "| Fixture GPU, 2026-01-02, commit 0123456789 | fp16 + GradScaler | 123.4 |" in lines[2]


def test_empty_and_missing_folders_give_nothing_and_the_sentence(tmp_path):
    assert gm.gpu_measurements(tmp_path) == []
    assert gm.gpu_measurements(tmp_path / "absent") == []
    assert gm.summary_lines([]) == [f"*{gm.NO_MEASUREMENT}.*"]
    assert "run tools/gpu_check.py on a GPU" in gm.NO_MEASUREMENT


def test_committed_measurements_are_valid():
    for m in gm.gpu_measurements():  # none yet; every one committed later must read
        assert m["device"]["type"] == "cuda" and not m["smoke"]


def test_oldest_first(tmp_path):
    data = json.loads((FIXTURES / "fixture-gpu.json").read_text())
    (tmp_path / "b.json").write_text(json.dumps(data))
    (tmp_path / "a.json").write_text(json.dumps({**data, "date": "2026-03-01T00:00:00+00:00"}))
    assert [m["date"][:7] for m in gm.gpu_measurements(tmp_path)] == ["2026-01", "2026-03"]


@pytest.mark.parametrize("change, message", [
    ({"smoke": True}, "smoke or CPU run"),
    ({"device": {"type": "cpu", "name": "x"}}, "smoke or CPU run"),
    ({"parts": None, "commit": None}, None),
])
def test_smoke_cpu_and_incomplete_files_are_refused(tmp_path, change, message):
    data = json.loads((FIXTURES / "fixture-gpu.json").read_text())
    data.update(change)
    if message is None:
        del data["parts"]
        message = "missing \\['parts'\\]"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        gm.gpu_measurements(tmp_path)


def test_unreadable_json_names_the_file(tmp_path):
    shutil.copy(FIXTURES / "fixture-gpu.json", tmp_path / "good.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        gm.gpu_measurements(tmp_path)
