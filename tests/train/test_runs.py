"""Tests of a run's identity (aigfd_lite.train.runs): the settings that change its result plus the data's identity, never
the spelling of a path (pretraining and BLADES), and chapter 6's reuse of chapter 4's run."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from test_fdf import build_layout

from aigfd_lite import resolve
from aigfd_lite.blades.training import BladesConfig
from aigfd_lite.camera.simulator import SIMULATOR_VERSION
from aigfd_lite.long_runs import confirm_training
from aigfd_lite.models.network import ExifManipNet
from aigfd_lite.train.runs import TrainConfig, config_difference, data_identity
from aigfd_lite.train.loop import fetch_or_train, with_data_identity
from conftest import ROOT


@pytest.fixture
def spellings(tmp_path, monkeypatch):
    """One FDF layout reached three ways, and a copy with other data (one face's box moved)."""
    monkeypatch.delenv("AIGFD_STORE", raising=False)
    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path / "build"))
    build_layout(tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "link")
    shutil.copytree(tmp_path / "a", tmp_path / "other", ignore=shutil.ignore_patterns(".aigfd_index"))
    meta = next((tmp_path / "other").rglob("fdf_metainfo.json"))
    boxes = json.loads(meta.read_text())
    first = next(iter(boxes))
    boxes[first]["bounding_box"] = [0.1, 0.1, 0.9, 0.9]  # another crop of one face: other data
    meta.write_text(json.dumps(boxes))
    return {"plain": str(tmp_path / "a"), "slash": f"{tmp_path / 'a'}/", "link": str(tmp_path / "link"),
            "other": str(tmp_path / "other")}


def test_data_identity_is_the_datas_not_the_paths(spellings):
    ids = {k: data_identity(resolve("full", data_root=v)) for k, v in spellings.items()}
    assert ids["plain"] == ids["slash"] == ids["link"] and ids["plain"].startswith("fdf:")
    assert ids["other"] != ids["plain"]


def test_lite_identity_is_the_corpus_key_and_the_simulator():
    from aigfd_lite.faces.corpus import build_corpus

    cfg = resolve("lite")
    key = build_corpus(cfg, progress=False).key
    assert data_identity(cfg) == f"lite-corpus:{key}+camera:{SIMULATOR_VERSION}"


def test_config_difference_compares_identities_and_keeps_older_runs_by_path():
    a = TrainConfig(data_root="/x", data_id="fdf:1").to_json()
    assert config_difference(a, TrainConfig(data_root="/x/", data_id="fdf:1").to_json()) == {}
    assert "data_id" in config_difference(a, TrainConfig(data_root="/x", data_id="fdf:2").to_json())
    unknown = TrainConfig(data_root="/elsewhere", data_id=None).to_json()  # the training data is not at hand now
    assert config_difference(a, unknown) == {}
    legacy = {k: v for k, v in a.items() if k != "data_id"}  # written before data identities existed
    assert config_difference(legacy, TrainConfig(data_root="/x", data_id="fdf:1").to_json()) == {}
    assert "data_root" in config_difference(legacy, TrainConfig(data_root="/y", data_id="fdf:1").to_json())


def test_a_lite_run_stored_without_an_identity_is_stale():
    """Such a run was rendered by an older camera simulator (data_identity names its version now)."""
    legacy = {k: v for k, v in TrainConfig().to_json().items() if k != "data_id"}
    lite = TrainConfig(data_id=f"lite-corpus:abc+camera:{SIMULATOR_VERSION}").to_json()
    assert "data_id" in config_difference(legacy, lite)
    older = TrainConfig(data_id="lite-corpus:abc+camera:1").to_json()
    assert "data_id" in config_difference(older, lite) and config_difference(lite, lite) == {}


def store_finished_run(cfg, name="ours", **overrides):
    from aigfd_lite.train.runs import checkpoint_dir

    import dataclasses

    from aigfd_lite.train.accumulation import resolve_accumulation

    tcfg = with_data_identity(cfg, TrainConfig.from_profile(cfg, **overrides))
    # as train() stores it: "auto" resolved for the device that trained (here the CPU: 1)
    tcfg = dataclasses.replace(tcfg, accumulation_steps=resolve_accumulation(tcfg, torch.device("cpu"), 1))
    run = checkpoint_dir(tcfg.profile, name)
    run.mkdir(parents=True)
    model = ExifManipNet(feature_dim=16, backbone=tcfg.backbone)
    torch.save({"config": tcfg.to_json(), "model": model.state_dict()}, run / "final.pt")
    return run


