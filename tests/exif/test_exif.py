"""Tests of aigfd_lite.exif: Eq. 1 pair labels, the file reader against exiftool on real camera files, malformed
files made by hand, and the Flickr string parsers (correct and published variants)."""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import shutil
import struct
from pathlib import Path

import piexif
import pytest
import torch
from PIL import Image

from aigfd_lite.exif.flickr import parse_flickr_exif, parse_flickr_exif_published, published_exposure
from aigfd_lite.exif.pairs import pair_label_matrix, pair_labels
from aigfd_lite.exif.tags import (
    CATEGORICAL_TAGS,
    ORDINAL_TAGS,
    ExifTags,
    NotAnImageError,
    read_exif,
)
from aigfd_lite.fetch import files
from conftest import FIXTURES

FIXTURE = FIXTURES / "exiftool" / "camera_files.json"
EXIFTOOL = json.loads(FIXTURE.read_text())
NAN = float("nan")

# ---------------------------------------------------------------------------------------------------------------
# Eq. 1: pair labels


def test_pair_labels_hand_computed():
    i, j, target = pair_labels(torch.tensor([3.0, 1.0, 3.0]))
    assert i.tolist() == [0, 0, 1] and j.tolist() == [1, 2, 2]
    assert target.tolist() == [1.0, 0.5, 0.0]  # 3>1, 3=3 (tie), 1<3
    assert i.dtype == j.dtype == torch.int64


def test_pair_labels_drops_pairs_with_missing_tags():
    i, j, target = pair_labels(torch.tensor([1.0, NAN, 2.0, 2.0]))
    assert list(zip(i.tolist(), j.tolist())) == [(0, 2), (0, 3), (2, 3)]
    assert target.tolist() == [0.0, 0.0, 0.5]


def test_pair_labels_tie_option_and_dtypes():
    _, _, target = pair_labels(torch.tensor([2.0, 2.0, 1.0], dtype=torch.float64), tie=1.0)  # the paper's ">="
    assert target.dtype == torch.float64 and target.tolist() == [1.0, 1.0, 1.0]
    _, _, target = pair_labels(torch.tensor([1, 5]))  # integer tags: default float dtype
    assert target.dtype == torch.get_default_dtype() and target.tolist() == [0.0]


def test_pair_labels_small_and_bad_batches():
    for tags in (torch.tensor([]), torch.tensor([4.0]), torch.tensor([NAN, NAN, NAN])):
        i, j, target = pair_labels(tags)
        assert len(i) == len(j) == len(target) == 0
    with pytest.raises(ValueError, match="1-D"):
        pair_labels(torch.ones(2, 3))


def test_pair_labels_match_a_plain_loop():
    gen = torch.Generator().manual_seed(0)
    tags = torch.randint(0, 4, (23,), generator=gen).double()  # few values: many ties
    tags[torch.rand(23, generator=gen) < 0.2] = NAN
    expected = [
        (a, b, 1.0 if tags[a] > tags[b] else 0.0 if tags[a] < tags[b] else 0.5)
        for a, b in itertools.combinations(range(len(tags)), 2)
        if not (math.isnan(tags[a]) or math.isnan(tags[b]))
    ]
    i, j, target = pair_labels(tags)
    assert list(zip(i.tolist(), j.tolist(), target.tolist())) == expected


def test_pair_label_matrix():
    tags = torch.tensor([1.0, 2.0, NAN, 2.0])
    upper = pair_label_matrix(tags)
    i, j, target = pair_labels(tags)
    assert torch.equal(upper[i, j], target)
    assert int(torch.isnan(upper).sum()) == 16 - len(target)  # everything else is undefined
    full = pair_label_matrix(tags, upper_only=False)
    assert full[1, 0] == 1.0 and full[0, 1] == 0.0 and full[3, 1] == 0.5
    assert torch.isnan(full.diagonal()).all() and torch.isnan(full[2]).all() and torch.isnan(full[:, 2]).all()


