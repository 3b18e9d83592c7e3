"""Train/test overlap in a data copy (chapter 11's ``check``): the same image file on both sides of a split.

:func:`shared_files` finds the files of one list that are also in another: the same file (one path, a hard link or
a symbolic link to it) or a copy with the same bytes (sha256). Sizes are compared first and only files whose size
occurs on both sides are hashed, so checking FDF's ~1.5 M faces against the test sets reads little more than the
file sizes. A re-encoded or resized copy has other bytes and is not found here (chapter 3's
:func:`aigfd_lite.faces.duplicates.near_duplicates` compares pixels, for crops held in memory).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..fetch import sha256_of


def _identities(paths: Sequence[Path]) -> dict[Path, tuple[tuple[int, int], int]]:
    """Each readable path's (device, inode) and size; paths that cannot be examined are left out (counted
    unreadable by the check's decoding sample)."""
    out = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        out[path] = ((st.st_dev, st.st_ino), st.st_size)
    return out


def shared_files(first: Sequence[Path], second: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Pairs ``(a, b)``, ``a`` from ``first`` and ``b`` from ``second``, that are one file or hold the same bytes;
    each ``a`` at most once, in ``first``'s order."""
    theirs = _identities(second)
    by_inode = {inode: path for path, (inode, _) in theirs.items()}
    by_size: dict[int, list[Path]] = {}
    for path, (_, size) in theirs.items():
        by_size.setdefault(size, []).append(path)
    digests: dict[Path, str | None] = {}

    def digest(path: Path) -> str | None:
        if path not in digests:
            try:
                digests[path] = sha256_of(path)
            except OSError:
                digests[path] = None
        return digests[path]

    pairs = []
    for path, (inode, size) in _identities(first).items():
        if inode in by_inode:
            pairs.append((path, by_inode[inode]))
            continue
        mine = digest(path) if size in by_size else None
        match = next((other for other in by_size.get(size, []) if mine is not None and digest(other) == mine), None)
        if match is not None:
            pairs.append((path, match))
    return pairs
