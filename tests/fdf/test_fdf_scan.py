"""Tests of aigfd_lite.fdf.scan: reading the layout once; the per-field parse cache and the worker processes give
exactly what parsing every record whole, in this process, gives."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_fdf import FACES, build_layout

from aigfd_lite.fdf import index as fdf_index
from aigfd_lite.fdf import scan as fdf_scan
from aigfd_lite.exif.flickr import parse_flickr_exif, parse_flickr_exif_published
from aigfd_lite.data.miniature import write_synthetic_tree


def records(tmp_path):
    """The fixture's JSON files plus unusual keys: aliases, an unhashable value, a list instead of a dict."""
    build_layout(tmp_path)
    folder = tmp_path / "SSL_training_data" / fdf_scan.EXIF_DIR
    extra = {"alias": {"EXIF": {"Aperture": "F4", "Shutter Speed": "1/60 sec", "ISO": "200"}},
             "unhashable": {"EXIF": {"Aperture Value": ["F4"], "Focal Length": "35.0 mm"}},
             "listed": ["not", "a", "record"]}
    for name, content in extra.items():
        (folder / f"{name}.json").write_text(json.dumps(content))
    return sorted(folder.glob("*.json"))


@pytest.mark.parametrize("parse", [parse_flickr_exif, parse_flickr_exif_published])
def test_per_field_cache_equals_whole_record_parsing(tmp_path, parse):
    paths = records(tmp_path)
    cached, whole = fdf_scan.TagReader(parse), fdf_scan.TagReader(parse)
    whole.per_field = False
    assert cached.per_field
    for path in paths * 2:  # the second pass is served from the cache
        a, b = cached(path), whole(path)
        assert a[0] == b[0] and a[1] == b[1]
        np.testing.assert_array_equal(a[2], b[2])
    assert cached.cache and not whole.cache


def test_workers_give_the_same_rows_in_the_same_order(tmp_path):
    write_synthetic_tree(tmp_path, 300, distinct_json=11)
    root = tmp_path / "SSL_training_data"
    one = fdf_index.scan(root, workers=1)
    two = fdf_index.scan(root, workers=2)
    assert one.data_hash == two.data_hash and len(one) == 300
    paths = sorted((root / fdf_scan.EXIF_DIR).glob("*.json"))[:50]
    assert [r[0] for r in fdf_scan.read_all(paths, parse_flickr_exif, workers=2)] == [""] * 50


def test_scan_counts_every_face(tmp_path):
    build_layout(tmp_path)
    index = fdf_index.scan(tmp_path / "SSL_training_data")
    assert len(index) + sum(index.skips.values()) == len(FACES)


def test_metadata_keeps_two_fields_of_each_entry(tmp_path):
    path = tmp_path / "fdf_metainfo.json"
    path.write_text(json.dumps({
        "0": {"bounding_box": [0.1, 0.2, 0.3, 0.4], "landmark": [[0.5, 0.5]] * 7, "author": "x",
              "exif": {"nested": {"deep": 1}}, "original_landmark": [[1, 2]] * 7},
        "1": {"category": "training"},  # no box: kept as (None, None), so it is a counted skip later
        "2": "not an entry"}))
    meta = fdf_scan.read_metainfo(path)
    assert meta["0"] == ([0.1, 0.2, 0.3, 0.4], [[0.5, 0.5]] * 7) and meta["1"] == (None, None)
    assert "2" not in meta
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="mapping"):
        fdf_scan.read_metainfo(path)
