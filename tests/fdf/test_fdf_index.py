"""Tests of aigfd_lite.fdf.index: the one-time index of the official layout, its cache and the data's identity."""
from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image
from test_fdf import EXPECTED_SKIPS, build_layout

from aigfd_lite.fdf import layout as fdf
from aigfd_lite.fdf import index as fdf_index
from aigfd_lite.fdf.layout import FDFLayout
from aigfd_lite.fdf.index import FDFIndex


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


def _arrays(index):
    return {k: getattr(index, k) for k in fdf_index.ARRAYS}


def test_identity_does_not_follow_the_parsers_module_path(root, tmp_path, monkeypatch):
    from aigfd_lite.fdf import scan as fdf_scan
    from aigfd_lite.exif import flickr

    before = FDFLayout(root)
    assert FDFLayout(root, parse_exif=flickr.parse_flickr_exif).data_hash == before.data_hash  # its own cache file
    settings = before.index.header["settings"]
    assert settings["parse_exif"] == "aigfd-exif-v1"
    # the hash is the one the module-path spelling gave, so runs stored with it stay valid
    old = {**settings, "parse_exif": "aigfd_lite.flickr.parse_flickr_exif"}
    assert before.data_hash == fdf_scan._hash_arrays(_arrays(before.index), old)
    # the parser moves (another module, another name): same token, same cache file, same identity
    monkeypatch.setattr(flickr.parse_flickr_exif, "__module__", "aigfd_lite.exif_parsers.flickr")
    monkeypatch.setattr(flickr.parse_flickr_exif, "__qualname__", "parse_v1")
    assert fdf_scan._parser_name(flickr.parse_flickr_exif) == "aigfd-exif-v1"
    monkeypatch.setattr(fdf_index, "scan", lambda *a, **k: pytest.fail("the index was rebuilt"))
    for kw in ({}, {"parse_exif": flickr.parse_flickr_exif}):
        assert FDFLayout(root, **kw).data_hash == before.data_hash
    monkeypatch.undo()
    fresh = FDFLayout(root, index=False, parse_exif=flickr.parse_flickr_exif)  # a scan of the moved parser
    assert fresh.data_hash == before.data_hash and len(index_files(root)) == 2


@pytest.mark.parametrize("legacy", ["aigfd_lite.flickr.parse_flickr_exif", "aigfd_lite.exif.parse_flickr_exif"])
def test_an_index_stored_with_the_module_path_name_is_the_same_data(root, monkeypatch, legacy):
    from aigfd_lite.fdf import scan as fdf_scan

    new = FDFLayout(root)
    path = index_files(root)[0]
    settings = {**new.index.header["settings"], "parse_exif": legacy}
    header = {**new.index.header, "settings": settings,
              "data_hash": fdf_scan._hash_arrays(_arrays(new.index), settings)}  # as the old code wrote it
    fdf_index.save_npz(path, header, _arrays(new.index))
    monkeypatch.setattr(fdf_index, "scan", lambda *a, **k: pytest.fail("the stored index was not recognised"))
    old = FDFLayout(root)
    assert old.index.header["settings"]["parse_exif"] == "aigfd-exif-v1"
    assert old.data_hash == new.data_hash and len(index_files(root)) == 1


def test_an_unregistered_parser_keeps_its_module_path_name():
    from aigfd_lite.fdf import scan as fdf_scan

    assert fdf_scan._parser_name(fdf_scan.sort_key) == "aigfd_lite.fdf.scan.sort_key"
    assert fdf_scan._parser_name(lambda m: m) is None
    assert fdf_scan.parser_spelling("my.module.parse") == "my.module.parse"
