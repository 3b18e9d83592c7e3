import json

import book  # tools/book.py
import pytest


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


def test_parse_value():
    assert book.parse_value("3") == 3 and book.parse_value("0.5") == 0.5 and book.parse_value("True") is True
    assert book.parse_value("full") == "full" and book.parse_value("/data/x") == "/data/x"


def test_unknown_parameter_is_refused():
    with pytest.raises(SystemExit, match="unknown parameter.*'nonsense'"):
        book.execute(["00_introduction"], {"nonsense": 1}, "python3")


def test_unknown_notebook_is_refused():
    with pytest.raises(SystemExit, match="unknown notebook"):
        book.execute(["99_missing"], {}, "python3")
