"""One safe image reader for every path of the package: :func:`load_rgb` (the corpus, the test sets, FDF, ``aigfd score``).

Whatever the file holds, the result is an (H, W, 3) uint8 RGB array, or :class:`UnreadableImage`:

* EXIF orientation is applied (the pixels as a viewer shows them); a malformed orientation tag is ignored;
* 16-bit data is scaled to 8 bits as ``round(value / 257)`` (so 65535 -> 255, 257 k -> k), for grey images and, where
  OpenCV is installed, for 16-bit colour PNG/TIFF too (without OpenCV Pillow keeps the high byte: off by at most one
  grey level);
* grey (``L``, ``1``) and palette (``P``) images are expanded to RGB; CMYK, YCbCr, LAB and HSV are converted;
* transparency is composited over a background, black by default (the corpus asks for white, its recipe since
  chapter 3: the NBA headshots are cut-outs meant to be seen on a page);
* float images holding values in [0, 1] are scaled by 255 (rounded); other float ranges are refused, not guessed;
* a multi-frame file (animated GIF, PNG or WebP, multi-page TIFF) gives its first frame (``first_frame_only``);
* anything that cannot be decoded raises :class:`UnreadableImage` (a ``ValueError``) whose message names the file
  and the reason: a decompression bomb (more than Pillow's ``MAX_IMAGE_PIXELS``, ~89 M pixels, or more than
  :data:`MAX_DECODED_BYTES` once decoded, counted from the file's header before decoding), a truncated file, a file
  that is not an image or in a format Pillow cannot read (HEIC), an empty file, a folder, a FIFO or device (never
  opened for reading, so never waited on), a missing file, a broken symbolic link or a loop of them, a file or
  folder without permission.

:func:`read_image` gives the same array plus the list of conversions made (the corpus counts them).
"""
from __future__ import annotations

import errno
import os
import stat
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageMode

BLACK = (0, 0, 0)
WHITE = (255, 255, 255)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".ppm", ".pgm", ".bmp", ".gif", ".tif", ".tiff",
                  ".webp", ".avif")
# Photo formats Pillow does not read (without plugins): named in the error, not called "not an image".
UNSUPPORTED_SUFFIXES = {".heic": "HEIC", ".heif": "HEIF", ".jxl": "JPEG XL"}
# Decoded bytes (pixels x bands x bytes per band) allowed: 2**28 is what Pillow's pixel cap allows for 8-bit RGB;
# a 16-bit RGBA file at the pixel cap would decode to 716 MB and take the 16-bit path ~12 GB.
MAX_DECODED_BYTES = 2**28
FLOAT_TOLERANCE = 1e-3  # float pixels this far outside [0, 1] are clipped (rounding); further out is refused
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# Pillow's transpose for each EXIF orientation value (EXIF 2.32, tag 0x0112), as ImageOps.exif_transpose uses.
_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


class UnreadableImage(ValueError):
    """A file that is not an image this reader can decode; the message names the file and the reason."""


def _fail(path: Path, reason: str, err: BaseException | None = None) -> UnreadableImage:
    detail = f" ({type(err).__name__}: {err})" if err is not None else ""
    return UnreadableImage(f"{path}: {reason}{detail}")


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
        return int(value) if int(value) in _ORIENTATION else 1
    except Exception:  # noqa: BLE001 - a broken EXIF block: the pixels stay as stored
        return 1


def _sixteen_bit_colour(im: Image.Image) -> bool:
    """True for a 16-bit-per-channel colour file, which Pillow itself cuts to its high byte."""
    if im.mode not in ("RGB", "RGBA") or im.format not in ("PNG", "TIFF"):
        return False
    try:
        rawmodes = [tile.args[0] if isinstance(tile.args, tuple) else tile.args for tile in im.tile]
        return any(";16" in str(rawmode) for rawmode in rawmodes)
    except Exception:  # noqa: BLE001 - an unusual tile description: treat as 8-bit
        return False