# ---------------------------------------------------------------------------------------------------------------
# Real camera files against exiftool (fixture recorded by tools/record_exiftool_fixture.py)

ORDINAL_EXIFTOOL = {"aperture": "FNumber", "exposure_time": "ExposureTime", "focal_length": "FocalLength",
                    "iso": "ISO"}
CATEGORICAL_EXIFTOOL = {"make": "Make", "metering_mode": "MeteringMode", "exposure_mode": "ExposureMode",
                        "white_balance": "WhiteBalance", "exposure_program": "ExposureProgram"}
# Deliberate disagreements: piexif's 01.jpg is a synthetic file with sentinel maxima (0xFFFFFFFF s exposure),
# which read_exif rejects as implausible while exiftool reports the raw number.
REJECTED = {("piexif-tests/01.jpg", "exposure_time")}


def _fetched(key: str) -> Path:
    source, name = key.split("/")
    pattern = f"*/images/{name}" if source == "piexif-tests" else f"*/{name}"
    (path,) = files(source, pattern)
    return path


@pytest.mark.parametrize("key", sorted(k for k, v in EXIFTOOL["files"].items() if v or not k.endswith("notjpeg.jpg")))
def test_read_exif_agrees_with_exiftool(key):
    expected = EXIFTOOL["files"][key]
    tags = read_exif(_fetched(key))
    for name, tool_name in ORDINAL_EXIFTOOL.items():
        if (key, name) in REJECTED:
            assert tags[name] is None
        elif tool_name in expected:
            assert tags[name] == pytest.approx(expected[tool_name], rel=1e-6), name
        else:
            assert tags[name] is None, name
    for name, tool_name in CATEGORICAL_EXIFTOOL.items():
        assert tags[name] == expected.get(tool_name), name


def test_fixture_covers_the_real_cameras():
    # the test above must actually compare numbers: most files carry all four ordinal tags
    keys = [k for k, v in EXIFTOOL["files"].items() if all(t in v for t in ORDINAL_EXIFTOOL.values())]
    assert len(keys) >= 12
    assert {EXIFTOOL["files"][k]["Make"] for k in keys} >= {"Canon", "SONY", "Panasonic", "SIGMA"}


def test_read_exif_agrees_with_piexif_on_real_cameras():
    """A second, independent parser as cross-check (piexif is not used at run time: see read_exif's docstring)."""
    checked = 0
    for key in sorted(k for k in EXIFTOOL["files"] if "/r_" in k or k.startswith("face-api-demo")):
        raw = piexif.load(str(_fetched(key)))["Exif"]
        tags = read_exif(_fetched(key))
        for name, tag in [("aperture", piexif.ExifIFD.FNumber), ("exposure_time", piexif.ExifIFD.ExposureTime),
                          ("focal_length", piexif.ExifIFD.FocalLength)]:
            num, den = raw[tag]
            assert tags[name] == pytest.approx(num / den), (key, name)
            checked += 1
        assert tags.iso == raw[piexif.ExifIFD.ISOSpeedRatings]
    assert checked == 3 * 14


def test_empty_camera_file_is_not_an_image():
    (path,) = files("piexif-tests", "*/images/notjpeg.jpg")
    assert path.stat().st_size == 0
    with pytest.raises(NotAnImageError):
        read_exif(path)


def test_apex_fallback_on_a_real_file(tmp_path):
    """Remove FNumber and ExposureTime from a real Canon file: APEX values stand in, with exiftool's numbers."""
    key = "piexif-tests/r_canon.jpg"
    path = tmp_path / "canon_apex.jpg"
    shutil.copy(_fetched(key), path)
    data = piexif.load(str(path))
    del data["Exif"][piexif.ExifIFD.FNumber], data["Exif"][piexif.ExifIFD.ExposureTime]
    data["thumbnail"] = None
    data["1st"] = {}
    piexif.insert(piexif.dump(data), str(path))
    tags = read_exif(path)
    assert tags.aperture == pytest.approx(EXIFTOOL["files"][key]["ApertureValue"], rel=1e-6)
    assert tags.exposure_time == pytest.approx(EXIFTOOL["files"][key]["ShutterSpeedValue"], rel=1e-6)
    assert tags.focal_length == 12.5 and tags.iso == 100.0


