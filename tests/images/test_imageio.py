"""Tests of aigfd_lite.images.reader: one reader, every odd file made here, small and generated."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigfd_lite.images.reader import WHITE, UnreadableImage, load_rgb, read_image


def _bomb_png(path: Path, width: int = 20_000, height: int = 20_000) -> Path:
    """A valid 1x1 PNG whose header claims width x height pixels (400 M by default: a decompression bomb)."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # the IHDR chunk's CRC
    path.write_bytes(bytes(data))
    return path


def test_plain_rgb_is_returned_as_is(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (7, 9, 3)
    np.testing.assert_array_equal(out, rgb)


def test_16_bit_grey_is_value_over_257_rounded(tmp_path):
    values = np.array([[0, 128, 129, 257 * 100, 257 * 100 + 128, 257 * 100 + 129, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    out = load_rgb(tmp_path / "deep.png")
    expected = np.round(values[0] / 257).astype(np.uint8)
    np.testing.assert_array_equal(out[0, :, 0], expected)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_dark_16_bit_image_is_not_read_as_8_bit(tmp_path):
    dark = np.array([[0, 100, 200, 250]], dtype=np.uint16)  # every value <= 255, still 16-bit data
    Image.fromarray(dark).save(tmp_path / "dark.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "dark.png")[0, :, 0], [0, 0, 1, 1])


def test_16_bit_colour_png_keeps_all_bits(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb = np.array([[[1000, 0, 65535], [257 * 7 + 129, 300, 128]]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb[..., ::-1])  # OpenCV writes BGR
    out = load_rgb(tmp_path / "rgb16.png")
    np.testing.assert_array_equal(out, np.round(rgb / 257).astype(np.uint8))


def test_float_image_scaled_by_255_and_out_of_range_refused(tmp_path):
    values = np.array([[0.0, 0.5, 1.0, 0.2]], dtype=np.float32)
    Image.fromarray(values).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(load_rgb(tmp_path / "f.tif")[0, :, 1], [0, 128, 255, 51])
    Image.fromarray(values * 255).save(tmp_path / "f255.tif")
    with pytest.raises(UnreadableImage, match=r"f255.tif.*not in \[0, 1\]"):
        load_rgb(tmp_path / "f255.tif")


def test_grey_palette_cmyk_expand_to_rgb(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    im = Image.fromarray(rgb)
    im.convert("L").save(tmp_path / "g.png")
    im.convert("P").save(tmp_path / "p.png")
    im.convert("CMYK").save(tmp_path / "c.tif")
    im.convert("1").save(tmp_path / "b.png")
    grey = np.asarray(im.convert("L"))
    np.testing.assert_array_equal(load_rgb(tmp_path / "g.png"), np.repeat(grey[..., None], 3, 2))
    np.testing.assert_array_equal(load_rgb(tmp_path / "p.png"), np.asarray(im.convert("P").convert("RGB")))
    np.testing.assert_array_equal(load_rgb(tmp_path / "c.tif"), np.asarray(im.convert("CMYK").convert("RGB")))
    assert set(np.unique(load_rgb(tmp_path / "b.png"))) <= {0, 255}


def test_alpha_composited_over_black_by_default(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (200, 10, 10, 255)  # opaque
    rgba[0, 1] = (200, 100, 50, 0)  # transparent
    rgba[0, 2] = (200, 100, 50, 128)  # half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out, notes = read_image(tmp_path / "a.png")
    assert notes == ["alpha_composited_on_black"]
    assert tuple(out[0, 0]) == (200, 10, 10) and tuple(out[0, 1]) == (0, 0, 0)
    assert np.abs(out[0, 2].astype(int) - np.round(np.array([200, 100, 50]) * 128 / 255)).max() <= 1
    white = load_rgb(tmp_path / "a.png", background=WHITE)
    assert tuple(white[0, 1]) == (255, 255, 255)
    # a palette image with a transparent index goes the same way
    Image.fromarray(rgba, "RGBA").convert("RGB").convert("P").save(tmp_path / "p.png", transparency=0)
    assert "alpha_composited_on_black" in read_image(tmp_path / "p.png")[1]


@pytest.mark.parametrize("orientation, expected", [
    (1, [[1, 2, 3], [4, 5, 6]]),
    (3, [[6, 5, 4], [3, 2, 1]]),
    (6, [[4, 1], [5, 2], [6, 3]]),  # "rotate 90 CW to display"
    (8, [[3, 6], [2, 5], [1, 4]]),
    (2, [[3, 2, 1], [6, 5, 4]]),
])
def test_exif_orientation_applied(tmp_path, orientation, expected):
    grey = np.array([[1, 2, 3], [4, 5, 6]], np.uint8) * 40
    im = Image.fromarray(np.repeat(grey[..., None], 3, 2))
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.png", exif=exif)
    out = load_rgb(tmp_path / "o.png")
    np.testing.assert_array_equal(out[..., 0], np.array(expected, np.uint8) * 40)


def test_every_broken_input_raises_unreadable_image_naming_the_file(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "whole.jpg", quality=90)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.jpg").write_text("this is not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    _bomb_png(tmp_path / "bomb.png")
    reasons = {"truncated.jpg": "cannot be decoded", "notes.jpg": "not an image", "empty.png": "empty file",
               "folder.png": "folder", "missing.png": "no such file", "bomb.png": "decompression bomb"}
    for name, reason in reasons.items():
        with pytest.raises(UnreadableImage, match=reason) as info:
            load_rgb(tmp_path / name)
        assert name in str(info.value)
        assert isinstance(info.value, ValueError)


def test_bomb_between_one_and_two_times_the_limit_is_refused_too(tmp_path, monkeypatch):
    Image.new("RGB", (10, 10)).save(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60)  # 100 pixels: Pillow alone would only warn
    with pytest.raises(UnreadableImage, match="decompression bomb"):
        load_rgb(tmp_path / "a.png")


def test_decoded_bytes_are_bounded_before_decoding(tmp_path, monkeypatch):
    """Pixels x bands x bytes per band: a 16-bit RGBA file counts 8 bytes a pixel, 8-bit RGBA 4, 8-bit RGB 3."""
    from aigfd_lite.images import reader as imageio

    cv2 = pytest.importorskip("cv2")
    rgba16 = np.random.default_rng(0).integers(0, 65536, (8, 8, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), rgba16)
    Image.fromarray((rgba16 // 257).astype(np.uint8), "RGBA").save(tmp_path / "rgba8.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "rgb8.png")
    monkeypatch.setattr(imageio, "MAX_DECODED_BYTES", 8 * 8 * 4 * 2 - 1)  # 64 pixels: far below the pixel cap
    with pytest.raises(UnreadableImage, match=r"decompression bomb: 8 x 8 RGBA \(16 bits per channel\) would"):
        load_rgb(tmp_path / "deep.png")
    assert load_rgb(tmp_path / "rgba8.png").shape == (8, 8, 3)
    monkeypatch.setattr(imageio, "MAX_DECODED_BYTES", 8 * 8 * 3 - 1)
    with pytest.raises(UnreadableImage, match="decompression bomb"):
        load_rgb(tmp_path / "rgb8.png")
    monkeypatch.setattr(imageio, "MAX_DECODED_BYTES", 8 * 8 * 3)
    assert load_rgb(tmp_path / "rgb8.png").shape == (8, 8, 3)


def test_fifo_device_links_and_permissions_are_named(tmp_path, monkeypatch):
    """A FIFO is refused without waiting for a writer (it was called "empty file"), a loop is not "no such file"."""
    import errno
    import os

    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(UnreadableImage, match="is a FIFO"):
        load_rgb(tmp_path / "pipe.jpg")  # a blocking open would hang here
    if Path("/dev/null").exists():
        with pytest.raises(UnreadableImage, match="is a device"):
            load_rgb("/dev/null")
    (tmp_path / "a.jpg").symlink_to(tmp_path / "b.jpg")
    (tmp_path / "b.jpg").symlink_to(tmp_path / "a.jpg")
    with pytest.raises(UnreadableImage, match="symbolic link loop"):
        load_rgb(tmp_path / "a.jpg")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    with pytest.raises(UnreadableImage, match="broken symbolic link"):
        load_rgb(tmp_path / "gone.jpg")
    with pytest.raises(UnreadableImage, match="is a folder"):
        load_rgb(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UnreadableImage, match="empty file"):
        load_rgb(tmp_path / "empty.png")
    real_open = os.open

    def no_permission(path, *args, **kwargs):  # root ignores file modes; CI runs as root
        if isinstance(path, (str, os.PathLike)) and "locked" in os.fspath(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_permission)
    with pytest.raises(UnreadableImage, match="locked/a.jpg: permission denied"):
        load_rgb(tmp_path / "locked" / "a.jpg")


def test_jfif_is_read_and_heic_is_named_unsupported(tmp_path):
    rgb = np.full((8, 8, 3), 128, np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.jfif", format="JPEG")
    assert load_rgb(tmp_path / "photo.jfif").shape == (8, 8, 3)
    (tmp_path / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    with pytest.raises(UnreadableImage, match=r"format not supported \(HEIC"):
        load_rgb(tmp_path / "phone.heic")


def test_a_multi_frame_file_says_its_first_frame_is_read(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    array, notes = read_image(tmp_path / "anim.gif")
    assert "first_frame_only" in notes and array[0, 0, 0] > 200  # red: the first frame
    frames[0].save(tmp_path / "still.gif")
    assert "first_frame_only" not in read_image(tmp_path / "still.gif")[1]
