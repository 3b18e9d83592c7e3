"""One trainer per run folder: an exclusive, non-blocking ``flock`` on ``<run folder>/.lock`` (chapter 4).

Two trainers writing one run folder would overwrite each other's checkpoints, each resuming from the other's
steps. :class:`RunLock` is taken by the process that writes a run folder (rank 0 under torchrun) for as long as it
trains or moves the folder aside; a second one gets :class:`RunInUseError` naming the holder's pid. The operating
system drops a ``flock`` when its holder dies, however it dies (``SIGKILL`` included), so a lock left by a killed
trainer never blocks the rerun that resumes it; the ``.lock`` file itself stays and is harmless. On a system
without ``fcntl`` (Windows) no lock is taken; on a filesystem without locks (some network or FUSE mounts) none is
taken either, with a ``RuntimeWarning``.
"""
from __future__ import annotations

import contextlib
import errno
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from ..runtime import broadcast_object

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".lock"
# flock's answers on a filesystem that has no locks (some network and FUSE mounts): train unlocked, with a warning
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}


class RunInUseError(RuntimeError):
    """Another process holds the run folder's lock; the message names its pid."""


class RunLock:
    """``with RunLock(run_dir): ...``: hold ``run_dir``'s lock (the folder is created if needed)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        if fcntl is None or self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            mine = " (this process: release the earlier trainer first)" if holder == str(os.getpid()) else ""
            raise RunInUseError(f"run folder {self.path.parent} is in use by another trainer, pid {holder}{mine}: "
                                "wait for it to finish, stop it, or give this run another run name") from None
        except OSError as err:
            os.close(fd)
            if err.errno not in _NO_LOCKS:
                raise
            warnings.warn(f"{self.path.parent} is on a filesystem without file locks ({os.strerror(err.errno)}): "
                          "trained without a lock, so do not start a second trainer of this run", RuntimeWarning,
                          stacklevel=2)
            return self
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


@contextlib.contextmanager
def hold_run_lock(run_dir: str | Path, main: bool = True) -> Iterator[None]:
    """Hold ``run_dir``'s lock for a block. Under torchrun only the main process (``main``) takes it, since only it
    writes the folder; when it is refused, every rank raises :class:`RunInUseError` (none waits for the others)."""
    lock, refused = RunLock(run_dir), ""
    if main:
        try:
            lock.acquire()
        except RunInUseError as err:
            refused = str(err)
    refused = broadcast_object(refused)
    if refused:
        raise RunInUseError(refused)
    try:
        yield
    finally:
        lock.release()
