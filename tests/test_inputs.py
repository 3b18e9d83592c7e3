"""Tests of aigfd_lite.inputs: what a chapter reads is checked in its config cell, before any expensive step."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from aigfd_lite import resolve
from aigfd_lite.inputs import (DownloadUnavailable, MissingDataError, check_fan, fan_urls, hub_checkpoints,
                               require)
from aigfd_lite.data.miniature import write_test_tree, write_training_tree
from aigfd_lite.evaluation.testsets import GENERATOR_FOLDERS
from conftest import ROOT



@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    write_training_tree(tmp_path, images, np.tile([5.6, 1 / 250, 50.0, 100.0], (6, 1)))
    fakes = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)  # other pictures: no train/test overlap
    write_test_tree(tmp_path, images, {f: fakes for f in GENERATOR_FOLDERS.values()}, n_train=4)
    return tmp_path


def test_the_full_profile_without_data_root_stops_with_one_message_that_says_where_to_read():
    title = (ROOT / "book" / "11_paper_data.md").read_text().split("\n# ", 1)[1].splitlines()[0]
    for needs in (("training",), ("test", "landmarks"), ("data_root",)):
        with pytest.raises(MissingDataError, match=r"^the full profile needs data_root: the folder") as err:
            resolve("full", needs=needs)
        assert f'"{title}" (book/11_paper_data.md)' in str(err.value) and "-p data_root" in str(err.value)


def test_chapters_that_read_no_paper_data_do_not_refuse():
    assert resolve("full", needs=()).data_root is None  # chapters 0 and 2
    assert resolve("full", landmark_backend="dlib", needs=("landmarks",)).name == "full"  # 3 and 10, offline
    assert resolve("lite", needs=("training", "test", "landmarks")).name == "lite"  # lite reads the lite data


def test_a_complete_folder_passes_and_a_broken_one_names_its_parts(tree, tmp_path_factory):
    assert resolve("full", data_root=str(tree), landmark_backend="dlib",
                   needs=("training", "test", "landmarks")).data_root == str(tree)
    shutil.rmtree(tree / "data" / GENERATOR_FOLDERS["SDXL"])
    resolve("full", data_root=str(tree), needs=("training",))  # the training side is still whole
    with pytest.raises(MissingDataError, match=r"lacks what this chapter reads: test: SDXL .*folder absent.*"
                                               r"python -m aigfd_lite.data check .*Getting the paper's data"):
        resolve("full", data_root=str(tree), needs=("test",))
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(MissingDataError, match=r"training: SSL_training_data"):
        resolve("lite", data_root=str(empty), needs=("training",))  # a data_root given in lite is checked too


def test_unknown_needs_are_a_programming_error():
    with pytest.raises(ValueError, match="unknown need"):
        require(resolve("lite"), ("trainig",))


@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    if "torch" in sys.modules:
        monkeypatch.setattr(sys.modules["torch"].hub, "_hub_dir", None)
    return hub_checkpoints()


def test_fans_download_is_named_before_it_is_tried_when_its_host_cannot_be_reached(no_hub, monkeypatch):
    assert no_hub.parent.parent.name == "torch"
    asked = []
    with pytest.raises(DownloadUnavailable, match=r"FAN's weights are not in .*hub/checkpoints and would be "
                                                  r"downloaded from https://.*s3fd.*offline set "
                                                  r"landmark_backend='dlib'"):
        check_fan(connect=lambda host: asked.append(host) or False)
    assert asked == ["www.adrianbulat.com"]
    check_fan(connect=lambda host: True)  # online: face-alignment downloads them itself
    monkeypatch.setattr("aigfd_lite.inputs.reachable", lambda host, port=443, timeout=2.0: False)
    with pytest.raises(DownloadUnavailable):  # through a chapter's config cell
        resolve("full", settings={"landmark_backend": "fan"}, needs=("landmarks",))
    resolve("full", settings={"landmark_backend": "dlib"}, needs=("landmarks",))


def test_cached_fan_weights_need_no_network(no_hub):
    no_hub.mkdir(parents=True)
    for url in fan_urls():
        (no_hub / url.rsplit("/", 1)[1]).touch()
    check_fan(connect=lambda host: pytest.fail("the weights are cached: nothing to download"))
