"""The values a training run's settings may take: one rule per setting, checked when a run configuration is made.

Taught in chapter 4 (``book/04_pretraining.md``, the configuration). :class:`aigfd_lite.train.run_config.TrainConfig` and
:class:`aigfd_lite.blades.BladesConfig` check every field against :data:`TRAIN_RULES` / :data:`BLADES_RULES` when
they are built, so a Python caller and the training commands (which turn the ``ValueError`` into exit status 2)
refuse ``lr="abc"``, ``batch_size=0`` or ``checkpoint_every_epochs=0`` before any data is read, with one line naming
the setting, its value and what is allowed. The rules are plain data (no torch import), so other tables of the same
settings (the profiles) can reuse them: ``TRAIN_RULES["lr"].check("lr", value)``. Whether a device exists is a
property of this machine, not of the run: :func:`check_device_available`, called when training starts.
"""
from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Choices defined elsewhere (tests/train/test_run_settings.py checks they agree): models.TASKS, models.BACKBONES,
# augment.AUGMENTATIONS, landmarks.BACKENDS, losses' Thurstone variants. Copied so this module imports no torch.
TASKS = ("exif", "manipulation")
BACKBONES = ("resnet50", "mobilenet_v2")
AUGMENTATIONS = (None, "flip-shift")
LANDMARK_BACKENDS = ("dlib", "fan")
RANKING_VARIANTS = ("paper", "code")
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)\Z")


@dataclass(frozen=True)
class Rule:
    """What one setting may be: ``allowed`` says it in words (for the error), ``test`` decides."""

    allowed: str
    test: Callable[[Any], bool]

    def check(self, name: str, value: Any) -> None:
        """Raise ``ValueError("name=value is not allowed: name must be ...")`` unless ``value`` passes."""
        try:
            ok = bool(self.test(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{name}={value!r} is not allowed: {name} must be {self.allowed}")


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def integer(low: int, optional: bool = False) -> Rule:
    words = f"an integer >= {low}" + (" or None" if optional else "")
    return Rule(words, lambda v: (optional and v is None) or (_is_int(v) and v >= low))


def number(low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = True) -> Rule:
    lo = f"> {low}" if low_open else f">= {low}"
    words = f"a number {lo}" if high is None else f"a number in {'(' if low_open else '['}{low}, {high}" \
        f"{')' if high_open else ']'}"

    def test(v: Any) -> bool:
        if not _is_number(v) or v < low or (low_open and v == low):
            return False
        return high is None or v < high or (not high_open and v == high)

    return Rule(words, test)


def one_of(*options: Any) -> Rule:
    return Rule("one of " + ", ".join(repr(o) for o in options), lambda v: any(v is o or (
        o is not None and type(v) is type(o) and v == o) for o in options))


BOOLEAN = Rule("True or False", lambda v: isinstance(v, bool))
TEXT = Rule("a non-empty text", lambda v: isinstance(v, str) and v != "")
OPTIONAL_TEXT = Rule("a non-empty text or None", lambda v: v is None or (isinstance(v, str) and v != ""))
OPTIONAL_PATH = Rule("a path or None", lambda v: v is None or (isinstance(v, (str, os.PathLike)) and str(v) != ""))
PATH_OR_NAME = Rule("a name or a checkpoint path", lambda v: isinstance(v, (str, os.PathLike)) and str(v) != "")
DEVICE = Rule("'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", lambda v: isinstance(v, str) and _DEVICE.match(v))
TASK_SET = Rule(f"a non-empty subset of {TASKS}", lambda v: not isinstance(v, str) and isinstance(v, Sequence)
                and len(v) > 0 and all(isinstance(t, str) and t in TASKS for t in v))
BETAS = Rule("two numbers in [0, 1), e.g. (0.9, 0.98)", lambda v: not isinstance(v, str) and isinstance(v, Sequence)
             and len(v) == 2 and all(number(0.0, 1.0).test(b) for b in v))
ACCUMULATION = Rule("'auto' or an integer >= 1",
                    lambda v: v == "auto" if isinstance(v, str) else (_is_int(v) and v >= 1))

#: The rule of every :class:`~aigfd_lite.train.run_config.TrainConfig` field (a new field without one fails a test).
TRAIN_RULES: dict[str, Rule] = {
    "profile": TEXT, "data_root": OPTIONAL_PATH, "data_id": OPTIONAL_TEXT, "seed": integer(0), "device": DEVICE,
    "init": PATH_OR_NAME, "backbone": one_of(*BACKBONES), "tasks": TASK_SET, "input_size": integer(1),
    "batch_size": integer(1),
    "accumulation_steps": ACCUMULATION, "epochs": integer(1), "lr": number(0.0, low_open=True),
    "weight_decay": number(0.0), "betas": BETAS, "eps": number(0.0, low_open=True), "num_workers": integer(0),
    "max_train_items": integer(1, optional=True), "variants_per_kind": integer(1, optional=True),
    "checkpoint_every_steps": integer(1), "checkpoint_every_epochs": integer(1), "feature_dim": integer(1),
    "real_fraction": number(0.0, 1.0, high_open=False), "symmetric_resampling": BOOLEAN, "simulate_camera": BOOLEAN,
    "augment": one_of(*AUGMENTATIONS), "manipulations": one_of("on-the-fly", "precomputed"),
    "landmark_backend": one_of(*LANDMARK_BACKENDS), "ranking_variant": one_of(*RANKING_VARIANTS),
    "manipulation_form": one_of("fidelity", "bce"), "batchnorm": one_of("sync", "local"), "amp": BOOLEAN,
    "max_steps": integer(1, optional=True), "world_size": integer(1), "stop_after_steps": integer(1, optional=True),
}

#: The rule of every :class:`~aigfd_lite.blades.BladesConfig` field: chapter 4's where the setting is shared.
BLADES_RULES: dict[str, Rule] = {
    **{k: TRAIN_RULES[k] for k in (
        "profile", "data_root", "data_id", "seed", "device", "init", "backbone", "input_size", "batch_size",
        "epochs", "lr", "weight_decay", "betas", "eps", "ranking_variant", "feature_dim", "num_workers",
        "max_train_items", "variants_per_kind", "real_fraction", "symmetric_resampling", "simulate_camera",
        "checkpoint_every_steps", "checkpoint_every_epochs", "stop_after_steps")},
    "bilevel": BOOLEAN, "outer_lr": number(0.0, low_open=True), "focal_gamma": number(0.0),
    "text_tower": one_of("clip", "learned"),
}


def check_settings(values: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Check every setting in ``values`` that has a rule; the first bad one raises ``ValueError``."""
    for name, value in values.items():
        if name in rules:
            rules[name].check(name, value)


def check_device_available(device: str) -> None:
    """Refuse a device this machine does not have (``device="cuda"`` without a CUDA GPU), before any data loads."""
    # this module's rules are read without torch; torch only to ask for a device
    import torch

    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= count:
            have = "no CUDA GPU is available" if count == 0 else f"this machine has {count} CUDA GPU(s)"
            raise ValueError(f"device={device!r} is not allowed here: {have}; use device='cpu' or 'auto' "
                             "(a GPU when there is one)")
    elif device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' is not allowed here: no Apple GPU is available; use device='cpu' or 'auto'")
