"""Tests of tools/set_repository.py: the repository URL lives in _config.yml and every install cell follows it."""
import shutil
from pathlib import Path

import pytest
import set_repository as tool
from conftest import ROOT



def test_this_checkout_agrees():
    assert tool.disagreements() == []


@pytest.fixture
def copy(tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("*.bib"))
    return tmp_path


def test_pointing_at_a_fork_rewrites_config_and_every_install_cell(copy):
    before = (copy / "_config.yml").read_text()
    changed = tool.set_repository("https://github.com/someone/fork.git", "dev", copy)
    assert len(changed) == len(list((copy / "book").glob("[0-9][0-9]_*.md")))
    assert tool.repository(copy) == ("https://github.com/someone/fork", "dev")
    assert tool.disagreements(copy) == []
    after = (copy / "_config.yml").read_text()
    assert sum(a != b for a, b in zip(before.splitlines(), after.splitlines())) == 2  # only url and branch
    assert "git+https://github.com/someone/fork@dev" in changed[0].read_text()


def test_a_stray_cell_is_reported_and_bad_urls_refused(copy):
    md = sorted((copy / "book").glob("[0-9][0-9]_*.md"))[0]
    md.write_text(md.read_text().replace("@main", "@old-branch"))
    assert [line.split(":")[0] for line in tool.disagreements(copy)] == [md.name]
    assert tool.main(["--root", str(copy)]) == 1
    with pytest.raises(ValueError, match="https"):
        tool.set_repository("git@github.com:me/fork", "main", copy)