def _composite(rgb: np.ndarray, alpha: np.ndarray, background: Sequence[int]) -> np.ndarray:
    """``rgb`` over ``background`` with ``alpha`` (both float in the same 0..top scale), rounded to uint8."""
    a = alpha[..., None]
    return np.clip(np.round(rgb * a + np.asarray(background, np.float64) * (1.0 - a)), 0, 255).astype(np.uint8)


def _decode_16bit_colour(path: Path, background: Sequence[int], notes: list[str]) -> np.ndarray | None:
    """A 16-bit colour PNG/TIFF via OpenCV (which keeps all 16 bits); None when OpenCV is not installed."""
    try:
        # imported here, not at the top: `import aigfd_lite.blades` stays free of cv2 (optional)
        import cv2
    except ImportError:
        return None
    data = np.fromfile(path, dtype=np.uint8)
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if decoded is None or decoded.dtype != np.uint16 or decoded.ndim != 3 or decoded.shape[2] not in (3, 4):
        return None
    values = decoded.astype(np.float64) / 257.0
    rgb = values[..., [2, 1, 0]]  # OpenCV's BGR(A) order
    notes.append("16bit_to_8bit")
    if decoded.shape[2] == 4:
        notes.append(f"alpha_composited_on_{_bg_name(background)}")
        return _composite(rgb, values[..., 3] / 255.0, background)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def _bg_name(background: Sequence[int]) -> str:
    return {tuple(BLACK): "black", tuple(WHITE): "white"}.get(tuple(int(v) for v in background), "background")


def _to_rgb(im: Image.Image, path: Path, background: Sequence[int], notes: list[str]) -> np.ndarray:
    """The decoded Pillow image as uint8 RGB (no orientation yet)."""
    mode = im.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(im, dtype=np.float64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise _fail(path, f"{mode} image with values outside 0..65535 (32-bit data is not supported)")
        grey = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        notes.append(f"{mode}_to_8bit_grey_rgb")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.asarray(im, dtype=np.float64)
        if not np.isfinite(values).all():
            raise _fail(path, "float image with NaN or infinite pixels")
        if values.size and (values.min() < -FLOAT_TOLERANCE or values.max() > 1 + FLOAT_TOLERANCE):
            raise _fail(path, f"float image with values in [{values.min():.4g}, {values.max():.4g}], "
                              "not in [0, 1]; convert it to 8 bits first")
        grey = np.clip(np.round(values * 255.0), 0, 255).astype(np.uint8)
        notes.append("float_to_8bit_grey_rgb")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        notes.append("palette_to_rgb")
    elif mode == "PA":
        im = im.convert("RGBA")
        notes.append("palette_to_rgb")
    if im.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (*(int(v) for v in background), 255))
        notes.append(f"alpha_composited_on_{_bg_name(background)}")
        return np.asarray(Image.alpha_composite(backdrop, rgba).convert("RGB"), dtype=np.uint8).copy()
    if im.mode in ("L", "1"):
        notes.append("grey_to_rgb")
    elif im.mode == "CMYK":
        notes.append("cmyk_to_rgb")
    elif im.mode != "RGB":
        notes.append(f"{mode}_to_rgb")
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: str | Path, background: Sequence[int] = BLACK) -> tuple[np.ndarray, list[str]]:
    """Decode ``path`` to (H, W, 3) uint8 RGB; return it with the list of conversions made (see the module doc)."""
    path = Path(path)
    notes: list[str] = []
    with _open_regular(path) as fh:
        return _decode(fh, path, background, notes), notes


