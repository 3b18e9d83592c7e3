"""The resumable training loop that pretraining (chapter 4) and BLADES (chapter 7) share.

Taught in chapter 4 (``book/04_pretraining.md``, checkpoints); used by :func:`aigfd_lite.train.train` and
:func:`aigfd_lite.blades.training.train_blades`. A job (:class:`Job`) says what is its own: the state a checkpoint
holds, its batches from a given step, one optimiser step and the columns of its log. :func:`run_resumable` does what
is the same for both:

* resume: ``last.pt`` is read (on rank 0 alone, then sent to the others), its settings compared with the run's (a
  run with other settings is refused), the job's state and the RNG states restored, the log cut at its step;
* checkpoints: the log, ``last.pt`` and ``state.json``, each written atomically, every ``checkpoint_every_epochs``
  epochs, every ``checkpoint_every_steps`` steps and at the last step of the call; ``final.pt`` (the weights alone)
  once the run is finished, also when a run finished before ``final.pt`` was written;
* the test hook ``stop_after_steps``: SIGKILL after that many steps of this call, as a crash would.

:func:`stored_run` is fetch-or-train's first half: a run stored with other settings is moved aside (never deleted),
a finished one with the same settings is returned instead of training it again.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..results import write_json_atomic
from ..runtime import barrier, broadcast_object
from ..runtime import progress_bar as tqdm
from .checkpoints import atomic_torch_save, load_checkpoint, read_log, write_log
from .runs import config_difference, move_aside_if_changed, rng_states, set_rng_states

#: What every resumable checkpoint (``last.pt``) holds besides the job's state dicts.
RESUME_KEYS = ("config", "step", "elapsed_seconds", "torch_rng", "numpy_rng", "python_rng")


@dataclass
class Job:
    """What one training job does; :func:`run_resumable` does the rest. ``batches(start, stop)`` yields the batches
    of global steps ``start`` to ``stop`` (it may prepare its data first); ``step(batch)`` makes one optimiser
    step (scheduler included) and returns its values for the log; ``row(step, values, seconds, elapsed)`` is the
    log's row of that step (``seconds``: since the previous step ended, loading included)."""

    name: str  # the progress bar's label
    steps_per_epoch: int
    total_steps: int
    state_names: tuple[str, ...]  # the entries of ``states()``, which a resumable checkpoint must hold
    states: Callable[[], dict[str, Any]]
    load_states: Callable[[dict[str, Any]], None]
    batches: Callable[[int, int], Iterator[Any]]
    step: Callable[[Any], dict[str, Any]]
    row: Callable[[int, dict[str, Any], float, float], dict[str, Any]]


def read_resume_point(run_dir: Path, run_cfg: Any,
                      state_names: tuple[str, ...]) -> tuple[dict[str, Any] | None, list[dict[str, Any]], str]:
    """``(checkpoint or None, log rows up to its step, error)`` of a run folder; ``error`` is non-empty when the
    folder holds a run with other settings. Called on rank 0 only."""
    ckpt_path, log_path = run_dir / "last.pt", run_dir / "log.csv"
    if not ckpt_path.is_file():
        return None, [], ""
    ckpt = load_checkpoint(ckpt_path, RESUME_KEYS[:1] + tuple(state_names) + RESUME_KEYS[1:])
    diff = config_difference(ckpt["config"], run_cfg.to_json())
    if diff:
        return None, [], f"{run_dir} holds a run with other settings {diff}: use another run_name"
    # rows logged after the checkpoint belong to steps that will be redone; a damaged log is moved aside
    return ckpt, read_log(log_path, up_to_step=int(ckpt["step"])).to_dict("records"), ""


def save_checkpoint(run_dir: Path, run_cfg: Any, *, step: int, steps_per_epoch: int, total_steps: int,
                    elapsed: float, rows: list[dict[str, Any]], states: dict[str, Any]) -> None:
    """Write log, ``last.pt`` (``states``: the job's state dicts, ``"model"`` among them) and ``state.json``, each
    atomically, and ``final.pt`` (the weights alone) once the run is finished."""
    finished = step == total_steps
    state = {"config": run_cfg.to_json(), "step": step, "epoch": step // steps_per_epoch,
             "step_in_epoch": step % steps_per_epoch, "steps_per_epoch": steps_per_epoch,
             "total_steps": total_steps, "elapsed_seconds": elapsed, "finished": finished}
    write_log(rows, run_dir / "log.csv")
    atomic_torch_save({**state, **states, **rng_states()}, run_dir / "last.pt")
    write_json_atomic(run_dir / "state.json", state)  # a human-readable mirror of the checkpoint's bookkeeping
    if finished and not (run_dir / "final.pt").is_file():
        atomic_torch_save({"config": run_cfg.to_json(), "model": states["model"], "step": step,
                           "elapsed_seconds": elapsed}, run_dir / "final.pt")


