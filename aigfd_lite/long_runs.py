"""Before a long run: its estimated GPU time, and an explicit ``start_training = True`` to start it (chapters 4-9).

A full-profile chapter that finds no finished checkpoint would start hours of training the moment the reader runs
it. :func:`confirm_training` is the one line every chapter that may train calls first: for each run it would
fetch or train, it checks whether a finished run with the same settings (and the same data,
:func:`aigfd_lite.train.runs.data_identity`) is stored, estimates the GPU time of what is left, prints the table (one line
when every run is finished) and raises
:class:`LongRunNotStarted`, naming the parameter, when the total exceeds :data:`LONG_RUN_MINUTES` and the parameter is
not set. Lite runs (minutes) and finished runs never trip it.

The estimate is an assumption, not a measurement (no GPU here): the training images (faces x epochs, whole batches)
divided by :data:`ASSUMED_IMAGES_PER_S`, the order of magnitude of published ResNet-50 training benchmarks at 224 px
with mixed precision on a T4 (chapter 4's table), scaled by the pixels of the input size; a BLADES bi-level step also
sends a validation batch through (:data:`BILEVEL_COST`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Optional

import pandas as pd
import torch

from .faces import build_corpus
from .specs import parse_bool

#: Longer than this (estimated GPU minutes, all runs of one call together) needs the explicit parameter.
LONG_RUN_MINUTES = 10.0
#: Assumed training images per second on one T4 at 224 px with mixed precision, per backbone (not measured here).
ASSUMED_IMAGES_PER_S = {"resnet50": 250.0, "mobilenet_v2": 750.0}
#: Cost of a BLADES bi-level step relative to a plain one (a validation batch goes forward and backward too).
BILEVEL_COST = 2.0
#: The faces the paper pretrains on: 200,000 FDF faces with EXIF (Sec. III-A); chapter 4's time estimates use it.
PAPER_FDF_FACES = 200_000
#: Assumed ResNet-50 training images per second per GPU at 224 px with mixed precision (not measured here: the order
#: of magnitude of published benchmarks). The T4 rate is :data:`ASSUMED_IMAGES_PER_S`'s ResNet-50 rate.
ASSUMED_GPU_IMAGES_PER_S = {"T4": ASSUMED_IMAGES_PER_S["resnet50"], "A100": 1500.0}


def estimate_training_hours(images_per_s: float, *, n_faces: int = PAPER_FDF_FACES, epochs: int = 20,
                            n_gpus: int = 1, efficiency: float = 1.0) -> float:
    """Hours to train ``epochs`` passes over ``n_faces`` at ``images_per_s`` per GPU, on ``n_gpus`` GPUs with a
    data-parallel ``efficiency`` (chapter 4: an estimate from assumed rates, not a measurement)."""
    if images_per_s <= 0 or n_gpus < 1 or not 0 < efficiency <= 1:
        raise ValueError("images_per_s must be > 0, n_gpus >= 1 and efficiency in (0, 1]")
    return n_faces * epochs / (images_per_s * n_gpus * efficiency) / 3600


class LongRunNotStarted(RuntimeError):
    """A run longer than :data:`LONG_RUN_MINUTES` was not started: the message names the parameter that starts it."""


def estimate_gpu_minutes(n_items: int, run_cfg: Any) -> float:
    """Estimated T4 minutes to train ``run_cfg`` (a TrainConfig or BladesConfig) from scratch on ``n_items`` faces."""
    steps = (n_items // run_cfg.batch_size) * run_cfg.epochs
    if getattr(run_cfg, "max_steps", None) is not None:
        steps = min(steps, run_cfg.max_steps)
    per_s = ASSUMED_IMAGES_PER_S.get(run_cfg.backbone, ASSUMED_IMAGES_PER_S["resnet50"])
    rate = per_s * (224 / run_cfg.input_size) ** 2
    cost = BILEVEL_COST if getattr(run_cfg, "bilevel", False) else 1.0
    return steps * run_cfg.batch_size * cost / rate / 60


def stored_progress(run_dir: Path, run_cfg: Any) -> tuple[bool, float]:
    """``(finished, fraction done)`` of the run stored in ``run_dir`` if it has ``run_cfg``'s settings, else
    ``(False, 0.0)`` (absent, or other settings: it would be moved aside and trained afresh)."""
    # imported here, not at the top: `import aigfd_lite.long_runs` stays free of scipy, torchvision
    from .train import load_checkpoint
    from .train import config_difference

    for name in ("final.pt", "last.pt"):
        if (run_dir / name).is_file():
            ckpt = load_checkpoint(run_dir / name, ("config",))  # damaged: an error naming it and what to do
            if config_difference(ckpt["config"], run_cfg.to_json()):
                return False, 0.0
            if name == "final.pt":
                return True, 1.0
            total = ckpt.get("total_steps") or 0
            return False, (int(ckpt.get("step", 0)) / total if total else 0.0)
    return False, 0.0


def training_items(cfg: Any, run_cfg: Any) -> int:
    """The faces a run trains on: FDF's usable faces (``data_root`` set), else the lite corpus's training split,
    capped at ``max_train_items``."""
    if run_cfg.data_root:
        # imported here, not at the top: `import aigfd_lite.long_runs` stays free of scipy
        from .fdf import FDFLayout

        n = len(FDFLayout(run_cfg.data_root, real_fraction=run_cfg.real_fraction, seed=run_cfg.seed, progress=False))
    else:
        n = len(build_corpus(cfg, progress=False).subset("train"))
    cap = getattr(run_cfg, "max_train_items", None)
    return min(n, cap) if cap else n


def confirm_training(cfg: Any, runs: Optional[Mapping[str, Mapping[str, Any]]] = None, *, start: bool,
                     kind: str = "pretraining", parameter: str = "start_training") -> pd.DataFrame:
    """Print the estimated GPU time of every run in ``runs`` (run name -> the keyword arguments the chapter passes to
    ``fetch_or_train`` (``kind="pretraining"``, default ``{"ours": {}}``) or ``fetch_or_train_blades``
    (``kind="blades"``)) that is not finished yet; raise :class:`LongRunNotStarted` if they add up to more than
    :data:`LONG_RUN_MINUTES` and ``start`` is false. Returns the table."""
    # imported here, not at the top: `import aigfd_lite.long_runs` stays free of scipy, torchvision
    from .train import TrainConfig, checkpoint_dir
    from .train import with_data_identity

    start = parse_bool(parameter, start)  # papermill's -p passes `true` as text: a typo must not start hours
    runs = {"ours": {}} if runs is None else runs
    rows, n_items, identities = [], None, {}
    for name, kwargs in runs.items():
        kwargs = dict(kwargs)
        if kind == "blades":
            # imported here, not at the top: `import aigfd_lite.long_runs` stays free of scipy, sklearn, torchvision
            from .blades import BladesConfig

            run_cfg = BladesConfig.from_profile(cfg, bilevel=kwargs.pop("bilevel", True), **kwargs)
        elif kind == "pretraining":
            # imported here, not at the top: `import aigfd_lite.long_runs` stays free of scipy, torchvision
            from .train import with_resolved_accumulation

            run_cfg = TrainConfig.from_profile(cfg, **kwargs)
            # "auto" resolved for this machine's device, as fetch_or_train does before comparing with a stored run
            run_cfg = with_resolved_accumulation(run_cfg, run_cfg.resolved_device(), 1)
        else:
            raise ValueError(f"kind must be 'pretraining' or 'blades', got {kind!r}")
        known = identities.get(run_cfg.data_root)  # one identity per data folder, however many runs
        run_cfg = with_data_identity(cfg, run_cfg) if known is None else dataclasses.replace(run_cfg, data_id=known)
        identities[run_cfg.data_root] = run_cfg.data_id
        finished, done = stored_progress(checkpoint_dir(run_cfg.profile, name), run_cfg)
        if not finished and n_items is None:  # only what must be trained needs its data
            n_items = training_items(cfg, run_cfg)
        left = 0.0 if finished else estimate_gpu_minutes(n_items, run_cfg) * (1 - done)
        rows.append({"run": name, "stored": "finished" if finished else f"{done:.0%} done", "faces": n_items,
                     "epochs": run_cfg.epochs, "estimated T4 minutes left (assumed rate)": round(left, 1)})
    table = pd.DataFrame(rows)
    total = float(table["estimated T4 minutes left (assumed rate)"].sum()) if rows else 0.0
    if rows and (table["stored"] == "finished").all():  # nothing trains: one line, no table
        print(f"every run is already trained ({', '.join(table['run'])}): nothing to train")
        return table
    print(table.to_string(index=False))
    print(f"estimated GPU time to train what is missing: {total:.1f} min (an estimate, not a measurement)")
    if total > LONG_RUN_MINUTES and not start:
        raise LongRunNotStarted(
            f"training would take about {total:.0f} GPU minutes (more than {LONG_RUN_MINUTES:.0f}): set "
            f"`{parameter} = True` in the parameters cell (papermill: -p {parameter} True) to start it, or train "
            f"outside the notebook (python -m aigfd_lite.{'blades' if kind == 'blades' else 'train'} --profile "
            f"{cfg.name} ...) and rerun: a finished run is loaded, not retrained")
    return table
