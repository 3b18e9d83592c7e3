"""A run folder's files, written so that no crash, second process or damaged file loses work silently.

Taught in chapter 4 (``book/04_pretraining.md``, checkpoints); used by the resumable loop of pretraining and BLADES
(:mod:`aigfd_lite.train.resumable`):

* :func:`atomic_torch_save` and :func:`write_log` write a temporary file of a name unique to the call (``tempfile``
  in the same folder) and rename it over the target: a reader sees the old file or the new one, never half of one,
  and two writers never share a temporary file.
* :func:`load_checkpoint` loads with ``weights_only=True`` (no code in a checkpoint runs) and turns a truncated file,
  random bytes or a file without a checkpoint's keys into :class:`DamagedCheckpointError`, which names the file and
  what to do. It never suggests ``weights_only=False``: that would run whatever the file holds.
* :func:`read_log` reads a run's ``log.csv``; one that cannot be parsed is moved aside to
  ``log.csv.damaged-<time>`` (never overwritten) with a warning that counts its lines, and the run goes on with the
  checkpoint, which is what a resume needs; the new log then starts at the checkpoint's step.
"""
from __future__ import annotations

import itertools
import os
import pickle
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..storage import atomic_write


class DamagedCheckpointError(ValueError):
    """A checkpoint file that cannot be loaded as one; the message names the file and what to do."""


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file of its own, renamed into place."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def write_log(rows: list[dict[str, Any]], path: Path) -> None:
    """The per-step log as CSV, written atomically."""
    atomic_write(path, lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))


def _advice(path: Path) -> str:
    if path.name == "final.pt":
        return (f"move it aside (e.g. to {path.name}.damaged) or delete it and rerun: a finished run's final.pt is "
                "rebuilt from its last.pt when that is intact, else the run trains again; or restore it from a copy")
    return (f"move it aside (e.g. to {path.name}.damaged) or delete it and rerun to train the run again from the "
            "start, or restore it from a copy")


def load_checkpoint(path: Path, keys: Sequence[str] = ("config", "model")) -> dict[str, Any]:
    """The checkpoint at ``path`` (``weights_only=True``), which must be a dict holding ``keys``.

    Raises :class:`DamagedCheckpointError` for a file that is truncated, not a torch file, holds objects a
    weights-only load refuses, or lacks ``keys``; an unreadable file (permissions, a missing file) raises its
    ``OSError`` unchanged.
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except pickle.UnpicklingError:  # its text advises weights_only=False, which would run the file's code
        reason = "it holds objects that a safe (weights-only) load refuses"
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, KeyError, TypeError,
            AttributeError, IndexError) as err:
        first = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
        reason = "not a complete torch file" if "weights_only" in str(err).lower() else f"unreadable: {first}"
    else:
        missing = [k for k in keys if k not in ckpt] if isinstance(ckpt, dict) else []
        if not isinstance(ckpt, dict):
            reason = f"it holds a {type(ckpt).__name__}, not a checkpoint's dict"
        elif missing:
            reason = f"it lacks the checkpoint entries {missing}"
        elif "config" in ckpt and not isinstance(ckpt["config"], dict):
            reason = "its 'config' is not a mapping"
        else:
            return ckpt
    raise DamagedCheckpointError(f"checkpoint {path} is damaged ({reason}): {_advice(path)}")


def _steps_of(log: pd.DataFrame) -> pd.Series:
    steps = pd.to_numeric(log["step"], errors="raise")
    if steps.isna().any() or (steps != steps.round()).any():
        raise ValueError("its 'step' column holds values that are not step numbers")
    return steps.astype(int)


def read_log(path: Path, up_to_step: int | None = None) -> pd.DataFrame:
    """The run log at ``path`` (rows after ``up_to_step`` dropped: steps a resume will redo), or an empty table when
    there is none. A log that cannot be parsed is moved to ``<name>.damaged-<time>`` with a ``RuntimeWarning``."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame()
    try:
        log = pd.read_csv(path)
        if "step" not in log.columns:
            raise ValueError("it has no 'step' column")
        steps = _steps_of(log)
    except (ValueError, TypeError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        aside = stamp = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for k in itertools.count(1):  # a second damaged log within the same second must not replace the first
            if not aside.exists():
                break
            aside = stamp.with_name(f"{stamp.name}-{k}")
        with open(path, "rb") as fh:
            lines = sum(1 for _ in fh)
        os.replace(path, aside)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        warnings.warn(f"training log {path} could not be parsed ({reason}); moved its {lines} line(s) to {aside}; "
                      "the checkpoint is intact, so training goes on and the new log holds only the steps from here",
                      RuntimeWarning, stacklevel=2)
        return pd.DataFrame()
    if up_to_step is not None:
        log = log[steps <= up_to_step]
    return log.reset_index(drop=True)
