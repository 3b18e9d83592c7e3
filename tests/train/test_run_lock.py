"""Tests of aigfd_lite.train.run_lock: one trainer per run folder; a killed holder never blocks the rerun."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aigfd_lite.train.run_lock import RunInUseError, RunLock, hold_run_lock
from conftest import ROOT

HOLDER = "import sys; from aigfd_lite.train.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); print('held', " \
         "flush=True); sys.stdin.read()"


def hold_in_subprocess(run_dir: Path) -> subprocess.Popen:
    """A second process holding ``run_dir``'s lock until its stdin closes (or it is killed)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == "held"  # blocks until the lock is taken: no sleeping, no timing
    return holder


def test_a_second_trainer_is_refused_naming_the_holder_and_a_killed_holder_blocks_nothing(tmp_path):
    run_dir = tmp_path / "run"
    holder = hold_in_subprocess(run_dir)
    try:
        with pytest.raises(RunInUseError, match=rf"{run_dir} is in use by another trainer, pid {holder.pid}\b"):
            RunLock(run_dir).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding it: no cleanup runs
        holder.wait()
    assert (run_dir / ".lock").is_file()  # the file stays; the lock went with the process
    with RunLock(run_dir) as lock:
        assert (run_dir / ".lock").read_text() == str(os.getpid())
        with pytest.raises(RunInUseError, match="this process"):  # a second holder in one process is refused too
            RunLock(run_dir).acquire()
    with hold_run_lock(run_dir):  # released on leaving the block: taken again at once
        pass
    assert lock._fd is None


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(KeyError):
        with hold_run_lock(tmp_path):
            raise KeyError("boom")
    RunLock(tmp_path).acquire().release()


def test_a_non_main_rank_takes_no_lock(tmp_path):
    holder = hold_in_subprocess(tmp_path)
    try:
        with hold_run_lock(tmp_path, main=False):  # under torchrun only rank 0 writes (and locks) the folder
            pass
        with pytest.raises(RunInUseError):
            with hold_run_lock(tmp_path, main=True):
                pass
    finally:
        holder.stdin.close()  # a clean exit releases it too
        holder.wait()
    RunLock(tmp_path).acquire().release()


def test_a_filesystem_without_locks_trains_unlocked_with_a_warning(tmp_path, monkeypatch):
    import errno

    from aigfd_lite.train import run_lock

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(run_lock.fcntl, "flock", no_locks)
    with pytest.warns(RuntimeWarning, match="without file locks"):
        with hold_run_lock(tmp_path):
            pass

    def broken(fd, operation):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(run_lock.fcntl, "flock", broken)
    with pytest.raises(OSError, match="I/O error"):  # any other failure is not hidden
        RunLock(tmp_path).acquire()