def _open_regular(path: Path):
    """``path`` opened for reading if it is a non-empty regular file, else :class:`UnreadableImage` naming what it
    is. Opened non-blocking and checked on the open descriptor, so a FIFO is refused, never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError as err:
        reason = "broken symbolic link (its target does not exist)" if os.path.islink(path) else "no such file"
        raise _fail(path, reason) from err
    except IsADirectoryError as err:  # Windows; POSIX opens a folder and fstat says so below
        raise _fail(path, "is a folder, not an image file") from err
    except OSError as err:
        reasons = {errno.ELOOP: "symbolic link loop", errno.EACCES: "permission denied",
                   errno.EPERM: "permission denied", errno.ENOTDIR: "no such file (a part of its path is a file)"}
        raise _fail(path, reasons.get(err.errno, "cannot be opened"), err) from err
    mode, size = (lambda st: (st.st_mode, st.st_size))(os.fstat(fd))
    kinds = [(stat.S_ISDIR, "is a folder, not an image file"), (stat.S_ISFIFO, "is a FIFO (named pipe), not an "
             "image file"), (stat.S_ISSOCK, "is a socket, not an image file"), (stat.S_ISCHR, "is a device, not an "
             "image file"), (stat.S_ISBLK, "is a device, not an image file")]
    reason = next((text for test, text in kinds if test(mode)), None)
    if reason is None and not stat.S_ISREG(mode):
        reason = "is not a regular file"
    elif reason is None and size == 0:
        reason = "empty file"
    if reason is not None:
        os.close(fd)
        raise _fail(path, reason)
    return os.fdopen(fd, "rb")


def _decoded_bytes(im: Image.Image, deep: bool) -> int:
    """The bytes the first frame decodes to: pixels x bands x bytes per band (Pillow's mode; 2 for 16-bit colour)."""
    per_band = 2 if deep else np.dtype(ImageMode.getmode(im.mode).typestr).itemsize
    return im.width * im.height * len(im.getbands()) * per_band


def _decode(fh, path: Path, background: Sequence[int], notes: list[str]) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; a reader of untrusted files refuses both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh) as im:
                deep = _sixteen_bit_colour(im)  # before reading EXIF: a PNG's getexif() decodes the pixels
                if _decoded_bytes(im, deep) > MAX_DECODED_BYTES:
                    raise _fail(path, f"decompression bomb: {im.width} x {im.height} {im.mode}"
                                      f"{' (16 bits per channel)' if deep else ''} would decode to "
                                      f"{_decoded_bytes(im, deep) / 2**20:.0f} MiB, more than the "
                                      f"{MAX_DECODED_BYTES / 2**20:.0f} MiB allowed")
                if im.format != "MPO" and getattr(im, "is_animated", False):  # MPO: a camera's extra previews
                    notes.append("first_frame_only")
                orientation = _orientation(im)
                array = None
                if deep:
                    array = _decode_16bit_colour(path, background, notes)
                if array is None:
                    im.load()  # decode now: a truncated file fails here, not later
                    array = _to_rgb(im, path, background, notes)
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _fail(path, "decompression bomb: too many pixels to decode safely", err) from err
    except Exception as err:  # noqa: BLE001 - UnidentifiedImageError, OSError (truncated), SyntaxError, MemoryError...
        unidentified = type(err).__name__ == "UnidentifiedImageError"
        reason = "not an image" if unidentified else "cannot be decoded"
        if unidentified and path.suffix.lower() in UNSUPPORTED_SUFFIXES:
            reason = (f"format not supported ({UNSUPPORTED_SUFFIXES[path.suffix.lower()]}, which Pillow cannot "
                      "read): convert it to JPEG or PNG")
        raise _fail(path, reason, err) from err
    if orientation != 1:
        array = np.asarray(Image.fromarray(array).transpose(_ORIENTATION[orientation]), dtype=np.uint8).copy()
        notes.append("exif_rotated" if orientation in (5, 6, 7, 8) else "exif_flipped")
    return array


def load_rgb(path: str | Path, background: Sequence[int] = BLACK) -> np.ndarray:
    """Decode ``path`` to an (H, W, 3) uint8 RGB array; raises :class:`UnreadableImage` (see the module doc)."""
    return read_image(path, background)[0]
