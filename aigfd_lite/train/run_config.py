"""A training run's configuration: one path from the profile table to each job's flat, typed dataclass.

Taught in chapter 4 (``book/04_pretraining.md``, the configuration). :class:`RunConfig` declares, once, every setting
that pretraining (:class:`TrainConfig`) and BLADES (:class:`aigfd_lite.blades.BladesConfig`) share; each job adds
only its own. Defaults are the full profile's, and a setting the :class:`~aigfd_lite.profiles.Profile` also holds
has the profile's default (``tests/test_run_config.py`` fails on a setting declared twice with two defaults).
:meth:`RunConfig.from_profile` is the one way from a profile to a job's config: the profile's values (``thurstone``
is called ``ranking_variant`` here: :data:`PROFILE_NAMES`), then the job's own values (:attr:`RunConfig.JOB_SETTINGS`,
e.g. BLADES' batch 48), then the caller's overrides, whose unknown keys are refused. Every value is checked against
its rule (:mod:`aigfd_lite.train.run_settings`) when the config is made.
"""
from __future__ import annotations

import ast
import dataclasses
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ..models import TASKS, check_tasks
from ..profiles import DeviceSetting
from .run_settings import TRAIN_RULES, Rule, check_settings

#: Profile settings that a run configuration holds under another name (run config name -> profile name).
PROFILE_NAMES = {"ranking_variant": "thurstone"}

#: What a setting missing from a stored run's config means, where that is not its default today: runs written before
#: ``landmark_backend`` existed placed their manipulations with dlib (lite's). See ``config_difference``.
STORED_BEFORE = {"landmark_backend": "dlib"}


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
class RunConfig(DeviceSetting):
    """The settings every training job shares, declared once; defaults are the full profile's: the paper's where it
    states them (lr, epochs, input size), the published code's where it does not (betas, eps, weight decay, seed)."""

    #: The words naming the job in errors ("unknown training setting(s)").
    JOB: ClassVar[str] = "training"
    #: Each setting's rule (:mod:`aigfd_lite.train.run_settings`).
    RULES: ClassVar[Mapping[str, Rule]] = TRAIN_RULES
    #: The job's own values over the profile's: ``"*"`` for every profile, then the profile's name.
    JOB_SETTINGS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    profile: str = "full"
    data_root: Optional[str] = None  # where the data is read from (not compared once data_id is set)
    data_id: Optional[str] = None  # what the data is (runs.data_identity): set by fetch_or_train(_blades)
    seed: int = 42
    device: str = "auto"
    init: str = "random"  # "random", "imagenet", "exif-lan", "released" or a checkpoint path (models.build_model)
    backbone: str = "resnet50"  # or "mobilenet_v2" (lite: ImageNet weights offline); see models.BACKBONES
    input_size: int = 224
    batch_size: int = 256  # the global batch: split evenly over the processes of a torchrun
    epochs: int = 20
    lr: float = 1e-5
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    num_workers: int = 8  # DataLoader workers per process
    max_train_items: Optional[int] = None
    variants_per_kind: Optional[int] = None  # None: every item manipulated afresh; k: a pool of k per face and kind
    checkpoint_every_steps: int = 500
    checkpoint_every_epochs: int = 1  # lite epochs take seconds: a 300 MB checkpoint each would dominate
    feature_dim: int = 768
    real_fraction: float = 0.5
    symmetric_resampling: bool = True
    simulate_camera: bool = True
    ranking_variant: str = "paper"  # Thurstone model: "paper" (Phi(x / sqrt 2)) or "code" (Phi(2x)); profile: thurstone
    stop_after_steps: Optional[int] = None  # test hook: SIGKILL this process after that many steps (a crash)

    def __post_init__(self) -> None:  # every field against its rule: ValueError
        check_settings(dataclasses.asdict(self), self.RULES)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_profile(cls, cfg: Any, **overrides: Any) -> "RunConfig":
        """The job's configuration of a :class:`~aigfd_lite.profiles.Profile` ``cfg``: its values, the job's own
        (:attr:`JOB_SETTINGS`), then ``overrides``; an unknown override key raises ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown {cls.JOB} setting(s) {unknown}; known: {sorted(known)}")
        values = {}
        for name in known:
            source = PROFILE_NAMES.get(name, name)
            source = source if hasattr(cfg, source) else name
            if hasattr(cfg, source):
                values[name] = getattr(cfg, source)
        values["profile"] = cfg.name
        values.update(cls.JOB_SETTINGS.get("*", {}))
        values.update(cls.JOB_SETTINGS.get(cfg.name, {}))
        values.update(overrides)
        values["betas"] = float_pair(values["betas"])
        return cls(**cls._checked(values))

    @classmethod
    def _checked(cls, values: dict[str, Any]) -> dict[str, Any]:
        """The values as the job stores them (a job with a setting in another form overrides this)."""
        return values


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """Every setting of one pretraining run: :class:`RunConfig`'s and chapter 4's own."""

    tasks: tuple[str, ...] = TASKS  # ("exif",), ("manipulation",) or both
    # micro-batches per step, Eq. 6's pairs still over the whole batch (aigfd_lite.train.accumulation); "auto": the
    # fewest that fit the GPU (full profile), resolved when training starts. Changes BatchNorm's batches: compared.
    accumulation_steps: int | str = 1
    augment: str | None = None  # None: items as they are (the paper); "flip-shift": see aigfd_lite.pretext.augment (lite)
    # full profile: "on-the-fly" (the paper; aigfd_lite.pretext.fdf_items) or "precomputed" (the published
    # face_dataaug_neg files, which bring back the resampling shortcut chapter 3 removes)
    manipulations: str = "on-the-fly"
    # finds the 68 points the on-the-fly manipulations are placed with (fdf_landmarks): the profile's default, the
    # paper's FAN (a stored run without this setting was placed with dlib: STORED_BEFORE)
    landmark_backend: str = "fan"
    manipulation_form: str = "fidelity"
    batchnorm: str = "sync"  # several processes: "sync" (global-batch statistics, as in one process) or "local"
    amp: bool = True  # mixed precision on CUDA (ignored on CPU): see distributed.choose_precision
    max_steps: int | None = None  # stop at this global step with a checkpoint (smoke runs); rerun to continue
    world_size: int = 1  # set by the trainer: the number of processes that trained (recorded, not compared)

    @classmethod
    def _checked(cls, values: dict[str, Any]) -> dict[str, Any]:
        tasks = values.get("tasks", TASKS)
        TRAIN_RULES["tasks"].check("tasks", (tasks,) if isinstance(tasks, str) else tasks)  # the rule's message
        return {**values, "tasks": check_tasks(tasks)}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> "TrainConfig":
        """A stored run's configuration (settings it predates: :data:`STORED_BEFORE`, else their defaults)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in {**STORED_BEFORE, **values}.items() if k in known}
        values.update(tasks=tuple(values.get("tasks", TASKS)), betas=tuple(values.get("betas", cls.betas)))
        return cls(**values)
