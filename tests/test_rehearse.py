"""Tests of tools/rehearse.py: its settings reach every notebook and its synthetic checkpoint has the official layout."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import book
import rehearse
import torch

from aigfd_lite import resolve
from aigfd_lite.blades.training import BladesConfig
from aigfd_lite.models.network import ExifManipNet
from aigfd_lite.models.initialisation import load_mapped
from aigfd_lite.models.weights import read_state
from conftest import ROOT

STEMS = [s for s in book.toc_stems() if book.paired(s)]


def test_every_notebook_takes_the_settings_and_the_full_profile(tmp_path):
    (tmp_path / "x.pth").touch()  # resolve checks that an init path names a file
    params = rehearse.parameters({"root": tmp_path, "released": tmp_path / "x.pth"})
    declared = {s: book.declared_parameters(ROOT / "notebooks" / f"{s}.ipynb") for s in STEMS}
    assert all({"profile", "settings"} <= names for names in declared.values())
    assert set(params) <= set().union(*declared.values())  # book.execute would refuse the others
    cfg = resolve(params["profile"], settings=params["settings"])  # every tiny setting is a Profile field
    assert cfg.name == "full" and cfg.init == str(tmp_path / "x.pth") and cfg.landmark_backend == "dlib"
    assert cfg.ablation_epochs is None  # chapter 6 then reuses chapter 4's run, as in full
    fields = {f.name for f in dataclasses.fields(BladesConfig)}
    assert set(params["blades"]) <= fields and params["blades"]["text_tower"] == "learned"


def test_synthetic_checkpoint_maps_onto_the_network(tmp_path):
    path = rehearse.synthetic_released_checkpoint(tmp_path / "released.pth")
    state = read_state(path)
    assert any(k.startswith("model.visual.") for k in state) and "fc_face.weight" in state
    model = ExifManipNet()
    report = load_mapped(model, state, "synthetic")
    assert report.missing == [] and sorted(report.unexpected) == ["model.logit_scale", "model.positional_embedding"]
    torch.testing.assert_close(model.heads["manipulation"].weight, state["fc_face.weight"])
    assert rehearse.synthetic_released_checkpoint(path) == path  # built once


def test_phases_run_every_notebook_once_after_what_it_reads():
    order = [s for phase in rehearse.PHASES for lane in phase for s in lane]
    assert sorted(order) == sorted(STEMS)
    phase_of = {s: k for k, phase in enumerate(rehearse.PHASES) for lane in phase for s in lane}
    for later in ("05_detector", "06_results", "07_blades", "08_robustness", "09_score_your_images"):
        assert phase_of[later] > phase_of["04_pretraining"]  # chapter 4's run exists before they load it
    assert all(phase_of["10_reproducibility"] > phase_of[s] for s in STEMS if s != "10_reproducibility")
    lane_of = {s: lane for phase in rehearse.PHASES for lane in phase for s in lane}
    intro = lane_of["00_introduction"]
    assert "06_results" in intro and intro.index("06_results") < intro.index("00_introduction")
