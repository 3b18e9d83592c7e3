"""A pretraining run's settings and storage: :class:`TrainConfig`, run folders and atomic, resumable checkpoints.

Taught in chapter 4 (``book/04_pretraining.md``); the loop that uses them is :mod:`aigfd_lite.train`, which
re-exports :class:`TrainConfig` and :func:`checkpoint_dir`. A run's identity is its config minus
:data:`RUNTIME_FIELDS` (how it executes, not what it computes), with the data named by its identity
(:func:`data_identity`: the FDF index's hash, or the lite corpus's key) and never by the spelling of its path;
settings added after a checkpoint was written compare as their defaults, so older runs stay valid. Only rank 0
reads or writes a run folder; the others receive what it read (:func:`aigfd_lite.runtime.distributed.broadcast_object`), so
several nodes need no shared filesystem.
"""
from __future__ import annotations

import ast
import dataclasses
import numbers
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import load_checkpoint
from ..runtime import broadcast_object, epoch_order
from ..models import TASKS, check_tasks
from ..results import build_dir
from .run_lock import RunLock
from .run_settings import TRAIN_RULES, check_settings

#: Fields that change how a run executes but not what it computes: a resumed run may differ in these.
#: ``world_size`` is recorded (how many processes trained) but not compared: the global batch and the BatchNorm
#: statistics (``batchnorm="sync"``) are those of one process, so a run may resume on another number of GPUs.
RUNTIME_FIELDS = ("device", "num_workers", "stop_after_steps", "amp", "max_steps", "world_size")


class RunConfigJSON:
    """What every run configuration (pretraining, BLADES) shares: a JSON form and the device it runs on."""

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


