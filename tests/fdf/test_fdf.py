"""Tests for aigfd_lite.fdf: the official training-data layout, built in tmp_path, and the safe id-map loader."""
from __future__ import annotations

import json
import os
import pickle
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigfd_lite.fdf import layout as fdf
from aigfd_lite.fdf.layout import FDFLayout, UnsafePickleError, convert_id_map, load_id_map, safe_unpickle

GOOD = {"Aperture Value": "F5.6", "Exposure Time": "1/250 sec", "Focal Length": "50.0 mm", "ISO Speed Ratings": "100"}
# name -> (photo id or None if absent from the id map, JSON content: dict, str (raw text) or None (no file),
#          has manipulated files, normalised box)
FACES = {
    "100000": ("9000000001", {"EXIF": GOOD, "Camera": "Canon"}, True, [0.25, 0.25, 0.75, 0.75]),
    "100001": ("9000000002", {"EXIF": {"Aperture Value": "F28/10", "Exposure Time": "10/1300 sec",
                                       "Focal Length": "18.0 mm", "ISO Speed Ratings": "1600"}}, True,
               [0.0, 0.1, 0.5, 0.6]),
    "100002": ("9000000003", {"EXIF": {"Aperture Value": "F8", "Exposure Time": "0/0 sec",
                                       "Focal Length": "200.0 mm", "ISO Speed Ratings": "abc"}}, True,
               [0.3, 0.2, 0.7, 0.8]),
    "100003": ("9000000004", {"EXIF": {**GOOD, "Aperture Value": "F"}}, True, [0.25, 0.25, 0.75, 0.75]),
    "100004": ("9000000005", None, True, [0.25, 0.25, 0.75, 0.75]),
    "100005": ("9000000006", '{"EXIF": {"Aperture Value": "F5', True, [0.25, 0.25, 0.75, 0.75]),
    "100006": (None, {"EXIF": GOOD}, True, [0.25, 0.25, 0.75, 0.75]),
    "100007": ("9000000008", {"EXIF": {**GOOD, "Exposure Time": "2 sec"}}, False, [0.25, 0.25, 0.75, 0.75]),
    "100008": ("9000000009", {"Title": "no EXIF section"}, True, [0.25, 0.25, 0.75, 0.75]),
    "100009": ("9000000010", {"EXIF": {"Aperture Value": "Fx", "Exposure Time": "sec", "Focal Length": "mm",
                                       "ISO Speed Ratings": ""}}, True, [0.25, 0.25, 0.75, 0.75]),
}
EXPECTED_SKIPS = {"aperture_F": 1, "no_json": 1, "bad_json": 1, "no_photo_id": 1, "no_manipulated": 1,
                  "no_exif": 1, "no_tags": 1}


def coded_image(manipulation: int) -> np.ndarray:
    """R = 2x, G = 2y (so a crop's offset can be read back), B = 50 * manipulation (which file was loaded)."""
    yy, xx = np.mgrid[0:128, 0:128]
    return np.stack([2 * xx, 2 * yy, np.full_like(xx, 50 * manipulation)], axis=-1).astype(np.uint8)


def build_layout(root: Path) -> Path:
    """The official layout in miniature: SSL_training_data/{exif jsons, FDF/data/{pkl, negatives, fdf/...}}."""
    ssl = root / "SSL_training_data"
    exif_dir, data = ssl / fdf.EXIF_DIR, ssl / "FDF" / "data"
    images, negs, fdf_dir = data / "fdf" / "images" / "128", data / "face_dataaug_neg", data / "fdf"
    for d in (exif_dir, images, negs, fdf_dir / "bounding_box", fdf_dir / "landmarks"):
        d.mkdir(parents=True)
    id_map, meta = {}, {}
    for name, (photo_id, content, has_negs, box) in FACES.items():
        Image.fromarray(coded_image(0)).save(images / f"{name}.png")
        if has_negs:
            for k in range(4):
                Image.fromarray(coded_image(k + 1)).save(negs / f"{name}_{k}.png")
        if photo_id is not None:
            id_map[name] = photo_id
        if content is not None and photo_id is not None:
            text = content if isinstance(content, str) else json.dumps(content)
            (exif_dir / f"{photo_id}.json").write_text(text)
        meta[name] = {"bounding_box": box, "landmark": np.linspace(0.2, 0.8, 14).reshape(7, 2).tolist(),
                      "category": "training", "license": "Attribution-NonCommercial-ShareAlike License"}
    (data / "id_vs_fdfName.pkl").write_bytes(pickle.dumps(id_map, protocol=4))
    (fdf_dir / "fdf_metainfo.json").write_text(json.dumps(meta))
    np.save(fdf_dir / "bounding_box" / "128.npy", np.tile([32, 32, 96, 96], (len(FACES), 1)))
    np.save(fdf_dir / "landmarks" / "128.npy", np.zeros((len(FACES), 7, 2), np.float32))
    (root / "data").mkdir()  # the paper's test-set folder, a sibling of SSL_training_data
    return ssl


