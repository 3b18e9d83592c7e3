"""Tests of aigfd_lite.fdf_index: the one-time index of the official layout, its cache and the data's identity."""
from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image
from test_fdf import EXPECTED_SKIPS, build_layout

from aigfd_lite import fdf, fdf_index
from aigfd_lite.fdf import FDFLayout
from aigfd_lite.fdf_index import FDFIndex


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.delenv("AIGFD_STORE", raising=False)
    build_layout(tmp_path / "a")
    return tmp_path / "a"


def index_files(root):
    return sorted((root / "SSL_training_data" / ".aigfd_index").glob("*.npz"))


def test_second_start_reads_the_index_instead_of_the_layout(root, monkeypatch):
    first = FDFLayout(root)
    assert len(index_files(root)) == 1
    monkeypatch.setattr(fdf_index, "scan", lambda *a, **k: pytest.fail("the layout was scanned again"))
    second = FDFLayout(root)
    assert [f.name for f in second.faces] == [f.name for f in first.faces] == ["100000", "100001", "100002"]
    assert second.skips == first.skips and sum(second.skips.values()) == sum(EXPECTED_SKIPS.values())
    np.testing.assert_array_equal(second.item(1, 2).image, first.item(1, 2).image)
    assert second.faces[0].exif["Exposure Time"] == "1/250 sec" and second.faces[-1].name == "100002"
    assert [f.name for f in second.faces[1:]] == ["100001", "100002"]


def test_index_holds_no_pickle_and_plain_dtypes(root):
    FDFLayout(root)
    path = index_files(root)[0]
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"header", *fdf_index.ARRAYS}
        assert all(data[k].dtype != object for k in data.files)
    with zipfile.ZipFile(path) as z:  # an .npz is a zip of .npy files
        assert all(n.endswith(".npy") for n in z.namelist())


def test_data_hash_is_the_datas_not_the_paths(root, tmp_path):
    shutil.copytree(root, tmp_path / "b", ignore=shutil.ignore_patterns(".aigfd_index"))
    a, b = FDFLayout(root), FDFLayout(tmp_path / "b" / "SSL_training_data")  # another spelling, another place
    assert a.data_hash == b.data_hash and len(a.data_hash) == 64
    assert FDFLayout(root, require_manipulated=False).data_hash != a.data_hash  # other settings, other data


def test_new_faces_invalidate_the_cache(root):
    before = FDFLayout(root)
    images = root / "SSL_training_data" / "FDF" / "data" / "fdf" / "images" / "128"
    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(images / "100010.png")  # no photo id: a counted skip
    after = FDFLayout(root)
    assert after.skips["no_photo_id"] == before.skips["no_photo_id"] + 1
    assert len(index_files(root)) == 2
    FDFLayout(root, rebuild_index=True)
    assert len(index_files(root)) == 2  # rebuilt in place


def test_damaged_index_is_rebuilt_and_in_memory_scan_writes_nothing(root, tmp_path, capsys):
    FDFLayout(root)
    path = index_files(root)[0]
    path.write_bytes(b"PK\x03\x04 damaged")
    assert len(FDFLayout(root)) == 3 and "rebuilding" in capsys.readouterr().out
    assert isinstance(FDFIndex.load(path), FDFIndex)
    build_layout(tmp_path / "c")
    assert len(FDFLayout(tmp_path / "c", index=False)) == 3
    assert not (tmp_path / "c" / "SSL_training_data" / ".aigfd_index").exists() or \
        not index_files(tmp_path / "c")


def test_store_variable_and_explicit_folder(root, tmp_path, monkeypatch):
    FDFLayout(root, index=tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere").glob("fdf-index-*.npz"))) == 1
    monkeypatch.setenv("AIGFD_STORE", str(tmp_path / "drive"))
    FDFLayout(root)
    assert len(list((tmp_path / "drive" / "index").glob("fdf-index-*.npz"))) == 1


def test_custom_lambda_parser_is_never_cached(root):
    layout = FDFLayout(root, parse_exif=lambda exif: _Tags())
    assert len(layout) == 0 and layout.skips["no_tags"] > 0 and not index_files(root)


class _Tags:
    aperture = exposure_time = focal_length = iso = None


def test_public_names_stay_importable_from_fdf():
    for name in ("FDFLayout", "FDFItem", "FDFFace", "UnsafePickleError", "RestrictedUnpickler", "safe_unpickle",
                 "convert_id_map", "load_id_map", "crop_box", "read_rgb", "find_training_root", "EXIF_DIR",
                 "N_MANIPULATED", "SAFE_GLOBALS"):
        assert hasattr(fdf, name), name
