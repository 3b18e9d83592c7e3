import json
import math

import numpy as np
import pytest
import torch

from aigfd_lite import results


@pytest.fixture()
def build(monkeypatch, tmp_path):
    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))
    return tmp_path


def test_save_and_load_round_trip(build):
    returned = results.save_results("99_demo", "lite", {"acc": np.float32(0.5), "arr": np.arange(3),
                                                        "t": torch.tensor(2.0), "nan": math.nan})
    assert returned is None  # a notebook's last cell shows no PosixPath
    assert results.results_path("99_demo") == build / "results" / "99_demo.json"
    data = results.load_results("99_demo")
    assert data["profile"] == "lite" and data["notebook"] == "99_demo"
    assert data["metrics"] == {"acc": 0.5, "arr": [0, 1, 2], "t": 2.0, "nan": None}
    assert not list((build / "results").glob(".*.tmp"))


def test_missing_results_name_the_notebook(build):
    with pytest.raises(FileNotFoundError, match="notebooks/42_nothing.ipynb"):
        results.load_results("42_nothing")


def test_failed_write_leaves_no_partial_file(build):
    with pytest.raises(TypeError):
        results.write_json_atomic(build / "x.json", {"bad": object()})
    assert not (build / "x.json").exists() and not list(build.glob(".*.tmp"))


def test_repo_root_found_from_a_subfolder():
    root = results.repo_root()
    assert root is not None and (root / "_toc.yml").is_file()
    assert results.repo_root(root / "notebooks") == root


def test_headline_is_saved_beside_the_metrics(build):
    results.save_results("99_demo", "lite", {"x": 1}, headline={"mean AUC": np.float64(0.75), "n": 3, "note": "ok"})
    data = results.load_results("99_demo")
    # in the chapter's order, not the sorted order of the JSON's keys
    assert data["headline"] == [["mean AUC", 0.75], ["n", 3], ["note", "ok"]] and data["metrics"] == {"x": 1}
    results.save_results("99_other", "lite", {"x": 1})
    assert results.load_results("99_other")["headline"] == []


@pytest.mark.parametrize("headline", [{"table": {"a": 1}}, {"list": [1, 2]}, {"": 1}, {"flag": True}])
def test_headline_refuses_what_is_not_one_number(build, headline):
    with pytest.raises(ValueError, match="headline"):
        results.save_results("99_demo", "lite", {}, headline=headline)
    assert not (build / "results" / "99_demo.json").exists()


def test_baseline_transfer_reads_chapter_6_table(build):
    assert results.baseline_transfer() is None  # chapter 6 not run: no claim, no crash
    table1 = {
        "('measured, lite', 'ours (GMM, real faces only)')": {"('DCGAN', 'acc')": 0.8},
        "('measured, lite', 'binary baseline trained on DCGAN')": {
            "('DCGAN', 'acc')": 0.97, "('autoencoder', 'acc')": 0.545, "('mean', 'acc')": 0.75,
            "('DCGAN', 'ap')": 0.99},
    }
    results.save_results("06_results", "lite", {"table1": table1})
    table, profile = results.baseline_transfer()
    assert profile == "lite"
    assert table.loc["DCGAN"].to_dict() == {"DCGAN": 0.97, "autoencoder": 0.545}
    results.save_results("06_results", "lite", {"table1": {"('x', 'ours')": {"('DCGAN', 'acc')": 0.8}}})
    assert results.baseline_transfer() is None
    # chapter 6's current layout: metrics.table1_measured = {row: {generator: {metric: value}}}
    measured = {"ours (GMM, real faces only)": {"DCGAN": {"acc": 0.6}},
                "binary baseline trained on DCGAN": {"DCGAN": {"acc": 0.94, "ap": 0.99},
                                                     "Autoencoder": {"acc": 0.83}, "mean": {"acc": 0.88}}}
    results.save_results("06_results", "full", {"table1_measured": measured, "table1": {"acc": {}}})
    table, profile = results.baseline_transfer()
    assert profile == "full" and table.loc["DCGAN"].to_dict() == {"Autoencoder": 0.83, "DCGAN": 0.94}


def test_staged_folder_replaces_whole_or_leaves_the_old_folder(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    with results.staged_folder(folder, marker="old.txt") as staging:
        (staging / "new.txt").write_text("new")
        assert (folder / "old.txt").is_file()  # readers still see the old folder while it is written
    assert [p.name for p in folder.iterdir()] == ["new.txt"]
    with pytest.raises(RuntimeError):
        with results.staged_folder(folder, marker="new.txt") as staging:
            (staging / "half.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert [p.name for p in folder.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left behind


def test_staged_folder_refuses_a_folder_it_did_not_make(tmp_path, monkeypatch):
    """`aigfd bundle --out .` once emptied a working folder: a non-empty folder without the marker is refused."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("years of work")
    for target in (work, "."):
        monkeypatch.chdir(work)
        with pytest.raises(FileExistsError, match="not empty and is not a bundle.*bundle.json"):
            with results.staged_folder(target, marker="bundle.json", what="bundle") as staging:
                (staging / "bundle.json").write_text("{}")
        assert [p.name for p in work.iterdir()] == ["thesis.tex"]  # untouched, no staging folder left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    with pytest.raises(FileExistsError, match="a file"):
        with results.staged_folder(work / "thesis.tex", marker="bundle.json"):
            pass
    (work / "link").symlink_to(work)
    with pytest.raises(FileExistsError, match="symbolic link"):
        with results.staged_folder(work / "link", marker="bundle.json"):
            pass
    empty = tmp_path / "empty"
    empty.mkdir()
    with results.staged_folder(empty, marker="bundle.json") as staging:  # empty or absent: fine
        (staging / "bundle.json").write_text("{}")
    assert [p.name for p in empty.iterdir()] == ["bundle.json"]
    with results.staged_folder(empty, marker="bundle.json") as staging:  # one of ours: replaced whole
        (staging / "bundle.json").write_text("[]")
    assert (empty / "bundle.json").read_text() == "[]"


def test_staged_folder_checks_again_before_removing(tmp_path):
    """A file dropped into the folder while the block ran (a bundle is written for minutes) is not deleted."""
    folder = tmp_path / "out"
    with pytest.raises(FileExistsError):
        with results.staged_folder(folder, marker="bundle.json") as staging:
            folder.mkdir()
            (folder / "notes.txt").write_text("mine")
            (staging / "bundle.json").write_text("{}")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_save_results_keeps_a_copy_in_the_store(tmp_path, monkeypatch):
    """With AIGFD_STORE set (e.g. Google Drive on Colab) the results outlive the runtime; without it, no copy."""
    from aigfd_lite.results import save_results, stored_results_path

    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.delenv("AIGFD_STORE", raising=False)
    save_results("99_demo", "full", {"x": 1.0})
    assert not (tmp_path / "store").exists()
    monkeypatch.setenv("AIGFD_STORE", str(tmp_path / "store"))
    save_results("99_demo", "full", {"x": 2.0})
    local = tmp_path / "build" / "results" / "99_demo.json"
    copy = stored_results_path("99_demo", "full")
    assert copy == tmp_path / "store" / "results" / "full" / "99_demo.json"
    assert json.loads(copy.read_text()) == json.loads(local.read_text())