# ---------------------------------------------------------------------------------------------------------------
# Hand-made malformed files: a minimal TIFF/EXIF writer so every byte is under the test's control

ASCII, SHORT, LONG, RATIONAL, SRATIONAL = 2, 3, 4, 5, 10


def _encode(kind: int, values) -> tuple[bytes, int]:
    if kind == ASCII:
        raw = values.encode() + b"\0"
        return raw, len(raw)
    fmt = {SHORT: "<H", LONG: "<I", RATIONAL: "<II", SRATIONAL: "<ii"}[kind]
    values = list(values)
    return b"".join(struct.pack(fmt, *(v if isinstance(v, tuple) else (v,))) for v in values), len(values)


def _ifd(entries, start: int, next_ifd: int = 0) -> bytes:
    entries = sorted(entries, key=lambda e: e[0])
    data_at = start + 2 + 12 * len(entries) + 4
    head, data = struct.pack("<H", len(entries)), b""
    for tag, kind, values in entries:
        raw, count = _encode(kind, values)
        if len(raw) <= 4:
            field = raw.ljust(4, b"\0")
        else:
            field = struct.pack("<I", data_at + len(data))
            data += raw + b"\0" * (len(raw) % 2)
        head += struct.pack("<HHI", tag, kind, count) + field
    return head + struct.pack("<I", next_ifd) + data


def exif_blob(exif_entries, ifd0_entries=(), next_ifd: int = 0) -> bytes:
    """b"Exif\\0\\0" + a little-endian TIFF with IFD0 (Make + the given entries + Exif pointer) and the Exif IFD.
    ``next_ifd`` is IFD0's link to IFD1 (the thumbnail directory); a bad value makes a broken thumbnail IFD."""
    ifd0 = [(0x010F, ASCII, "TestCam"), *ifd0_entries]
    size0 = len(_ifd(ifd0 + [(0x8769, LONG, [0])], 8, next_ifd))
    first = _ifd(ifd0 + [(0x8769, LONG, [8 + size0])], 8, next_ifd)
    return b"Exif\0\0II*\0" + struct.pack("<I", 8) + first + _ifd(exif_entries, 8 + size0)


def jpeg_with(path: Path, app1: bytes) -> Path:
    Image.new("RGB", (16, 16), (120, 90, 60)).save(path, "JPEG", exif=app1)
    return path


GOOD = [(0x829D, RATIONAL, [(28, 10)]), (0x829A, RATIONAL, [(1, 250)]), (0x920A, RATIONAL, [(50, 1)]),
        (0x8827, SHORT, [200]), (0x9207, SHORT, [5]), (0xA402, SHORT, [1]), (0xA403, SHORT, [0]),
        (0x8822, SHORT, [3])]
GOOD_TAGS = ExifTags(aperture=2.8, exposure_time=0.004, focal_length=50.0, iso=200.0, make="TestCam",
                     metering_mode=5, exposure_mode=1, white_balance=0, exposure_program=3)


def test_handmade_writer_roundtrip(tmp_path):
    assert read_exif(jpeg_with(tmp_path / "good.jpg", exif_blob(GOOD))) == GOOD_TAGS


def test_zero_denominators_and_zero_values(tmp_path):
    entries = [(0x829D, RATIONAL, [(28, 0)]), (0x829A, RATIONAL, [(0, 0)]), (0x920A, RATIONAL, [(0, 1)]),
               (0x8827, SHORT, [0]), (0x9202, RATIONAL, [(3, 1)]), (0x9201, SRATIONAL, [(6, 1)])]
    tags = read_exif(jpeg_with(tmp_path / "zero.jpg", exif_blob(entries)))
    # FNumber/ExposureTime are present but invalid: no APEX fallback, the tags are None
    assert tags.ordinal() == {"aperture": None, "exposure_time": None, "focal_length": None, "iso": None}
    assert tags.make == "TestCam"