@pytest.fixture
def layout_root(tmp_path: Path) -> Path:
    build_layout(tmp_path)
    return tmp_path


# ------------------------------------------------------------------------------------------------ safe pickle
class Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"100000": Evil(marker)})
    with pytest.raises(UnsafePickleError, match="system"):
        safe_unpickle(payload)
    assert not marker.exists()
    pickle.loads(payload)  # the same bytes really do run code when unpickled blindly
    assert marker.exists()
    with pytest.raises(UnsafePickleError, match="eval"):
        safe_unpickle(b"cbuiltins\neval\n(S'1+1'\ntR.")  # protocol 0: builtins.eval("1+1")


def test_refused_pickle_is_not_converted(tmp_path):
    pkl = tmp_path / "id_vs_fdfName.pkl"
    pkl.write_bytes(pickle.dumps({"1": Evil(tmp_path / "x")}))
    with pytest.raises(UnsafePickleError):
        convert_id_map(pkl)
    assert not (tmp_path / "id_vs_fdfName.json").exists() and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(UnsafePickleError):
        load_id_map(pkl)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_dict_pickle_loads(tmp_path, protocol):
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(pickle.dumps({"100000": "9000000001", 100001: 9000000002}, protocol=protocol))
    assert load_id_map(pkl) == {"100000": "9000000001", "100001": "9000000002"}
    ordered = pickle.dumps(OrderedDict([("a", "1")]), protocol=protocol)
    assert safe_unpickle(ordered) == {"a": "1"}


def test_id_map_must_be_a_mapping_of_names(tmp_path):
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(pickle.dumps(["100000", "9000000001"]))
    with pytest.raises(ValueError, match="mapping"):
        load_id_map(pkl)
    pkl.write_bytes(pickle.dumps({"100000": ["a"]}))
    with pytest.raises(ValueError, match="100000"):
        load_id_map(pkl)
    with pytest.raises(FileNotFoundError):
        load_id_map(tmp_path / "absent.pkl")


def test_convert_writes_json_and_json_is_preferred(tmp_path):
    pkl = tmp_path / "id_vs_fdfName.pkl"
    pkl.write_bytes(pickle.dumps({"100000": "9000000001"}))
    out = convert_id_map(pkl)
    assert out == tmp_path / "id_vs_fdfName.json"
    assert json.loads(out.read_text()) == {"100000": "9000000001"}
    out.write_text(json.dumps({"100000": "from-json"}))
    assert load_id_map(pkl) == {"100000": "from-json"}  # the converted copy wins over the pickle
    custom = convert_id_map(pkl, tmp_path / "elsewhere.json")
    assert json.loads(custom.read_text()) == {"100000": "9000000001"}


# ------------------------------------------------------------------------------------------------ the layout
def test_layout_keeps_usable_faces_and_counts_skips(layout_root):
    layout = FDFLayout(layout_root)
    assert [f.name for f in layout.faces] == ["100000", "100001", "100002"]
    assert layout.skips == Counter(EXPECTED_SKIPS)
    assert sum(layout.skips.values()) + len(layout) == len(FACES)  # nothing lost silently
    assert layout.missing_tags == Counter({"exposure_time": 1, "iso": 1})
    np.testing.assert_allclose(layout.faces[0].tags, [5.6, 1 / 250, 50.0, 100.0])
    np.testing.assert_allclose(layout.faces[1].tags, [2.8, 10 / 1300, 18.0, 1600.0])
    np.testing.assert_allclose(layout.faces[2].tags, [8.0, np.nan, 200.0, np.nan])
    assert layout.faces[0].photo_id == "9000000001" and layout.faces[0].exif["ISO Speed Ratings"] == "100"


def test_layout_root_may_be_the_parent_the_folder_or_the_test_data_folder(layout_root):
    for root in (layout_root, layout_root / "SSL_training_data", layout_root / "data"):
        assert len(FDFLayout(root)) == 3
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FDFLayout(layout_root / "nowhere")
    (layout_root / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="SSL_training_data/FDF/data/fdf"):
        FDFLayout(layout_root / "empty" / "sub")


def test_faces_without_manipulated_files_can_be_kept(layout_root):
    layout = FDFLayout(layout_root, require_manipulated=False)
    assert [f.name for f in layout.faces] == ["100000", "100001", "100002", "100007"]
    assert layout.faces[3].tags[1] == 2.0  # "2 sec" is two seconds
    assert "no_manipulated" not in layout.skips
    index = 3
    assert all(layout[index].manipulation == 0 for _ in range(3))
    with pytest.raises(IndexError):
        layout.item(index, 1)


