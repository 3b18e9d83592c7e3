"""Tests of aigfd_lite.train.run_settings: every training setting has a rule, bad values are refused with one clear line."""
from __future__ import annotations

import dataclasses

import pytest

from aigfd_lite import resolve
from aigfd_lite.blades.training import BladesConfig
from aigfd_lite.train.run_settings import (AUGMENTATIONS, BACKBONES, BLADES_RULES, LANDMARK_BACKENDS, RANKING_VARIANTS,
                                     TASKS, TRAIN_RULES, check_device_available)
from aigfd_lite.train.runs import TrainConfig


@pytest.mark.parametrize("config, rules", [(TrainConfig, TRAIN_RULES), (BladesConfig, BLADES_RULES)])
def test_every_field_has_a_rule(config, rules):
    assert {f.name for f in dataclasses.fields(config)} == set(rules)


def test_copied_choices_agree_with_the_modules_that_define_them():
    from aigfd_lite import losses
    from aigfd_lite.pretext import augment
    from aigfd_lite.faces import landmarks
    from aigfd_lite.models import network as models

    assert TASKS == models.TASKS and BACKBONES == models.BACKBONES
    assert AUGMENTATIONS == augment.AUGMENTATIONS and LANDMARK_BACKENDS == landmarks.BACKENDS
    assert RANKING_VARIANTS == losses._VARIANTS


def test_the_profiles_and_the_defaults_are_valid():
    for name in ("lite", "full"):
        TrainConfig.from_profile(resolve(name))
        BladesConfig.from_profile(resolve(name))
    TrainConfig(accumulation_steps="auto", max_steps=5, tasks=("exif",), betas=[0.5, 0.9], seed=0, device="cuda:1")


BAD_TRAINING = [("lr", "abc"), ("lr", 0.0), ("lr", float("nan")), ("epochs", "x"), ("epochs", -1), ("epochs", 0),
                ("epochs", 2.5), ("batch_size", 0), ("batch_size", True), ("input_size", 0),
                ("checkpoint_every_epochs", 0), ("checkpoint_every_steps", -5), ("device", "gpu"),
                ("betas", (0.9,)), ("betas", (0.9, 1.0)), ("accumulation_steps", 0), ("accumulation_steps", "two"),
                ("real_fraction", 1.5), ("augment", "flip"), ("backbone", "vgg"), ("batchnorm", "global"),
                ("amp", "yes"), ("max_steps", 0), ("num_workers", -1), ("seed", -1), ("tasks", ()),
                ("tasks", ("exif", "jpeg"))]


@pytest.mark.parametrize("name, value", BAD_TRAINING, ids=[f"{n}={v!r}" for n, v in BAD_TRAINING])
def test_a_bad_training_setting_is_refused_naming_it_its_value_and_what_is_allowed(name, value):
    with pytest.raises(ValueError) as err:
        TrainConfig(**{name: value})
    message = str(err.value)
    assert message.startswith(f"{name}={value!r} is not allowed: {name} must be ") and "\n" not in message
    with pytest.raises(ValueError, match=f"^{name}="):  # the profile path (Python callers, the CLI) too
        TrainConfig.from_profile(resolve("lite"), **{name: value})


@pytest.mark.parametrize("name, value", [("outer_lr", "abc"), ("focal_gamma", -1.0), ("text_tower", "bert"),
                                         ("checkpoint_every_epochs", 0), ("batch_size", 0), ("bilevel", 1)])
def test_a_bad_blades_setting_is_refused(name, value):
    with pytest.raises(ValueError, match=f"^{name}={value!r} is not allowed"):
        BladesConfig.from_profile(resolve("lite"), **{name: value})


def test_a_device_this_machine_lacks_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device='cuda' is not allowed here: no CUDA GPU is available"):
        check_device_available("cuda")
    check_device_available("cpu")
    check_device_available("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_device_available("cuda:1")
    with pytest.raises(ValueError, match="has 2 CUDA GPU"):
        check_device_available("cuda:2")