def test_a_run_is_reused_under_another_spelling_and_retrained_on_other_data(spellings, monkeypatch):
    small = dict(feature_dim=16, backbone="mobilenet_v2")
    run = store_finished_run(resolve("full", data_root=spellings["plain"]), **small)
    calls = []
    monkeypatch.setattr("aigfd_lite.train.loop.train", lambda *a, **k: calls.append(a) or (None, None))
    for spelling in ("slash", "link"):
        model, _ = fetch_or_train(resolve("full", data_root=spellings[spelling]), "ours", **small)
        assert calls == [] and isinstance(model, ExifManipNet), spelling
    fetch_or_train(resolve("full", data_root=spellings["other"]), "ours", **small)
    assert len(calls) == 1 and calls[0][0].data_id != torch.load(
        next(run.parent.glob("ours.stale-*")) / "final.pt", weights_only=True)["config"]["data_id"]


def test_a_finished_run_is_used_where_only_the_test_data_is(spellings, tmp_path, monkeypatch, capsys):
    small = dict(feature_dim=16, backbone="mobilenet_v2")
    store_finished_run(resolve("full", data_root=spellings["plain"]), **small)
    (tmp_path / "tests_only" / "data").mkdir(parents=True)  # no SSL_training_data here
    cfg = resolve("full", data_root=str(tmp_path / "tests_only"))
    assert data_identity(cfg) is None and "training data not found" in capsys.readouterr().out
    monkeypatch.setattr("aigfd_lite.train.loop.train", lambda *a, **k: pytest.fail("nothing can be trained here"))
    model, _ = fetch_or_train(cfg, "ours", **small)
    assert isinstance(model, ExifManipNet)
    assert confirm_training(cfg, {"ours": small}, start=False).iloc[0]["stored"] == "finished"


def test_blades_runs_share_the_identity(spellings):
    ids = {k: with_data_identity(resolve("full", data_root=v), BladesConfig.from_profile(
        resolve("full", data_root=v))) for k, v in spellings.items()}
    assert config_difference(ids["plain"].to_json(), ids["link"].to_json()) == {}
    assert "data_id" in config_difference(ids["plain"].to_json(), ids["other"].to_json())


def chapter_code(stem: str, start: str, end: str) -> str:
    """The lines of a chapter's code from the line starting with ``start`` up to the one starting with ``end``."""
    from pathlib import Path

    lines = (ROOT / "book" / f"{stem}.md").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = next(i for i, line in enumerate(lines) if i > first and line.startswith(end))
    return "\n".join(lines[first:last])


def test_chapter_6_both_tasks_is_chapter_4s_run_in_full(spellings):
    """Chapter 6's "both tasks" row asks for exactly chapter 4's run (same name, settings and data) in full, even
    with data_root spelled otherwise; lite trains a shorter run of its own."""
    cfg4 = resolve("full", data_root=spellings["plain"] or None)  # chapter 4's resolve cell
    ours = with_data_identity(cfg4, TrainConfig.from_profile(cfg4))
    for profile, data_root in (("full", spellings["slash"]), ("lite", "")):
        cfg = resolve(profile, data_root=data_root, ablation_epochs=None)  # chapter 6's
        scope = {"cfg": cfg}
        exec(chapter_code("06_results", "OURS, EXIF, MANIP", "models = {"), scope)
        run_name, tasks, overrides = scope["runs"][scope["PHI_PAPER"]]
        asked = with_data_identity(cfg, TrainConfig.from_profile(cfg, tasks=tasks, **overrides))
        if profile == "full":
            assert run_name == "ours" and config_difference(ours.to_json(), asked.to_json()) == {}
        else:
            assert run_name == "ablation_both" and asked.epochs < TrainConfig.from_profile(cfg).epochs
