"""The files ``aigfd score`` is given (chapter 9): paths named on the command line and the image files of folders.

:func:`image_files` walks folders recursively, in sorted order, and accounts for everything it does not yield as a
file to read, so nothing is lost silently:

* a folder that cannot be listed (no permission, vanished) is a :class:`Skipped` with ``kind="unreadable"`` (the
  run reports it and exits 1);
* symbolic links to folders are followed, once: a link to a folder already walked (a loop, or a second way to the
  same folder) is a :class:`Skipped` with ``kind="repeat"``, so no file is read twice and no walk runs forever;
* files whose suffix is not an image's (:data:`~aigfd_lite.images.reader.IMAGE_SUFFIXES`, plus the photo formats the
  reader names as unsupported, e.g. HEIC) are a :class:`Skipped` with ``kind="ignored"``: counted, not read.

A path named directly is yielded whatever it is (a missing file, a FIFO, a file under a folder without permission):
:func:`aigfd_lite.images.reader.read_image` says what is wrong with it.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

from ..images import IMAGE_SUFFIXES, UNSUPPORTED_SUFFIXES

#: Suffixes a folder walk reads: the images, and the photo formats whose files get an "unsupported" row.
WALKED_SUFFIXES = (*IMAGE_SUFFIXES, *UNSUPPORTED_SUFFIXES)


@dataclass(frozen=True)
class Skipped:
    """Something a folder walk did not read, and why. ``kind``: "unreadable", "repeat" or "ignored"."""

    path: Path
    kind: str
    reason: str


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _walk(top: Path, suffixes: Sequence[str], seen: set[tuple[int, int]]) -> Iterator[Union[Path, Skipped]]:
    errors: list[OSError] = []
    for root, dirs, names in os.walk(top, onerror=errors.append, followlinks=True):
        while errors:  # os.walk reports a folder it cannot list here, before going on
            err = errors.pop(0)
            yield Skipped(Path(err.filename or root), "unreadable",
                          f"folder cannot be listed ({err.strerror or type(err).__name__})")
        dirs.sort()
        for name in list(dirs):
            folder = Path(root) / name
            identity = _identity(folder)
            if identity is not None and identity in seen:
                dirs.remove(name)
                yield Skipped(folder, "repeat", "symbolic link to a folder already walked (a loop, or the same "
                                                "folder twice): not walked again")
            elif identity is not None:
                seen.add(identity)
        for name in sorted(names):
            path = Path(root) / name
            if path.suffix.lower() in suffixes:
                yield path
            else:
                yield Skipped(path, "ignored", f"not an image file by its suffix ({path.suffix or 'none'})")
    for err in errors:  # the top folder itself (listing it failed before the first step)
        yield Skipped(Path(err.filename or top), "unreadable",
                      f"folder cannot be listed ({err.strerror or type(err).__name__})")


def image_files(paths: Iterable[str | Path], suffixes: Sequence[str] = WALKED_SUFFIXES
                ) -> Iterator[Union[Path, Skipped]]:
    """Files named in ``paths`` (yielded whatever they are, so the reader reports them) and, for folders, the image
    files inside them, recursively, in sorted order, with a :class:`Skipped` for everything else (module doc)."""
    seen: set[tuple[int, int]] = set()
    for item in paths:
        item = Path(item)
        identity = _identity(item)  # None: not a folder, or not even stat-able (the reader says why)
        if identity is None:
            yield item
        elif identity in seen:
            yield Skipped(item, "repeat", "a folder already walked: not walked again")
        else:
            seen.add(identity)
            yield from _walk(item, suffixes, seen)
