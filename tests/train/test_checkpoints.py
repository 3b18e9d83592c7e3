"""Tests of aigfd_lite.train.checkpoints: atomic writes through unique temporary files, damaged checkpoints and logs."""
from __future__ import annotations

import os

import pytest
import torch

from aigfd_lite.train import checkpoints
from aigfd_lite.train.checkpoints import DamagedCheckpointError, atomic_torch_save, load_checkpoint, read_log, write_log


class NotAPlainTensor:  # a weights-only load refuses to build it
    pass


def test_atomic_writes_use_a_temporary_file_of_their_own_and_leave_none(tmp_path, monkeypatch):
    used = []
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: used.append(f) or real_save(obj, f))
    for _ in range(2):  # two writers of one checkpoint (two processes, or one after the other)
        atomic_torch_save({"config": {}, "model": {"w": torch.ones(2)}}, tmp_path / "last.pt")
    assert len(set(used)) == 2 and all(os.path.dirname(f) == str(tmp_path) for f in used)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    write_log([{"step": 1, "loss": 2.0}], tmp_path / "log.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "log.csv"]
    assert oct((tmp_path / "last.pt").stat().st_mode & 0o777) == "0o644"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    atomic_torch_save({"config": {}, "model": {}}, tmp_path / "last.pt")

    def broken(obj, f):
        open(f, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"config": {}, "model": {}}, tmp_path / "last.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt") == {"config": {}, "model": {}}


def _damaged(kind: str, path):
    atomic_torch_save({"config": {"seed": 1}, "model": {"w": torch.arange(1000.0)}}, path)
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "random bytes":
        path.write_bytes(os.urandom(len(data)))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong keys":
        torch.save({"weights": {"w": torch.ones(1)}}, path)
    elif kind == "not a dict":
        torch.save(torch.ones(3), path)
    elif kind == "foreign object":
        torch.save({"config": {}, "model": NotAPlainTensor()}, path)


@pytest.mark.parametrize("kind", ["truncated", "random bytes", "empty", "wrong keys", "not a dict", "foreign object"])
def test_a_damaged_checkpoint_is_named_with_what_to_do_and_no_unsafe_advice(tmp_path, kind):
    path = tmp_path / "last.pt"
    _damaged(kind, path)
    before = path.read_bytes()
    with pytest.raises(DamagedCheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and "damaged" in message and "move it aside" in message and "restore" in message
    assert "weights_only" not in message.lower() and "weights only" not in message.lower()
    assert path.read_bytes() == before  # reported, never removed or rewritten
    assert isinstance(err.value, ValueError)  # the training commands turn it into exit status 2


def test_an_intact_checkpoint_loads_and_a_missing_one_is_not_called_damaged(tmp_path):
    atomic_torch_save({"config": {"seed": 1}, "model": {"w": torch.ones(2)}, "step": 3}, tmp_path / "a.pt")
    assert load_checkpoint(tmp_path / "a.pt", ("config", "step"))["step"] == 3
    with pytest.raises(DamagedCheckpointError, match=r"lacks the checkpoint entries \['optimizer'\]"):
        load_checkpoint(tmp_path / "a.pt", ("config", "optimizer"))
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pt")


def test_a_log_is_read_up_to_the_checkpoints_step(tmp_path):
    write_log([{"step": s, "loss": 1.0 / s} for s in range(1, 8)], tmp_path / "log.csv")
    assert list(read_log(tmp_path / "log.csv", up_to_step=5)["step"]) == [1, 2, 3, 4, 5]
    assert len(read_log(tmp_path / "log.csv")) == 7
    assert read_log(tmp_path / "absent.csv").empty


@pytest.mark.parametrize("content", [os.urandom(300), b"", b"\x00\xff garbage\n1,2\n3\n", b"loss,lr\n1.0,0.1\n",
                                     b"step,loss\n1,2.0\nabc,3.0\n"],
                         ids=["random bytes", "empty", "binary", "no step column", "text steps"])
def test_a_garbage_log_is_moved_aside_with_a_counted_warning(tmp_path, content):
    path = tmp_path / "log.csv"
    path.write_bytes(content)
    with pytest.warns(RuntimeWarning, match="could not be parsed") as caught:
        log = read_log(path, up_to_step=3)
    assert log.empty and not path.exists()
    [aside] = tmp_path.glob("log.csv.damaged-*")
    assert aside.read_bytes() == content  # every earlier row is kept there, byte for byte
    lines = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
    assert f"moved its {lines} line(s) to {aside}" in str(caught[0].message)


def test_two_damaged_logs_in_one_second_are_both_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints.time, "strftime", lambda fmt: "20250101-000000")
    for content in (b"first", b"second"):
        (tmp_path / "log.csv").write_bytes(content)
        with pytest.warns(RuntimeWarning):
            read_log(tmp_path / "log.csv")
    kept = sorted(tmp_path.iterdir())
    assert [p.name for p in kept] == ["log.csv.damaged-20250101-000000", "log.csv.damaged-20250101-000000-1"]
    assert [p.read_bytes() for p in kept] == [b"first", b"second"]
