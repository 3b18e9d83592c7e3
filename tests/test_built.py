"""Checks of the executed notebooks' results and the rendered book (run by `make test` after `make notebooks html`)."""
import json
import re
from pathlib import Path

import pytest

import book

pytestmark = pytest.mark.built
ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "stage" / "_build" / "html"
CHAPTERS = [s for s in book.toc_stems() if book.paired(s)]


@pytest.mark.parametrize("stem", CHAPTERS)
def test_results_written_for_this_build(stem):
    data = json.loads((ROOT / "_build" / "results" / f"{stem}.json").read_text())
    timing = json.loads((ROOT / "_build" / "results" / "_timings.json").read_text())[stem]
    assert data["notebook"] == stem and data["profile"] == timing["parameters"].get("profile", "lite")
    assert data["metrics"], f"{stem} saved no measured numbers"
    # Written by this run of the notebook, not left over from an older one.
    assert data["measured_at"] <= timing["finished_at"]
    executed = ROOT / "_build" / "executed" / f"{stem}.ipynb"
    assert executed.stat().st_mtime >= (ROOT / "_build" / "results" / f"{stem}.json").stat().st_mtime - 1


@pytest.mark.parametrize("stem", CHAPTERS)
def test_executed_copy_has_no_errors(stem):
    nb = json.loads((ROOT / "_build" / "executed" / f"{stem}.ipynb").read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{stem}: {out.get('ename')}: {out.get('evalue')}"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_page_rendered_with_a_colab_link_to_the_paired_notebook(stem):
    html = (HTML / f"{stem}.html").read_text()
    links = set(re.findall(r"https://colab\.research\.google\.com/github/[^\"']+", html))
    assert links == {f"https://colab.research.google.com/github/aigfd-lite/aigfd-lite/blob/main/notebooks/{stem}.ipynb"}


def test_status_page_lists_every_notebook_and_versions():
    html = (HTML / "status.html").read_text()
    for stem in CHAPTERS:
        assert stem in html
    assert "not run" not in html and "torch" in html and "jupyter-book" in html


def test_paired_notebooks_untouched_by_papermill():
    for stem in CHAPTERS:
        nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
        assert not any(c.get("outputs") for c in nb["cells"]), stem