def parse_set_options(items: Sequence[str], error: Callable[[str], Any]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options of a training command as overrides (values read as Python literals when they
    are one, else kept as text); ``error`` (the parser's) is called on a malformed item."""
    overrides = {}
    for item in items:
        if "=" not in item:
            error(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            overrides[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            overrides[key.strip()] = value.strip()
    return overrides


def float_pair(value: Any) -> Any:
    """``betas`` as a tuple of floats when it is a sequence of numbers; anything else is left for its rule."""
    if isinstance(value, (list, tuple)) and all(isinstance(b, numbers.Real) for b in value):
        return tuple(float(b) for b in value)
    return value


@dataclass(frozen=True)
class TrainConfig(RunConfigJSON):
    """Every setting of one pretraining run. Defaults are the full profile's: the paper's where it states them
    (lr, batch, epochs, input size), the published code's where it does not (betas, eps, weight decay, seed)."""

    profile: str = "full"
    data_root: str | None = None  # where the data is read from (not compared once data_id is set)
    data_id: str | None = None  # what the data is (data_identity): set by fetch_or_train
    seed: int = 42
    device: str = "auto"
    init: str = "random"  # "random", "imagenet", "exif-lan", "released" or a checkpoint path (models.build_model)
    backbone: str = "resnet50"  # or "mobilenet_v2" (lite: ImageNet weights offline); see models.BACKBONES
    tasks: tuple[str, ...] = TASKS  # ("exif",), ("manipulation",) or both
    input_size: int = 224
    batch_size: int = 256  # the global batch: split evenly over the processes of a torchrun
    # micro-batches per step, Eq. 6's pairs still over the whole batch (aigfd_lite.train.accumulation); "auto": the
    # fewest that fit the GPU (full profile), resolved when training starts. Changes BatchNorm's batches: compared.
    accumulation_steps: int | str = 1
    epochs: int = 20
    lr: float = 1e-5
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    num_workers: int = 8  # DataLoader workers per process
    max_train_items: int | None = None
    variants_per_kind: int | None = None  # None: every item manipulated afresh; k: a pool of k per face and kind
    checkpoint_every_steps: int = 500
    checkpoint_every_epochs: int = 1  # lite epochs take seconds: a 300 MB checkpoint each would dominate
    feature_dim: int = 768
    real_fraction: float = 0.5
    symmetric_resampling: bool = True
    simulate_camera: bool = True
    augment: str | None = None  # None: items as they are (the paper); "flip-shift": see aigfd_lite.pretext.augment (lite)
    # full profile: "on-the-fly" (the paper; aigfd_lite.pretext.fdf_items) or "precomputed" (the published
    # face_dataaug_neg files, which bring back the resampling shortcut chapter 3 removes)
    manipulations: str = "on-the-fly"
    # finds the 68 points the on-the-fly manipulations are placed with (fdf_landmarks; full profile: "fan"). The
    # default is the backend of every run written before this setting existed (lite's), so they stay valid.
    landmark_backend: str = "dlib"
    ranking_variant: str = "paper"  # Thurstone model: "paper" or "code" (reference notes, difference 1)
    manipulation_form: str = "fidelity"
    batchnorm: str = "sync"  # several processes: "sync" (global-batch statistics, as in one process) or "local"
    amp: bool = True  # mixed precision on CUDA (ignored on CPU): see distributed.choose_precision
    max_steps: int | None = None  # stop at this global step with a checkpoint (smoke runs); rerun to continue
    world_size: int = 1  # set by the trainer: the number of processes that trained (recorded, not compared)
    stop_after_steps: int | None = None  # test hook: SIGKILL this process after that many steps (a crash)

    def __post_init__(self) -> None:  # every field against its rule (aigfd_lite.train.run_settings): ValueError
        check_settings(dataclasses.asdict(self), TRAIN_RULES)

    @classmethod
    def from_profile(cls, cfg: Any, **overrides: Any) -> "TrainConfig":
        """The run configuration of a :class:`~aigfd_lite.profiles.Profile`; unknown override keys raise."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        values = {name: getattr(cfg, name) for name in known if hasattr(cfg, name)}
        values["profile"] = cfg.name
        if hasattr(cfg, "thurstone"):
            values["ranking_variant"] = cfg.thurstone
        values.update(overrides)
        tasks = values.get("tasks", TASKS)
        TRAIN_RULES["tasks"].check("tasks", (tasks,) if isinstance(tasks, str) else tasks)  # the rule's message
        values["tasks"] = check_tasks(tasks)
        values["betas"] = float_pair(values["betas"])
        return cls(**values)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        values.update(tasks=tuple(values.get("tasks", TASKS)), betas=tuple(values.get("betas", cls.betas)))
        return cls(**values)



def checkpoint_dir(profile: str, run_name: str) -> Path:
    """``$AIGFD_STORE/checkpoints/<profile>/<run>`` when that is set (e.g. on Google Drive, so a Colab run survives
    the session), else ``_build/checkpoints/<profile>/<run>``."""
    from ..storage import store_path

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
        from ..fdf import FDFLayout

        try:
            layout = FDFLayout(cfg.data_root, real_fraction=cfg.real_fraction, seed=cfg.seed, progress=False)
        except FileNotFoundError as err:
            print(f"training data not found ({err}): a stored run with the same settings is used unchecked")
            return None
        return f"fdf:{layout.data_hash}"
    from ..camera import SIMULATOR_VERSION
    from ..faces import corpus_key

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
        from ..profiles import resolve

        cfg = resolve(run_cfg.profile)
    return dataclasses.replace(cfg, data_root=run_cfg.data_root) if dataclasses.is_dataclass(cfg) else cfg


def config_difference(stored: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings in which two runs differ (runtime fields ignored; a setting missing from either side counts
    as its default, so checkpoints written before a setting existed stay valid). When both sides carry a data
    identity (``data_id``) it decides and ``data_root`` is not compared; a full run stored before data identities
    existed is compared by its ``data_root`` as it was then (a lite one is stale: the camera simulator that rendered
    its faces may have changed since); when only the stored run has one (the data is not at hand now, so nothing
    could be trained), neither is compared."""
    defaults = TrainConfig().to_json()
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
