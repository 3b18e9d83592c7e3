import json

import book  # tools/book.py
import pytest
from conftest import FIXTURES


def test_toc_lists_root_first_and_status_page():
    stems = book.toc_stems()
    assert stems[0] == "00_introduction" and "status" in stems
    numbered = [s for s in stems if s[:2].isdigit()]
    assert numbered == sorted(numbered)


def test_declared_parameters(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]},
                     "source": ['profile = "lite"\n', "steps = 0\n"]}]}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    assert book.declared_parameters(path) == {"profile", "steps"}


def test_parameters_equal_to_the_defaults_are_not_injected(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]},
                     "source": ['profile = "lite"\n', "steps = 0\n", "settings = {}\n", "root = Path('.')\n"]}]}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    defaults = book.parameter_defaults(path)
    assert defaults == {"profile": "lite", "steps": 0, "settings": {}}  # Path('.') is not a literal
    declared = book.declared_parameters(path)
    assert book.to_inject({"profile": "lite", "steps": 0}, declared, defaults) == {}
    assert book.to_inject({"profile": "full", "steps": False, "other": 1}, declared, defaults) == {
        "profile": "full", "steps": False}  # False is not the default 0; "other" is not declared here


def test_parse_value():
    assert book.parse_value("3") == 3 and book.parse_value("0.5") == 0.5 and book.parse_value("True") is True
    assert book.parse_value("full") == "full" and book.parse_value("/data/x") == "/data/x"


def test_unknown_parameter_is_refused():
    with pytest.raises(SystemExit, match="unknown parameter.*'nonsense'"):
        book.execute(["00_introduction"], {"nonsense": 1}, "python3")


def test_unknown_notebook_is_refused():
    with pytest.raises(SystemExit, match="unknown notebook"):
        book.execute(["99_missing"], {}, "python3")


def test_status_page_lists_headline_numbers_with_their_profile(tmp_path, monkeypatch):
    monkeypatch.setattr(book, "RESULTS", tmp_path)
    (tmp_path / "05_detector.json").write_text(json.dumps(
        {"notebook": "05_detector", "profile": "lite", "metrics": {},
         "headline": [["mean AUC", 0.74567], ["a|b", "x"], ["tiny", 2e-10], ["seconds", 144.5]]}))
    (tmp_path / "06_results.json").write_text(json.dumps({"notebook": "06_results", "profile": "full", "metrics": {}}))
    (tmp_path / "04_pretraining.json").write_text(json.dumps(  # an older results file: headline as a mapping
        {"notebook": "04_pretraining", "profile": "lite", "metrics": {}, "headline": {"steps": 360}}))
    page = book.status_page(book.toc_stems())
    assert "| 05_detector | lite | mean AUC | 0.746 |" in page
    assert "| 05_detector | lite | a\\|b | x |" in page  # a pipe in a label does not break the table
    assert "| tiny | 2.0e-10 |" in page and "| seconds | 144 |" in page
    assert page.index("mean AUC") < page.index("a\\|b") < page.index("tiny")  # the chapter's order
    assert "| 04_pretraining | lite | steps | 360 |" in page
    assert "06_results |" in page and "| 06_results | " not in page.split("## Headline numbers")[1].split("##")[0]
    assert "not run" in page  # no timings in this folder


def test_status_page_shows_gpu_measurements_or_says_there_is_none(tmp_path, monkeypatch):
    from pathlib import Path

    from aigfd_lite.train import measurements as gpu_measurements

    monkeypatch.setattr(book, "RESULTS", tmp_path)
    monkeypatch.setattr(gpu_measurements, "MEASUREMENTS_DIR", tmp_path / "none")
    page = book.status_page(book.toc_stems())
    assert "## Measured on a GPU" in page and "no GPU measurement yet: run tools/gpu_check.py on a GPU" in page
    monkeypatch.setattr(gpu_measurements, "MEASUREMENTS_DIR", FIXTURES / "gpu_measurements")
    page = book.status_page(book.toc_stems())
    assert "| Fixture GPU, 2026-01-02, commit 0123456789 | fp16 + GradScaler | 123.4 | 10.0 | 12.0 |" in page
    assert "no GPU measurement yet" not in page


def test_pages_that_read_other_results_run_last(monkeypatch, tmp_path):
    """Chapter 0 quotes chapter 6's measurement, so a whole-book run executes it after chapter 6."""
    ran = []

    class FakePapermill:
        @staticmethod
        def execute_notebook(source, output, **kwargs):
            ran.append(source.rsplit("/", 1)[-1].removesuffix(".ipynb"))

    import sys
    monkeypatch.setitem(sys.modules, "papermill", FakePapermill)
    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))  # execute() points the notebooks at its build folder
    book.execute([], {}, "python3", build=tmp_path)
    assert ran[-1] == "00_introduction" and ran.index("06_results") < ran.index("00_introduction")
    assert sorted(ran) == sorted(s for s in book.toc_stems() if book.paired(s))
    assert set(json.loads((tmp_path / "results" / "_timings.json").read_text())) == set(ran)  # not in _build/
