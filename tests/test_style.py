"""House style of the book's code cells: short enough to read, narrow enough to render without cutting lines.

Every code cell of every chapter (book/NN_*.md, the hidden Colab install cell included) has at most
MAX_LINES non-empty lines and no line longer than MAX_COLUMNS characters. Non-empty lines are counted (blank lines
that separate definitions cost nothing to read); the width counts every character, comments included. The cells are
read through jupytext, so the MyST cell options (``:tags:``) are not counted, exactly as the notebook holds them.
"""
from pathlib import Path

import jupytext
import pytest
from conftest import ROOT

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
MAX_LINES = 25
MAX_COLUMNS = 88


def cell_problems(path: Path) -> list[str]:
    """One line per offending code cell: its number, first line, and what is too long."""
    problems = []
    cells = [c for c in jupytext.read(path).cells if c.cell_type == "code"]
    for number, cell in enumerate(cells, start=1):
        lines = cell.source.splitlines()
        non_empty = sum(1 for line in lines if line.strip())
        wide = [(k, len(line)) for k, line in enumerate(lines, start=1) if len(line) > MAX_COLUMNS]
        issues = []
        if non_empty > MAX_LINES:
            issues.append(f"{non_empty} non-empty lines > {MAX_LINES}")
        if wide:
            issues.append("lines wider than %d: %s" % (MAX_COLUMNS, ", ".join(f"{k} ({w})" for k, w in wide)))
        if issues:
            first = lines[0][:50] if lines else ""
            problems.append(f"code cell {number} ({first!r}): " + "; ".join(issues))
    return problems


def test_there_are_chapters_to_check():
    assert len(CHAPTERS) >= 8


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_are_short_and_narrow(chapter):
    problems = cell_problems(chapter)
    assert not problems, f"{chapter.name}:\n" + "\n".join(problems)


def test_the_check_finds_long_and_wide_cells(tmp_path):
    """The check itself can fail: a cell of 26 lines and one 89 columns wide are both reported."""
    header = (ROOT / "book" / "00_introduction.md").read_text().split("---", 2)
    body = "\n```{code-cell} ipython3\n" + "x = 1\n" * 26 + "```\n\n```{code-cell} ipython3\n"
    body += "y = " + "1" * (MAX_COLUMNS - 3) + "\n```\n\n```{code-cell} ipython3\nz = 1\n\n\nw = 2\n```\n"
    path = tmp_path / "99_probe.md"
    path.write_text("---" + header[1] + "---\n" + body)
    problems = cell_problems(path)
    assert len(problems) == 2
    assert "26 non-empty lines" in problems[0] and "wider than 88: 1 (89)" in problems[1]
