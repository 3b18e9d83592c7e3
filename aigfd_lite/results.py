"""Measured numbers are data: each notebook writes them to ``_build/results/<notebook-stem>.json``.

Tests and the book's status page read them back from there (every chapter ends by calling :func:`save_results`).
"""
from __future__ import annotations

import ast
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .storage import atomic_write, store_path, store_root


def repo_root(start: Path | None = None) -> Path | None:
    """The repository root (the folder holding ``_toc.yml``), searched upwards from ``start`` or the cwd."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "aigfd_lite").is_dir():
            return folder
    return None


def build_dir() -> Path:
    """``$AIGFD_BUILD_DIR``, else ``<repo>/_build``, else ``./_build`` (e.g. on Colab)."""
    if os.environ.get("AIGFD_BUILD_DIR"):
        return Path(os.environ["AIGFD_BUILD_DIR"])
    root = repo_root()
    return (root or Path.cwd()) / "_build"


def results_path(stem: str) -> Path:
    return build_dir() / "results" / f"{stem}.json"


def plain_json(value: Any) -> Any:
    """Convert numpy / torch scalars and arrays to JSON values; NaN becomes None."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if hasattr(value, "tolist"):
        return plain_json(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """``data`` as sorted, indented JSON (NaN as null), written atomically (:func:`aigfd_lite.storage.atomic_write`;
    results are ordinary readable files, 0644)."""
    def dump(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(plain_json(data), fh, indent=2, sort_keys=True)

    atomic_write(path, dump, mkdir=True)


def _check_headline(headline: dict[str, Any]) -> list[list[Any]]:
    """Headline entries are one line each on the status page: a label and a number (or a short text).

    Stored as ``[label, value]`` pairs, so the page keeps the chapter's order (the JSON's keys are sorted).
    """
    checked = []
    for label, value in headline.items():
        value = plain_json(value)
        if not isinstance(label, str) or not label:
            raise ValueError(f"headline labels must be non-empty strings, got {label!r}")
        if isinstance(value, (dict, list, bool)):
            raise ValueError(f"headline {label!r}: expected a number or a short text, got {value!r}")
        checked.append([label, value])
    return checked


def check_replaceable(folder: str | Path, marker: str | None, what: str = "folder") -> Path:
    """``folder`` as an absolute path, if :func:`staged_folder` may replace it: absent, an empty folder, or a folder
    holding ``marker`` (the file a writer leaves in every folder it makes, e.g. ``bundle.json``). Anything else
    raises ``FileExistsError`` naming the folder, so a mistyped ``--out`` never deletes someone's files.
    ``marker=None``: the caller owns the location (a folder inside the data cache), any folder is replaced."""
    folder = Path(os.path.abspath(folder))  # "." has no name to stage beside; abspath keeps symlinks as they are
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise FileExistsError(f"{folder} is not a folder ({'a symbolic link' if folder.is_symlink() else 'a file'})"
                              f": refusing to replace it with a {what}; choose an empty or new folder")
    if marker is not None and folder.is_dir() and not (folder / marker).is_file() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty and is not a {what} (it holds no {marker}): refusing to "
                              "delete what is in it; choose an empty or new folder")
    return folder


@contextmanager
def staged_folder(folder: str | Path, *, marker: str | None, what: str = "folder") -> Iterator[Path]:
    """A fresh folder beside ``folder`` to write into; when the block ends without an error it replaces ``folder``
    whole (one rename), otherwise it is removed and ``folder`` is left as it was. Readers never see half a folder.

    ``folder`` must be replaceable (:func:`check_replaceable`: absent, empty or holding ``marker``), checked before
    the block runs and again before the old folder is removed; otherwise ``FileExistsError`` and nothing is touched.
    """
    folder = check_replaceable(folder, marker, what)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        yield staging
        check_replaceable(folder, marker, what)  # the block may have run for minutes
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_results(stem: str, profile: str, metrics: dict[str, Any], headline: dict[str, Any] | None = None) -> None:
    """Write one notebook's measured numbers, with the profile and the time they were measured, to
    :func:`results_path` (it returns nothing, so a notebook's last cell shows no path).

    ``headline`` holds the few numbers a reader should see first (label -> number); they are saved as ordered
    ``[label, value]`` pairs and the book's status page lists them with the profile they were measured in.
    Everything else goes in ``metrics``.
    """
    path = results_path(stem)
    record = {
        "notebook": stem,
        "profile": profile,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "headline": _check_headline(headline or {}),
        "metrics": metrics,
    }
    write_json_atomic(path, record)
    if store_root() is not None:  # a copy that outlives a Colab runtime: $AIGFD_STORE/results/<profile>/<stem>.json
        write_json_atomic(stored_results_path(stem, profile), record)


def stored_results_path(stem: str, profile: str) -> Path:
    """Where :func:`save_results` keeps its copy when ``$AIGFD_STORE`` is set (e.g. on Google Drive)."""
    return store_path("results", profile, f"{stem}.json")


def load_results(stem: str) -> dict[str, Any]:
    path = results_path(stem)
    if not path.is_file():
        raise FileNotFoundError(f"no results for {stem!r} at {path}: execute notebooks/{stem}.ipynb first")
    return json.loads(path.read_text())


def _key(text: str) -> tuple:
    """A row or column key of a saved table: tuples are stored as their repr, e.g. "('DCGAN', 'acc')"."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return (text,)
    return value if isinstance(value, tuple) else (value,)


def baseline_transfer(stem: str = "06_results", metric: str = "acc") -> tuple[Any, str] | None:
    """Chapter 6's binary baselines as a (trained on) x (tested on) table of ``metric``, and its profile.

    Read from the chapter's measured Table I, ``metrics.table1_measured`` (``{row: {generator: {metric: value}}}``,
    rows named "binary baseline trained on <generator>"), or from an older build's ``metrics.table1`` (flattened
    keys); ``None`` when chapter 6 has not run in this build or holds no such row (chapter 0 then points forward).
    """
    # imported here, not at the top: `import aigfd_lite.cli` stays free of pandas
    import pandas as pd

    try:
        data = load_results(stem)
    except FileNotFoundError:
        return None
    prefix, cells = "binary baseline trained on ", {}
    measured = data.get("metrics", {}).get("table1_measured") or {}
    for row, by_generator in measured.items():
        if str(row).startswith(prefix) and isinstance(by_generator, dict):
            for generator, values in by_generator.items():
                value = (values or {}).get(metric)
                if generator != "mean" and value is not None:
                    cells[(str(row).removeprefix(prefix), generator)] = float(value)
    for row, values in ({} if cells else data.get("metrics", {}).get("table1") or {}).items():
        name = str(_key(row)[-1])
        if not name.startswith("binary baseline trained on "):
            continue
        for column, value in values.items():
            generator, *rest = _key(column)
            if rest == [metric] and generator != "mean" and value is not None:
                cells[(name.removeprefix("binary baseline trained on "), generator)] = float(value)
    if not cells:
        return None
    table = pd.Series(cells).unstack()
    table.index.name, table.columns.name = "trained on", "tested on"
    return table, str(data.get("profile"))
