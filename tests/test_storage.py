"""Tests of aigfd_lite.storage: one environment variable decides where long-lived artifacts live."""
from pathlib import Path

import pytest

from aigfd_lite import storage


def test_default_place_without_the_store(monkeypatch, tmp_path):
    monkeypatch.delenv("AIGFD_STORE", raising=False)
    assert storage.store_root() is None
    assert storage.store_path("checkpoints", "run1", default=tmp_path / "_build") == tmp_path / "_build" / "run1"
    with pytest.raises(ValueError, match="AIGFD_STORE"):
        storage.store_path("checkpoints")
    assert "not set" in storage.describe()


def test_store_variable_moves_every_kind(monkeypatch, tmp_path):
    monkeypatch.setenv("AIGFD_STORE", str(tmp_path / "drive"))
    for kind in storage.KINDS:
        assert storage.store_path(kind, default="/ignored") == tmp_path / "drive" / kind
    made = storage.store_path("results", "05_detector.json", create=True)
    assert made == tmp_path / "drive" / "results" / "05_detector.json" and made.parent.is_dir()
    assert storage.store_path("features", "run", create=True).is_dir()
    assert str(tmp_path / "drive") in storage.describe()


def test_bad_values_are_errors(monkeypatch):
    monkeypatch.setenv("AIGFD_STORE", "relative/folder")
    with pytest.raises(ValueError, match="absolute"):
        storage.store_root()
    monkeypatch.setenv("AIGFD_STORE", "  ")
    assert storage.store_root() is None
    with pytest.raises(ValueError, match="unknown artifact kind"):
        storage.store_path("photos", default=Path("/tmp"))


def test_checkpoints_follow_the_store(monkeypatch, tmp_path):
    from aigfd_lite.train.runs import checkpoint_dir

    monkeypatch.setenv("AIGFD_STORE", str(tmp_path / "drive"))
    assert checkpoint_dir("full", "ours") == tmp_path / "drive" / "checkpoints" / "full" / "ours"
    monkeypatch.delenv("AIGFD_STORE")
    assert checkpoint_dir("lite", "ours").parts[-3:] == ("checkpoints", "lite", "ours")


def _interrupted(tmp: str) -> None:
    Path(tmp).write_bytes(b"half of it")
    raise KeyboardInterrupt  # Ctrl-C (or a kill) in the middle of the write


def test_interrupted_atomic_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path):
    path = tmp_path / "data.json"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        storage.atomic_write(path, _interrupted)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["data.json"]
    with pytest.raises(KeyboardInterrupt):
        storage.atomic_write(tmp_path / "new" / "x.bin", _interrupted, mkdir=True)
    assert list((tmp_path / "new").iterdir()) == []


def test_pending_file_is_reserved_first_and_replaces_only_on_commit(tmp_path):
    path = tmp_path / "rows.txt"
    with storage.pending_file(path) as pending:
        assert Path(pending.path).parent == tmp_path and Path(pending.path).exists() and not path.exists()
        Path(pending.path).write_text("rows")
    assert not path.exists() and list(tmp_path.iterdir()) == []  # left without a commit: discarded
    with storage.pending_file(path) as pending:
        Path(pending.path).write_text("rows")
        pending.commit()
    assert path.read_text() == "rows" and list(tmp_path.iterdir()) == [path]
    assert path.stat().st_mode & 0o777 == 0o644
    with pytest.raises(OSError):
        storage.pending_file(tmp_path / "missing" / "rows.txt")  # an unwritable place fails before the work
