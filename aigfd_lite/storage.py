"""Where long-lived artifacts live: one environment variable moves them to Google Drive (full profile, chapter 11).

A Colab runtime forgets its disk when it stops. Setting ``AIGFD_STORE`` to a folder on a mounted Google Drive
(``/content/drive/MyDrive/aigfd``) makes every artifact worth keeping land there instead, one sub-folder per kind::

    $AIGFD_STORE/
      checkpoints/   training runs (chapter 4)
      features/      extracted features (chapters 5-6)
      results/       results files
      weights/       downloaded weights (aigfd_lite.models.weights)
      index/         the FDF index (aigfd_lite.fdf.index)

Without ``AIGFD_STORE`` each kind keeps its usual place (the caller's ``default``). :func:`store_path` is the one
function that decides; callers ask it instead of building paths themselves.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

PathLike = Union[str, Path]
#: The environment variable naming the persistent store (e.g. a folder on a mounted Google Drive).
STORE_ENV = "AIGFD_STORE"
#: The kinds of artifact the store holds, one sub-folder each.
KINDS: tuple[str, ...] = ("checkpoints", "features", "results", "weights", "index")


def store_root() -> Optional[Path]:
    """``$AIGFD_STORE`` as an absolute path, or None when unset or empty. A relative value is an error: it would
    silently depend on the working directory, which differs between a notebook and the command line."""
    value = os.environ.get(STORE_ENV, "").strip()
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_absolute():
        raise ValueError(f"{STORE_ENV}={value!r} must be an absolute path (e.g. /content/drive/MyDrive/aigfd)")
    return root


def store_path(kind: str, *parts: str, default: Optional[PathLike] = None, create: bool = False) -> Path:
    """The folder (or file, with ``parts``) for artifacts of ``kind``.

    ``$AIGFD_STORE/<kind>/<parts...>`` when the variable is set; otherwise ``default/<parts...>``. ``default`` is
    required when the store is unset (each caller knows its usual place). ``create`` makes the folder (for a file
    path: its parent).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; known: {KINDS}")
    root = store_root()
    if root is not None:
        base = root / kind
    elif default is not None:
        base = Path(default).expanduser()
    else:
        raise ValueError(f"no place for {kind!r}: set {STORE_ENV} or pass default=")
    path = base.joinpath(*parts)
    if create:
        (path.parent if parts and path.suffix else path).mkdir(parents=True, exist_ok=True)
    return path


def describe() -> str:
    """One line for a notebook's setup cell: where artifacts go this session."""
    root = store_root()
    if root is None:
        return f"{STORE_ENV} is not set: artifacts stay in their default places (lost when a Colab runtime stops)"
    return (f"{STORE_ENV}={root}: every artifact placed with aigfd_lite.storage.store_path is kept there "
            f"(downloaded weights, the FDF index, ...), one sub-folder per kind")


class PendingFile:
    """A temporary file beside ``path``, reserved before the work that fills it (:func:`pending_file`):
    :meth:`commit` renames it onto ``path``; :meth:`discard` (or leaving the ``with`` block without a commit, error or
    not) removes it, so ``path`` is either the old file or the complete new one, never a half-written one."""

    def __init__(self, path: PathLike, *, prefix: Optional[str] = None, mode: Optional[int] = 0o644,
                 mkdir: bool = False):
        self.target, self.mode = Path(path), mode
        if mkdir:
            self.target.parent.mkdir(parents=True, exist_ok=True)
        name = f".{self.target.name}." if prefix is None else prefix
        fd, self.path = tempfile.mkstemp(dir=self.target.parent, prefix=name, suffix=".tmp")
        os.close(fd)
        self.committed = False

    def commit(self) -> None:
        """Give the file its permissions (``mkstemp`` makes 0600; ``mode`` None keeps them) and rename it onto the
        target; on failure the temporary file is removed."""
        try:
            if self.mode is not None:
                os.chmod(self.path, self.mode)
            os.replace(self.path, self.target)
            self.committed = True
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        if not self.committed:
            Path(self.path).unlink(missing_ok=True)

    def __enter__(self) -> "PendingFile":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()


def pending_file(path: PathLike, *, prefix: Optional[str] = None, mode: Optional[int] = 0o644,
                 mkdir: bool = False) -> PendingFile:
    """Reserve the temporary file of a write-then-replace now (an unwritable folder fails before minutes of work,
    e.g. ``aigfd score --out``); fill ``.path``, then ``.commit()``. :func:`atomic_write` is the one-call form."""
    return PendingFile(path, prefix=prefix, mode=mode, mkdir=mkdir)


def atomic_write(path: PathLike, write: Callable[[str], None], *, prefix: Optional[str] = None,
                 mode: Optional[int] = 0o644, mkdir: bool = False) -> None:
    """The package's one write-then-replace: ``write(tmp)`` fills a temporary file beside ``path`` (named
    ``prefix`` + random + ``.tmp``; ``prefix`` defaults to ``.<name>.``), which is then renamed onto ``path``, so a
    crash or a second process never leaves a half-written file where a good one was; on any error the temporary
    file is removed. ``mode``: the file's permissions (``mkstemp`` makes 0600; None keeps them); ``mkdir``: create
    the folder first."""
    with pending_file(path, prefix=prefix, mode=mode, mkdir=mkdir) as pending:
        write(pending.path)
        pending.commit()
