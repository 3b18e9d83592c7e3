"""The paired chapters: in sync, committed without outputs, and shaped the same way (Colab cell, parameters, resolve)."""
import ast
import json
import re
from pathlib import Path

import jupytext
import papermill
import pytest
import yaml
from jupytext.compare import compare_notebooks

import book
from conftest import ROOT

MARKDOWN = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]  # the one place (tools/set_repository.py)
REPO_URL, BRANCH = REPOSITORY["url"], REPOSITORY.get("branch", "main")


def test_every_chapter_is_paired_and_in_the_toc():
    assert [p.stem for p in MARKDOWN] == [p.stem for p in NOTEBOOKS]
    stems = set(book.toc_stems())
    assert {p.stem for p in MARKDOWN} <= stems
    assert {s for s in stems if s[:2].isdigit()} <= {p.stem for p in MARKDOWN}


@pytest.mark.parametrize("md", MARKDOWN, ids=lambda p: p.stem)
def test_pair_in_sync(md):
    text = jupytext.read(md)
    assert text.metadata["jupytext"]["formats"] == "notebooks//ipynb,book//md:myst"
    ipynb = jupytext.read(ROOT / "notebooks" / f"{md.stem}.ipynb")
    compare_notebooks(ipynb, text, fmt="md:myst")  # raises on any difference


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        assert not cell.get("outputs"), f"{path.name} has outputs"
        assert not cell.get("execution_count"), f"{path.name} has execution counts"
        assert "injected-parameters" not in cell.get("metadata", {}).get("tags", []), f"{path.name}: papermill cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    colab, params, setup = ("".join(c["source"]) for c in cells[:3])
    # 1. Installs the package only on Colab, from this repository, never touching torch or numpy.
    assert 'if "google.colab" in sys.modules' in colab and f"git+{REPO_URL}@{BRANCH}" in colab
    assert not re.search(r"\b(torch|numpy)\b", colab.split("if ")[1])
    # ... and shows the one line that keeps checkpoints, weights and features on Google Drive.
    assert 'os.environ["AIGFD_STORE"] = "/content/drive/' in colab, f"{path.name}: Colab cell without AIGFD_STORE"
    # 2. The parameters cell: plain literal assignments only, profile = "lite" among them.
    assert "parameters" in cells[1]["metadata"].get("tags", [])
    tree = ast.parse(params)
    values = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign), f"{path.name}: parameters cell holds only assignments"
        values[node.targets[0].id] = ast.literal_eval(node.value)  # raises unless a plain value
    assert values.get("profile") == "lite"
    # papermill must parse every parameter (it silently skips lines it cannot read, e.g. quotes in comments).
    assert set(papermill.inspect_notebook(str(path))) == set(values), f"{path.name}: papermill misreads parameters"
    # 3. The next cell resolves the profile through the package's table.
    assert re.search(r"resolve\(\s*profile", setup), f"{path.name}: third code cell must call resolve(profile, ...)"
    # Any other Profile setting reaches resolve through one plain parameter (the CI rehearsal's tiny sizes).
    assert values.get("settings") == {}, f"{path.name}: parameters cell must declare settings = {{}}"
    assert re.search(r"resolve\(\s*profile[^)]*settings=settings", setup), f"{path.name}: resolve(..., settings=settings)"
    # Results are data: the notebook saves its measured numbers under its own stem.
    source = "".join("".join(c["source"]) for c in cells)
    assert f'save_results("{path.stem}"' in source
