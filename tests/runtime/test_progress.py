"""Tests of aigfd_lite.runtime.progress: a text bar in a terminal, nothing (no warning, no output) in a notebook without
ipywidgets."""
from __future__ import annotations

import warnings

from tqdm import tqdm as text_tqdm

from aigfd_lite.runtime import progress


def test_a_terminal_gets_tqdms_text_bar(monkeypatch, capsys):
    monkeypatch.setattr(progress, "in_notebook", lambda: False)
    bar = progress.progress_bar(range(3), desc="work")
    assert type(bar) is text_tqdm and not bar.disable
    assert list(bar) == [0, 1, 2]
    assert "work" in capsys.readouterr().err


def test_a_notebook_without_ipywidgets_gets_no_bar_and_no_warning(monkeypatch, capsys):
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(progress, "widgets_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a TqdmWarning would fail here
        bar = progress.progress_bar(range(3), desc="work")
        assert bar.disable and list(bar) == [0, 1, 2]
        with progress.progress_bar(total=5, desc="manual") as manual:
            manual.update(5)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_plain_python_is_not_a_notebook():
    assert progress.in_notebook() is False