def test_negative_values(tmp_path):
    entries = [(0x829D, SRATIONAL, [(-28, 10)]), (0x920A, SRATIONAL, [(50, -1)]), (0x9201, SRATIONAL, [(-3, 1)]),
               (0x8822, SRATIONAL, [(-1, 1)])]
    tags = read_exif(jpeg_with(tmp_path / "neg.jpg", exif_blob(entries)))
    assert tags.aperture is None and tags.focal_length is None and tags.exposure_program is None
    # a negative APEX Tv is legitimate: a long exposure, 2**3 = 8 s (ExposureTime is absent here)
    assert tags.exposure_time == pytest.approx(8.0)


def test_strings_where_numbers_belong(tmp_path):
    entries = [(0x829D, ASCII, "f/2.8"), (0x829A, ASCII, "fast"), (0x920A, ASCII, ""), (0x8827, ASCII, "ISO?"),
               (0x9207, ASCII, "Spot")]
    tags = read_exif(jpeg_with(tmp_path / "strings.jpg", exif_blob(entries)))
    assert tags == ExifTags(make="TestCam")


def test_apex_fallback_only_when_direct_tags_absent(tmp_path):
    entries = [(0x9202, RATIONAL, [(4, 1)]), (0x9201, SRATIONAL, [(7, 1)])]  # Av 4 -> f/4, Tv 7 -> 1/128 s
    tags = read_exif(jpeg_with(tmp_path / "apex.jpg", exif_blob(entries)))
    assert tags.aperture == pytest.approx(4.0) and tags.exposure_time == pytest.approx(1 / 128)
    both = entries + [(0x829D, RATIONAL, [(56, 10)]), (0x829A, RATIONAL, [(1, 1000)])]
    tags = read_exif(jpeg_with(tmp_path / "both.jpg", exif_blob(both)))
    assert tags.aperture == pytest.approx(5.6) and tags.exposure_time == pytest.approx(0.001)


@pytest.mark.parametrize("next_ifd", [0xFFFFFF00, 9, 30])
def test_broken_thumbnail_ifd_does_not_hide_the_exif_ifd(tmp_path, next_ifd):
    # IFD0's link to IFD1 points past the end of the data, or into the middle of IFD0 (exiftool 12.57 reads these
    # files and warns "Bad IFD1 directory")
    tags = read_exif(jpeg_with(tmp_path / "thumb.jpg", exif_blob(GOOD, next_ifd=next_ifd)))
    assert tags == GOOD_TAGS


def test_broken_gps_pointer_does_not_hide_the_exif_ifd(tmp_path):
    app1 = exif_blob(GOOD, ifd0_entries=[(0x8825, LONG, [0xFFFFFFF0])])
    assert read_exif(jpeg_with(tmp_path / "gps.jpg", app1)) == GOOD_TAGS


@pytest.mark.parametrize("cut", [6, 10, 14, 20, 40, 80])
def test_truncated_exif(tmp_path, cut):
    app1 = exif_blob(GOOD)
    tags = read_exif(jpeg_with(tmp_path / "cut.jpg", app1[:cut]))
    assert isinstance(tags, ExifTags)
    assert tags.ordinal() == {name: None for name in ORDINAL_TAGS}  # the Exif IFD lies beyond the cut


