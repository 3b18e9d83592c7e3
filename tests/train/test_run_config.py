"""Tests of aigfd_lite.train.run_config: one declaration per setting from the profile table to each job's config,
one resolver of ``device`` and of ``accumulation_steps="auto"``."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch

from aigfd_lite import resolve
from aigfd_lite.blades import BladesConfig
from aigfd_lite.blades.training import BLADES_SETTINGS
from aigfd_lite.profiles import DeviceSetting, Profile
from aigfd_lite.train import RunConfig, TrainConfig, with_resolved_accumulation
from aigfd_lite.train.run_config import PROFILE_NAMES

CONFIGS = (Profile, RunConfig, TrainConfig, BladesConfig)


def declared(cls: type) -> dict[str, object]:
    """The settings ``cls`` declares itself (inherited ones left out), by their run-config name, with defaults."""
    own = cls.__dict__.get("__annotations__", {})
    names = {profile_name: name for name, profile_name in PROFILE_NAMES.items()} if issubclass(cls, Profile) else {}
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in own:
            default = f.default_factory() if f.default is dataclasses.MISSING and \
                f.default_factory is not dataclasses.MISSING else f.default
            out[names.get(f.name, f.name)] = default
    return out


def clashes(configs: tuple[type, ...]) -> dict[str, dict[str, object]]:
    """Every setting declared by more than one of ``configs`` with more than one default: name -> class -> default."""
    seen: dict[str, dict[str, object]] = {}
    for cls in configs:
        for name, default in declared(cls).items():
            seen.setdefault(name, {})[cls.__name__] = default
    return {name: by_class for name, by_class in seen.items()
            if len(by_class) > 1 and len({repr(d) for d in by_class.values()}) > 1}


def test_no_setting_is_declared_twice_with_two_defaults():
    assert clashes(CONFIGS) == {}


def test_a_job_config_declares_only_its_own_settings():
    shared = set(declared(RunConfig))
    for job in (TrainConfig, BladesConfig):
        assert not shared & set(declared(job)), job.__name__  # a shared setting is RunConfig's alone
    assert {"profile", "device", "batch_size", "ranking_variant"} <= shared


def test_the_check_finds_a_setting_declared_twice():
    @dataclass(frozen=True)
    class Diverging(RunConfig):  # BLADES' batch, declared again as a default instead of a job setting
        batch_size: int = 48

    assert clashes((RunConfig, Diverging)) == {"batch_size": {"RunConfig": 256, "Diverging": 48}}

    @dataclass(frozen=True)
    class CodeProfile(Profile):  # a profile default that diverges through the rename (thurstone -> ranking_variant)
        thurstone: str = "code"

    assert clashes((CodeProfile, RunConfig)) == {"ranking_variant": {"CodeProfile": "code", "RunConfig": "paper"}}
    assert clashes((RunConfig, Diverging, TrainConfig)).keys() == {"batch_size"}


def test_job_settings_name_known_settings_and_keep_blades_values():
    known = {f.name for f in dataclasses.fields(BladesConfig)}
    for table in BLADES_SETTINGS.values():
        assert set(table) <= known
    for name in ("full", "lite"):
        cfg = resolve(name, thurstone="paper")
        assert BladesConfig.from_profile(cfg).ranking_variant == "code"  # BLADES' code, whatever chapter 4 uses
        assert TrainConfig.from_profile(resolve(name, thurstone="code")).ranking_variant == "code"  # the rename
    assert BladesConfig.from_profile(resolve("full")).batch_size == 48
    assert BladesConfig.from_profile(resolve("lite"), batch_size=8).batch_size == 8  # overrides come last


def test_one_device_resolver_for_profiles_and_run_configs(monkeypatch):
    assert Profile.resolved_device is RunConfig.resolved_device is DeviceSetting.resolved_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve("full").resolved_device() == TrainConfig().resolved_device() == "cpu"
    assert TrainConfig(device="cuda:1").resolved_device() == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert BladesConfig().resolved_device() == resolve("full").resolved_device() == "cuda"


def test_accumulation_auto_resolves_in_one_place():
    tcfg = TrainConfig(accumulation_steps="auto", batch_size=8)
    assert with_resolved_accumulation(tcfg, "cpu", 1).accumulation_steps == 1  # no GPU: nothing to fit
    assert with_resolved_accumulation(TrainConfig(accumulation_steps=2, batch_size=8), torch.device("cpu"),
                                      1).accumulation_steps == 2
    with pytest.raises(ValueError, match="dividing"):
        with_resolved_accumulation(TrainConfig(accumulation_steps=3, batch_size=8), "cpu", 1)
