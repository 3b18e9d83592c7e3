"""Tests of aigfd_lite.score.paths: folder walks yield images in order and account for every folder and file skipped."""
from __future__ import annotations

import errno
import os

from aigfd_lite.score.paths import Skipped, image_files


def _walked(tmp_path, paths):
    out = []
    for item in image_files(paths):
        if isinstance(item, Skipped):
            out.append((item.kind, item.path.relative_to(tmp_path).as_posix()))
        else:
            out.append(item.relative_to(tmp_path).as_posix())
    return out


def test_image_files_walks_folders_recursively(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    for rel in ("a.jpg", "b/x.PNG", "b/c/y.webp", "b/notes.txt", "b/z.jfif", "b/phone.HEIC"):
        (tmp_path / rel).write_bytes(b"x")
    found = _walked(tmp_path, [tmp_path, tmp_path / "b" / "notes.txt"])
    assert found == ["a.jpg", ("ignored", "b/notes.txt"), "b/phone.HEIC", "b/x.PNG", "b/z.jfif", "b/c/y.webp",
                     "b/notes.txt"]  # HEIC is walked (the reader says it is unsupported); a named file always


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path):
    (tmp_path / "photos" / "trip").mkdir(parents=True)
    (tmp_path / "photos" / "trip" / "a.jpg").write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.png").write_bytes(b"x")
    (tmp_path / "photos" / "linked").symlink_to(tmp_path / "elsewhere")  # followed: its files are read
    (tmp_path / "photos" / "trip" / "loop").symlink_to(tmp_path / "photos")  # back up: a loop
    found = _walked(tmp_path, [tmp_path / "photos"])
    assert found == ["photos/linked/b.png", ("repeat", "photos/trip/loop"), "photos/trip/a.jpg"]


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    """Root ignores file modes (CI runs as root): the permission error is made by os.scandir, as os.walk sees it."""
    for rel in ("a/1.jpg", "locked/2.jpg", "z/3.jpg"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    real_scandir = os.scandir

    def scandir(path="."):
        if isinstance(path, (str, os.PathLike)) and os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = _walked(tmp_path, [tmp_path])
    assert found == ["a/1.jpg", ("unreadable", "locked"), "z/3.jpg"]
    assert _walked(tmp_path, [tmp_path / "locked"]) == [("unreadable", "locked")]  # the top folder itself
    skip = next(i for i in image_files([tmp_path / "locked"]))
    assert "cannot be listed" in skip.reason and "Permission denied" in skip.reason


def test_a_path_that_cannot_be_examined_is_yielded_for_the_reader(tmp_path, monkeypatch):
    """Path.is_dir() raised PermissionError under a folder without execute permission: now the path is yielded."""
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if isinstance(path, (str, os.PathLike)) and "noexec" in os.fspath(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    assert list(image_files([tmp_path / "noexec" / "a.jpg"])) == [tmp_path / "noexec" / "a.jpg"]
