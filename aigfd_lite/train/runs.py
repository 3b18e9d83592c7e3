"""A training run's storage and identity: run folders, the data a run names, stale runs, RNG states.

Taught in chapter 4 (``book/04_pretraining.md``); used by the resumable loop (:mod:`aigfd_lite.train.resumable`) of
pretraining and BLADES. The settings themselves are :mod:`aigfd_lite.train.run_config`'s (:class:`TrainConfig`,
imported here too). A run's identity is its config minus
:data:`RUNTIME_FIELDS` (how it executes, not what it computes), with the data named by its identity
(:func:`data_identity`: the FDF index's hash, or the lite corpus's key) and never by the spelling of its path;
settings added after a checkpoint was written compare as their defaults, so older runs stay valid. Only rank 0
reads or writes a run folder; the others receive what it read (:func:`aigfd_lite.runtime.distributed.broadcast_object`), so
several nodes need no shared filesystem.
"""
from __future__ import annotations

import dataclasses
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import load_checkpoint
from ..runtime import broadcast_object, epoch_order
from ..results import build_dir
from .run_config import STORED_BEFORE, TrainConfig
from .run_lock import RunLock
from ..profiles import resolve
from ..faces import corpus_key
from ..camera import SIMULATOR_VERSION
from ..fdf import FDFLayout
from ..storage import store_path

#: Fields that change how a run executes but not what it computes: a resumed run may differ in these.
#: ``world_size`` is recorded (how many processes trained) but not compared: the global batch and the BatchNorm
#: statistics (``batchnorm="sync"``) are those of one process, so a run may resume on another number of GPUs.
RUNTIME_FIELDS = ("device", "num_workers", "stop_after_steps", "amp", "max_steps", "world_size")


def checkpoint_dir(profile: str, run_name: str) -> Path:
    """``$AIGFD_STORE/checkpoints/<profile>/<run>`` when that is set (e.g. on Google Drive, so a Colab run survives
    the session), else ``_build/checkpoints/<profile>/<run>``."""
    return store_path("checkpoints", profile, run_name, default=build_dir() / "checkpoints")


class EpochSampler(torch.utils.data.Sampler[int]):
    """A seeded permutation of the items for one epoch, starting at ``start`` (to resume mid-epoch)."""

    def __init__(self, n: int, seed: int, epoch: int, start: int = 0) -> None:
        self.n, self.start = n, start
        self.order = epoch_order(n, seed, epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order[self.start:])

    def __len__(self) -> int:
        return self.n - self.start


def data_identity(cfg: Any) -> str:
    """What a run's training data *is*, whatever its path is called: ``"fdf:<hash>"``, the FDF index's hash
    (:attr:`aigfd_lite.fdf.FDFLayout.data_hash`: names, photo ids, tags, boxes and the index's settings) when
    ``cfg.data_root`` is set, else ``"lite-corpus:<key>+camera:<v>"``, the lite corpus's key
    (:func:`aigfd_lite.faces.corpus_key`: every corpus setting and source version) and the camera simulator's
    :data:`~aigfd_lite.camera.SIMULATOR_VERSION` (its renderings are part of what a lite run sees). ``cfg`` is a
    :class:`~aigfd_lite.profiles.Profile` (the corpus's settings live there). The same folder reached through a trailing slash or a symlink gives the same identity.
    None when ``data_root`` holds no training data (e.g. only the test sets, beside a finished run's checkpoint)."""
    if getattr(cfg, "data_root", None):
        try:
            layout = FDFLayout(cfg.data_root, real_fraction=cfg.real_fraction, seed=cfg.seed, progress=False)
        except FileNotFoundError as err:
            print(f"training data not found ({err}): a stored run with the same settings is used unchecked")
            return None
        return f"fdf:{layout.data_hash}"
    return f"lite-corpus:{corpus_key(cfg)}+camera:{SIMULATOR_VERSION}"


def with_data_identity(cfg: Any, run_cfg: Any, main: bool = True) -> Any:
    """``run_cfg`` (a :class:`TrainConfig` or BLADES config) with ``data_id`` set from profile ``cfg`` and the run's
    ``data_root``, computed on the main process and sent to the others; unchanged if already set."""
    if run_cfg.data_id is not None:
        return run_cfg
    source = data_source(cfg, run_cfg)
    return dataclasses.replace(run_cfg, data_id=broadcast_object(data_identity(source) if main else None))


def data_source(cfg: Any, run_cfg: Any) -> Any:
    """The one resolved profile a run's data is built from *and* named by (:func:`data_identity`): profile ``cfg``
    with the run's ``data_root``; without a profile (``cfg`` None), ``run_cfg.profile`` with its defaults.
    :func:`aigfd_lite.train.train` builds the corpus from the same object :func:`with_data_identity` names."""
    if cfg is None:
        cfg = resolve(run_cfg.profile)
    return dataclasses.replace(cfg, data_root=run_cfg.data_root) if dataclasses.is_dataclass(cfg) else cfg


def config_difference(stored: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings in which two runs differ (runtime fields ignored; a setting missing from either side counts
    as its default, so checkpoints written before a setting existed stay valid). When both sides carry a data
    identity (``data_id``) it decides and ``data_root`` is not compared; a full run stored before data identities
    existed is compared by its ``data_root`` as it was then (a lite one is stale: the camera simulator that rendered
    its faces may have changed since); when only the stored run has one (the data is not at hand now, so nothing
    could be trained), neither is compared."""
    defaults = {**TrainConfig().to_json(), **STORED_BEFORE}  # what a setting a stored run predates meant
    a, b = {**defaults, **stored}, {**defaults, **current}
    if a.get("data_id"):
        ignored = {"data_root"} if b.get("data_id") else {"data_root", "data_id"}
    elif str(b.get("data_id") or "").startswith("lite-corpus:"):
        ignored = set()  # a lite run stored without an identity saw older renderings; it retrains in minutes
    else:
        ignored = {"data_id"}
    ignored |= set(RUNTIME_FIELDS)
    keys = (set(a) | set(b)) - ignored
    return {k: (a.get(k), b.get(k)) for k in sorted(keys) if a.get(k) != b.get(k)}


def move_aside_if_changed(run_dir: Path, run_cfg: Any) -> None:
    """Move a run stored in ``run_dir`` with other settings than ``run_cfg`` (a finished run's ``final.pt``, else a
    partial run's ``last.pt``) to ``<run>.stale-<time>``, never deleted, holding the folder's lock so that it is
    never moved from under a trainer still writing it (:class:`aigfd_lite.train.run_lock.RunInUseError`)."""
    for name in ("final.pt", "last.pt"):
        if (run_dir / name).is_file():
            diff = config_difference(load_checkpoint(run_dir / name, ("config",))["config"], run_cfg.to_json())
            if diff:
                stale = run_dir.with_name(f"{run_dir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
                print(f"settings changed {diff}: moving {run_dir} to {stale}")
                with RunLock(run_dir):
                    shutil.move(str(run_dir), stale)
            return


def rng_states() -> dict[str, Any]:
    """The global RNG states (numpy's as plain values: ``weights_only`` loads refuse numpy arrays)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch_rng": torch.get_rng_state(), "numpy_rng": [name, keys.tolist(), int(pos), int(has_gauss),
                                                                 float(cached)], "python_rng": random.getstate()}


def set_rng_states(ckpt: dict[str, Any]) -> None:
    torch.set_rng_state(ckpt["torch_rng"])
    name, keys, pos, has_gauss, cached = ckpt["numpy_rng"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate((ckpt["python_rng"][0], tuple(ckpt["python_rng"][1]), ckpt["python_rng"][2]))