def checkpoint_due(step: int, steps_per_epoch: int, run_cfg: Any, stop_at: int) -> bool:
    """Whether step ``step`` ends with a checkpoint: an epoch end every ``checkpoint_every_epochs`` epochs, every
    ``checkpoint_every_steps`` steps, and the last step of this call."""
    epochs_done, in_epoch = divmod(step, steps_per_epoch)
    epoch_end = in_epoch == 0 and epochs_done % run_cfg.checkpoint_every_epochs == 0
    return epoch_end or step % run_cfg.checkpoint_every_steps == 0 or step == stop_at


def run_resumable(job: Job, run_cfg: Any, run_dir: Path, *, stop_at: int | None = None, main: bool = True,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Train ``job`` into ``run_dir`` from its last checkpoint up to global step ``stop_at`` (None: the end of the
    run); return the log rows. ``run_cfg`` (a :class:`~aigfd_lite.train.TrainConfig` or BLADES config) is what a
    stored run is compared with and what the cadence and ``stop_after_steps`` are read from. Only the ``main``
    process reads and writes ``run_dir``; every process returns after the last checkpoint is written."""
    stop_at = job.total_steps if stop_at is None else stop_at
    ckpt, rows, error = broadcast_object(read_resume_point(run_dir, run_cfg, job.state_names) if main else None)
    if error:
        raise ValueError(error)
    step, elapsed = 0, 0.0
    if ckpt is not None:  # resume exactly where the last checkpoint left off
        job.load_states(ckpt)
        set_rng_states(ckpt)
        step, elapsed = int(ckpt["step"]), float(ckpt["elapsed_seconds"])

    def save() -> None:
        if main:
            save_checkpoint(run_dir, run_cfg, step=step, steps_per_epoch=job.steps_per_epoch,
                            total_steps=job.total_steps, elapsed=elapsed, rows=rows, states=job.states())

    steps_here, batches = 0, job.batches(step, stop_at)
    with tqdm(total=job.total_steps, initial=step, desc=job.name, unit="step", disable=not progress,
              mininterval=10) as bar:  # few refreshes: notebooks store each one
        tick = time.perf_counter()
        for batch in batches:
            values = job.step(batch)
            step, steps_here = step + 1, steps_here + 1
            now = time.perf_counter()
            elapsed += now - tick
            rows.append(job.row(step, values, now - tick, elapsed))
            tick = now
            bar.update(1)
            bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", refresh=False)
            if checkpoint_due(step, job.steps_per_epoch, run_cfg, stop_at):
                save()
            if run_cfg.stop_after_steps is not None and steps_here >= run_cfg.stop_after_steps:
                os.kill(os.getpid(), signal.SIGKILL)  # simulate a crash: nothing after the last checkpoint
            if step >= stop_at:
                break
    batches.close()  # the job's loader (and its worker processes) end here
    if step == job.total_steps and not (run_dir / "final.pt").is_file():
        save()  # a run finished before final.pt was written
    barrier()  # the checkpoint of the last step exists before any process returns
    return rows


def stored_run(run_dir: Path, run_cfg: Any, main: bool = True) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """Fetch-or-train's fetch: move a run stored in ``run_dir`` with other settings than ``run_cfg`` aside
    (:func:`aigfd_lite.train.runs.move_aside_if_changed`), then return the finished run's ``(final.pt, log)``, or
    None when there is none. Under torchrun the ``main`` process alone looks at and moves the folder; the others
    wait at a barrier, then receive what it found."""
    finished = None
    if main:
        move_aside_if_changed(run_dir, run_cfg)
        if (run_dir / "final.pt").is_file():  # a damaged file: DamagedCheckpointError, naming it and what to do
            finished = (load_checkpoint(run_dir / "final.pt"), read_log(run_dir / "log.csv"))
    barrier()  # the folder has been moved (or not) before any process goes on
    return broadcast_object(finished)