def test_garbage_app1_and_fuzzed_real_exif_never_crash(tmp_path):
    assert read_exif(jpeg_with(tmp_path / "junk.jpg", b"Exif\0\0" + bytes(range(256)) * 3)) == ExifTags()
    app1 = exif_blob(GOOD, next_ifd=0)
    rng = random.Random(0)
    for k in range(60):
        blob = bytearray(app1)
        for _ in range(rng.randint(1, 12)):
            blob[rng.randrange(6, len(blob))] = rng.randrange(256)
        tags = read_exif(jpeg_with(tmp_path / f"fuzz{k}.jpg", bytes(blob)))
        for name in ORDINAL_TAGS:
            assert tags[name] is None or (isinstance(tags[name], float) and tags[name] > 0)


def test_images_without_exif(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    Image.new("L", (8, 8)).save(tmp_path / "plain.jpg")
    assert read_exif(tmp_path / "plain.png") == ExifTags()
    assert read_exif(tmp_path / "plain.jpg") == ExifTags()


def test_not_an_image(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a photo\n")
    (tmp_path / "half.jpg").write_bytes(b"\xff\xd8\xff\xe1\x00\x10Exif\0\0")  # SOI + a cut APP1 and nothing else
    for name in ("empty.jpg", "notes.jpg"):
        with pytest.raises(NotAnImageError, match="not an image"):
            read_exif(tmp_path / name)
    assert issubclass(NotAnImageError, ValueError)
    try:  # a JPEG header with nothing after it: either a clear error or empty tags, never another exception
        assert read_exif(tmp_path / "half.jpg") == ExifTags()
    except NotAnImageError:
        pass
    with pytest.raises(FileNotFoundError):
        read_exif(tmp_path / "missing.jpg")


# ---------------------------------------------------------------------------------------------------------------
# ExifTags


def test_exif_tags_access():
    tags = ExifTags(aperture=5.6, iso=100.0, make="SONY")
    assert tags["aperture"] == 5.6 and tags["make"] == "SONY" and tags["exposure_time"] is None
    assert list(tags.ordinal()) == list(ORDINAL_TAGS) and tags.ordinal()["iso"] == 100.0
    assert [f.name for f in dataclasses.fields(ExifTags)] == list(ORDINAL_TAGS + CATEGORICAL_TAGS)
    with pytest.raises(KeyError):
        tags["shutter"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tags.iso = 200.0


# ---------------------------------------------------------------------------------------------------------------
# Flickr strings


@pytest.mark.parametrize(
    "key, text, expected",
    [
        ("Aperture Value", "F5.6", 5.6), ("Aperture Value", "F28/10", 2.8), ("Aperture Value", "f/8", 8.0),
        ("Exposure Time", "1/250 sec", 0.004), ("Exposure Time", "0.5 sec", 0.5),
        ("Exposure Time", "10/1300 sec", 10 / 1300), ("Exposure Time", "2 sec", 2.0), ("Exposure Time", "30", 30.0),
        ("Focal Length", "50.0 mm", 50.0), ("Focal Length", "4.3 mm (35 mm equivalent: 24 mm)", 4.3),
        ("ISO Speed Ratings", "100", 100.0), ("ISO Speed Ratings", 400, 400.0),
    ],
)
def test_parse_flickr_units(key, text, expected):
    name = {"Aperture Value": "aperture", "Exposure Time": "exposure_time", "Focal Length": "focal_length",
            "ISO Speed Ratings": "iso"}[key]
    assert parse_flickr_exif({key: text})[name] == pytest.approx(expected)


def test_parse_flickr_full_record_and_categories():
    record = {"EXIF": {"ISO Speed Ratings": "100", "Aperture Value": "F5.6", "Exposure Time": "1/250 sec",
                       "Focal Length": "50.0 mm", "Make": "Canon ", "Metering Mode": "Pattern",
                       "Exposure Mode": "Manual", "White Balance": "Auto", "Exposure Program": "Aperture-priority AE"}}
    assert parse_flickr_exif(record) == ExifTags(aperture=5.6, exposure_time=0.004, focal_length=50.0, iso=100.0,
                                                 make="Canon", metering_mode=5, exposure_mode=1, white_balance=0,
                                                 exposure_program=3)


@pytest.mark.parametrize(
    "text", ["F", "", "   ", "F0", "F-2.8", "-5", "0", "1/0 sec", "0/0", "0 mm", "-50 mm", "abc", "nan", "inf",
             "1/250/2 sec", "F5.6.1", "9" * 400, "1/" + "0" * 400, None, [], {"a": 1}, float("nan"), -1, True, 10**400],
)
def test_parse_flickr_malformed_gives_none(text):
    tags = parse_flickr_exif({"ISO Speed Ratings": text, "Aperture Value": text, "Exposure Time": text,
                              "Focal Length": text, "Metering Mode": text, "Exposure Mode": text})
    assert tags.ordinal() == {name: None for name in ORDINAL_TAGS}
    if text != "0":  # 0 is a valid category code ("Unknown" metering, "Auto" exposure mode)
        assert tags.metering_mode is None and tags.exposure_mode is None


def test_parse_flickr_not_a_mapping():
    assert parse_flickr_exif({}) == ExifTags()
    assert parse_flickr_exif({"EXIF": "broken"}) == ExifTags()


def test_published_exposure_quirk():
    assert published_exposure("1/250 sec") == 250.0  # the denominator, not 0.004 s
    assert published_exposure("2 sec") == published_exposure("1/2 sec") == 2.0  # 2 s and 0.5 s collide
    assert published_exposure("0.5 sec") == 0.5  # seconds, on a different scale from "1/x"
    assert published_exposure("10/1300 sec") == pytest.approx(10 / 1300)
    assert published_exposure("11/10 sec") == 10.0  # the "1/" inside "11/10" is found too
    assert published_exposure("junk") is None and published_exposure(None) is None


def test_parse_flickr_published_swaps_focal_and_exposure():
    record = {"ISO Speed Ratings": "100", "Aperture Value": "F28/10", "Exposure Time": "1/250 sec",
              "Focal Length": "50.0 mm"}
    code = parse_flickr_exif_published(record)
    assert code.ordinal() == {"aperture": 2.8, "exposure_time": 50.0, "focal_length": 250.0, "iso": 100.0}
    unswapped = parse_flickr_exif_published(record, swap_focal_exposure=False)
    assert unswapped.exposure_time == 250.0 and unswapped.focal_length == 50.0
    assert parse_flickr_exif_published({"Aperture Value": "F"}).aperture is None  # the code skips such records


def test_read_exif_lets_only_its_documented_errors_escape(tmp_path, monkeypatch):
    import struct
    import zlib

    from PIL import Image

    Image.new("RGB", (1, 1)).save(tmp_path / "bomb.png")
    data = bytearray((tmp_path / "bomb.png").read_bytes())
    data[16:24] = struct.pack(">II", 20_000, 20_000)  # IHDR claims 400 M pixels: Pillow's DecompressionBombError
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(NotAnImageError, match="decompression bomb"):
        read_exif(tmp_path / "bomb.png")
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(NotAnImageError, match="folder"):
        read_exif(tmp_path / "folder.jpg")

    def explode(*args, **kwargs):
        raise RuntimeError("a reader bug")

    Image.new("RGB", (4, 4)).save(tmp_path / "ok.jpg")
    monkeypatch.setattr(Image, "open", explode)  # any other failure of the decoder: still the documented error
    with pytest.raises(NotAnImageError, match="RuntimeError"):
        read_exif(tmp_path / "ok.jpg")


def test_moved_names_stay_importable_from_exif():
    from aigfd_lite import exif
    from aigfd_lite.exif import flickr
    from aigfd_lite.exif import pairs

    assert exif.parse_flickr_exif is flickr.parse_flickr_exif and exif.pair_labels is pairs.pair_labels
    assert {"parse_flickr_exif_published", "pair_label_matrix", "FLICKR_KEYS"} <= set(dir(exif))
    with pytest.raises(AttributeError):
        exif.no_such_name  # noqa: B018