def test_items_are_cropped_like_the_paper_and_labelled(layout_root):
    layout = FDFLayout(layout_root)
    image, tags, manipulation = layout.item(0, 0)  # box [.25, .25, .75, .75]: side 1.3 * 64 = 83.2 about (64, 64)
    assert image.shape == (84, 84, 3) and image.dtype == np.uint8 and manipulation == 0
    assert (image[0, 0, 0], image[0, 0, 1]) == (2 * 22, 2 * 22)  # crop starts at x = y = round(64 - 41.6) = 22
    np.testing.assert_allclose(tags, [5.6, 0.004, 50.0, 100.0])
    border = layout.item(1, 0).image  # box [0, .1, .5, .6]: clipped at the left edge
    assert border.shape == (83, 74, 3) and (border[0, 0, 0], border[0, 0, 1]) == (0, 2 * 3)
    for m in range(1, 5):  # manipulated k + 1 is face_dataaug_neg/<name>_k.png, cropped with the real box
        item = layout.item(0, m)
        assert item.manipulation == m and item.image.shape == (84, 84, 3) and item.image[0, 0, 2] == 50 * m
    assert FDFLayout(layout_root, crop_scale=None).item(0).image.shape == (128, 128, 3)


def test_getitem_samples_real_and_manipulated_deterministically(layout_root):
    layout = FDFLayout(layout_root, seed=1)
    first = [layout[i].manipulation for i in range(3)]
    assert [layout[i].manipulation for i in range(3)] == first
    kinds = []
    for epoch in range(200):
        layout.set_epoch(epoch)
        kinds.append(layout[0].manipulation)
    counts = Counter(kinds)
    assert set(counts) == {0, 1, 2, 3, 4}
    assert 0.38 < counts[0] / 200 < 0.62  # 50 % real, the rest spread over the four manipulations
    with pytest.raises(IndexError):
        layout[3]
    with pytest.raises(ValueError):
        FDFLayout(layout_root, real_fraction=1.5)


def test_iter_items_counts_unreadable_files(layout_root):
    layout = FDFLayout(layout_root)
    assert len(list(layout.iter_items())) == 15
    negs = layout_root / "SSL_training_data" / "FDF" / "data" / "face_dataaug_neg"
    (negs / "100001_2.png").write_bytes((negs / "100001_2.png").read_bytes()[:100])  # truncated
    (negs / "100002_0.png").write_text("not an image")
    Image.fromarray(np.full((128, 128), 257 * 9, np.uint16)).save(negs / "100001_0.png")  # 16-bit grey: read
    items = list(layout.iter_items())
    assert len(items) == 13 and layout.skips["unreadable_image"] == 2
    with pytest.raises(ValueError, match="100002_0.png: not an image"):
        layout.item(2, 1)
    assert layout.item(1, 1).image.max() == 9


def test_boxes_landmarks_and_arrays(layout_root):
    layout = FDFLayout(layout_root)
    np.testing.assert_allclose(layout.box("100001"), [0.0, 0.1, 0.5, 0.6])
    assert layout.landmarks("100000").shape == (7, 2)
    assert layout.box("unknown") is None and layout.landmarks("unknown") is None
    arrays = layout.arrays()
    assert set(arrays) == {"bounding_box/128.npy", "landmarks/128.npy"}
    assert arrays["bounding_box/128.npy"].shape == (len(FACES), 4)
    fdf_dir = layout_root / "SSL_training_data" / "FDF" / "data" / "fdf"
    np.save(fdf_dir / "landmarks" / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        layout.arrays()  # object arrays would need unpickling: refused


def test_missing_box_is_a_counted_skip_and_metainfo_is_required_for_cropping(layout_root):
    meta_path = layout_root / "SSL_training_data" / "FDF" / "data" / "fdf" / "fdf_metainfo.json"
    meta = json.loads(meta_path.read_text())
    del meta["100001"]
    meta_path.write_text(json.dumps(meta))
    layout = FDFLayout(layout_root)
    assert [f.name for f in layout.faces] == ["100000", "100002"] and layout.skips["no_box"] == 1
    meta_path.unlink()
    with pytest.raises(FileNotFoundError, match="crop_scale=None"):
        FDFLayout(layout_root)
    assert len(FDFLayout(layout_root, crop_scale=None)) == 3


def test_crop_box_hand_computed():
    assert fdf.crop_box(np.array([0.25, 0.25, 0.75, 0.75]), 128, 128) == (22, 22, 106, 106)
    assert fdf.crop_box(np.array([0.6, 0.6, 1.0, 1.0]), 128, 128, scale=1.0) == (77, 77, 128, 128)
    with pytest.raises(ValueError):
        fdf.crop_box(np.array([0.5, 0.5, 0.5, 0.5]), 128, 128)


def test_read_rgb_converts_8_bit_modes(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    Image.fromarray(rgba).save(tmp_path / "a.png")
    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(tmp_path / "g.png")
    assert fdf.read_rgb(tmp_path / "a.png")[0, 0].tolist() == [8, 0, 0]  # alpha 10 over black
    assert fdf.read_rgb(tmp_path / "g.png")[0, 0].tolist() == [7, 7, 7]
