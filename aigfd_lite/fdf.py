"""The full profile's training data: the paper's official FDF folder layout (chapter 3; used by chapter 4).

The layout, as the published code's README describes it::

    SSL_training_data/
      fdf_ccby2_exif_update_filtered_v2/<photo_id>.json   # Flickr EXIF strings under "EXIF"
      FDF/data/
        id_vs_fdfName.pkl                                 # FDF image name -> Flickr photo id (a pickle!)
        face_dataaug_neg/<name>_{0..3}.png                 # the four manipulated versions of each face
        fdf/
          fdf_metainfo.json                               # per name: bounding_box, landmark (7 points), licence...
          bounding_box/, landmarks/                       # FDF's own arrays (.npy), optional here
          images/128/<name>.png                           # the 128 px FDF images

:class:`FDFLayout` yields ``(image, tags, manipulation)`` items: the face cropped like the paper (FDF box enlarged
1.3x about its centre, clipped), its four ordinal tags parsed from the real Flickr EXIF with
:func:`aigfd_lite.exif.parse_flickr_exif` (in :data:`aigfd_lite.camera.TAGS` order, NaN where unparseable), and
``manipulation`` 0 for the real face or ``k + 1`` for ``face_dataaug_neg/<name>_k.png``. The release does not say
which manipulation each ``k`` is; the paper's loss uses only real (0) versus manipulated (> 0).

Faces without a photo id, without JSON, with unreadable JSON, with the aperture exactly ``"F"`` (the published
code's rule), with no parseable tag, without box (when cropping) or without their four manipulated files are
skipped and counted in ``layout.skips``. The id map is a pickle from a file-sharing site, so it is never unpickled
blindly: :func:`load_id_map` uses a restricted unpickler that builds only plain containers and strings/numbers, and
:func:`convert_id_map` writes a JSON copy that is preferred when present.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional, Union

import numpy as np
from .imageio import load_rgb

from .camera import TAGS

PathLike = Union[str, Path]
EXIF_DIR = "fdf_ccby2_exif_update_filtered_v2"
N_MANIPULATED = 4


# ------------------------------------------------------------------------------------------------ the id map
class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks to build something other than plain containers, strings and numbers."""


#: The only globals a pickle of a plain ``{str: str}`` / ``{str: int}`` mapping (or lists of them) may reference.
#: Plain dicts, lists, strings and ints need none at all (they have opcodes); these cover the odd set or tuple.
SAFE_GLOBALS = frozenset({("builtins", name) for name in
                          ("dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "bool")}
                         | {("collections", "OrderedDict")})


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose ``find_class`` refuses everything outside :data:`SAFE_GLOBALS`.

    A pickle runs code through the callables it names (``os.system``, ``builtins.eval``, ...): refusing every global
    except a few harmless constructors makes loading an untrusted pickle safe for plain data.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to unpickle {module}.{name}: this loader builds only plain dicts, lists, strings and numbers "
            f"(an id map needs nothing else). If the file is trusted, convert it elsewhere to JSON "
            f"(name -> photo id) and place it beside the pickle as id_vs_fdfName.json.")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a pickle with persistent ids")


def safe_unpickle(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (raises :class:`UnsafePickleError` on any other global)."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def _as_id_map(obj: Any, source: PathLike) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: expected a mapping FDF name -> photo id, got {type(obj).__name__}")
    out: dict[str, str] = {}
    for key, value in obj.items():
        if not isinstance(key, (str, int)) or not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ValueError(f"{source}: entry {key!r}: {value!r} is not a name -> photo id pair of strings/ints")
        out[str(key)] = str(value)
    return out


def convert_id_map(pkl_path: PathLike, json_path: Optional[PathLike] = None) -> Path:
    """Safely read the id-map pickle and write it as JSON (default: beside it, ``.json``); returns the JSON path.

    The write is atomic (temporary file, then rename), so a half-written JSON is never picked up.
    """
    pkl_path = Path(pkl_path)
    json_path = Path(json_path) if json_path is not None else pkl_path.with_suffix(".json")
    mapping = _as_id_map(safe_unpickle(pkl_path.read_bytes()), pkl_path)
    fd, tmp = tempfile.mkstemp(dir=json_path.parent, prefix=json_path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(mapping, fh)
        os.replace(tmp, json_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return json_path


def load_id_map(pkl_path: PathLike) -> dict[str, str]:
    """FDF image name -> Flickr photo id: from the JSON copy beside ``pkl_path`` if present, else the pickle, read
    with :class:`RestrictedUnpickler`. Keys and values come back as strings."""
    pkl_path = Path(pkl_path)
    json_path = pkl_path.with_suffix(".json")
    if json_path.is_file():
        with open(json_path) as fh:
            return _as_id_map(json.load(fh), json_path)
    if not pkl_path.is_file():
        raise FileNotFoundError(f"id map not found: neither {json_path} nor {pkl_path}")
    return _as_id_map(safe_unpickle(pkl_path.read_bytes()), pkl_path)


# ------------------------------------------------------------------------------------------------ the layout
class FDFItem(NamedTuple):
    """One training item: ``image`` uint8 (H, W, 3) RGB, ``tags`` float64 (4,) in TAGS order (NaN = unknown),
    ``manipulation`` 0 for the real face, ``k + 1`` for ``face_dataaug_neg/<name>_k.png``."""

    image: np.ndarray
    tags: np.ndarray
    manipulation: int


@dataclass(frozen=True)
class FDFFace:
    """One usable face: its FDF name, Flickr photo id, parsed tags, raw EXIF strings and image files."""

    name: str
    photo_id: str
    tags: np.ndarray
    exif: dict
    real_path: Path
    manipulated_paths: tuple[Path, ...]


def find_training_root(root: PathLike) -> Path:
    """The ``SSL_training_data`` folder for ``root``: ``root`` itself, ``root/SSL_training_data``, or (when ``root``
    is the paper's test ``data/`` folder) its sibling ``root/../SSL_training_data``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist (expected SSL_training_data or its parent)")
    candidates = [root, root / "SSL_training_data", root.parent / "SSL_training_data"]
    for c in candidates:
        if (c / "FDF" / "data" / "fdf").is_dir():
            return c
    raise FileNotFoundError("no official training layout (SSL_training_data/FDF/data/fdf) under any of "
                            + ", ".join(str(c) for c in candidates))


def _listdir(path: Path) -> set[str]:
    if not path.is_dir():
        return set()
    with os.scandir(path) as entries:
        return {e.name for e in entries}


def _sort_key(name: str) -> tuple:
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def crop_box(box: np.ndarray, width: int, height: int, scale: float = 1.3) -> tuple[int, int, int, int]:
    """Pixel crop ``(left, top, right, bottom)`` for a normalised ``[x0, y0, x1, y1]`` box: a square of side
    ``scale * max(w, h)`` about the box centre, clipped to the image (so it may end up non-square at a border)."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64) * [width, height, width, height]
    side = scale * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = max(int(round(cx - side / 2)), 0), max(int(round(cy - side / 2)), 0)
    right, bottom = min(int(round(cx + side / 2)), width), min(int(round(cy + side / 2)), height)
    if right - left < 2 or bottom - top < 2:
        raise ValueError(f"box {np.round(box, 3).tolist()} gives an empty crop in a {width}x{height} image")
    return left, top, right, bottom


def read_rgb(path: PathLike) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB, read by :func:`aigfd_lite.imageio.load_rgb` (the package's one reader:
    grey, palette, CMYK, 16-bit and float converted, alpha over black, EXIF orientation applied). Anything it cannot
    decode raises :class:`~aigfd_lite.imageio.UnreadableImage` (a ``ValueError``) naming the file."""
    return load_rgb(path)


class FDFLayout:
    """The official training data (full profile) as ``(image, tags, manipulation)`` items (chapter 3).

    ``root``: ``SSL_training_data``, its parent, or the paper's ``data/`` folder beside it. ``layout[i]`` is face ``i``
    as the paper samples it: real with probability ``real_fraction``, else one of its four manipulated versions,
    drawn from a generator seeded by ``(seed, epoch, i)`` (call :meth:`set_epoch` each epoch). :meth:`item` gives a
    chosen version, :meth:`iter_items` every version of every face. ``crop_scale=None`` returns the stored 128 px
    images uncropped; ``require_manipulated=False`` keeps faces whose manipulated files are missing (they then only
    give real items). ``parse_exif`` defaults to :func:`aigfd_lite.exif.parse_flickr_exif`.
    """

    def __init__(self, root: PathLike, *, crop_scale: Optional[float] = 1.3, real_fraction: float = 0.5,
                 seed: int = 42, require_manipulated: bool = True, image_size: int = 128,
                 parse_exif: Optional[Callable[[dict], Any]] = None) -> None:
        if not 0.0 <= real_fraction <= 1.0:
            raise ValueError(f"real_fraction must lie in [0, 1], got {real_fraction}")
        if parse_exif is None:
            from .exif import parse_flickr_exif as parse_exif
        self.root = find_training_root(root)
        data = self.root / "FDF" / "data"
        self.fdf_dir, self.exif_dir, self.neg_dir = data / "fdf", self.root / EXIF_DIR, data / "face_dataaug_neg"
        self.image_dir = self.fdf_dir / "images" / str(image_size)
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"no FDF images at {self.image_dir}")
        self.crop_scale, self.real_fraction, self.seed = crop_scale, float(real_fraction), int(seed)
        self.epoch = 0
        self.skips: Counter = Counter()
        self.missing_tags: Counter = Counter()  # kept faces with some (not all) tags unparseable, per tag
        self.metainfo = self._read_metainfo() if crop_scale is not None else {}
        self.faces = self._collect(load_id_map(data / "id_vs_fdfName.pkl"), parse_exif, require_manipulated)

    # -------------------------------------------------------------------------------------------- building
    def _read_metainfo(self) -> dict:
        path = self.fdf_dir / "fdf_metainfo.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is needed for the paper's face crop (or pass crop_scale=None)")
        with open(path) as fh:
            meta = json.load(fh)
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: expected a mapping FDF name -> metadata")
        # FDF's file has 1.47 M entries with a dozen fields each: keep only the two this loader serves.
        return {str(k): {f: v[f] for f in ("bounding_box", "landmark") if f in v}
                for k, v in meta.items() if isinstance(v, dict)}

    def _collect(self, id_map: dict[str, str], parse_exif: Callable, require_manipulated: bool) -> list[FDFFace]:
        # One directory listing each instead of a stat per face: FDF has 1.4 M faces.
        jsons, negs = _listdir(self.exif_dir), _listdir(self.neg_dir)
        names = sorted((n[:-4] for n in _listdir(self.image_dir) if n.endswith(".png")), key=_sort_key)
        faces = []
        for name in names:
            photo_id = id_map.get(name)
            if photo_id is None:
                self.skips["no_photo_id"] += 1
                continue
            if f"{photo_id}.json" not in jsons:
                self.skips["no_json"] += 1
                continue
            reason, exif, tags = self._tags(self.exif_dir / f"{photo_id}.json", parse_exif)
            if reason:
                self.skips[reason] += 1
                continue
            if self.crop_scale is not None and not self._has_box(name):
                self.skips["no_box"] += 1
                continue
            neg_names = [f"{name}_{k}.png" for k in range(N_MANIPULATED)]
            if all(n in negs for n in neg_names):
                neg_paths = tuple(self.neg_dir / n for n in neg_names)
            elif require_manipulated:
                self.skips["no_manipulated"] += 1
                continue
            else:
                neg_paths = ()
            self.missing_tags.update(t for t, v in zip(TAGS, tags) if np.isnan(v))
            faces.append(FDFFace(name, photo_id, tags, exif, self.image_dir / f"{name}.png", neg_paths))
        return faces

    @staticmethod
    def _tags(path: Path, parse_exif: Callable) -> tuple[str, dict, np.ndarray]:
        """(skip reason or "", the EXIF strings, tags) for one photo's JSON."""
        try:
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return "bad_json", {}, np.full(len(TAGS), np.nan)
        exif = record.get("EXIF") if isinstance(record, dict) else None
        if not isinstance(exif, dict):
            return "no_exif", {}, np.full(len(TAGS), np.nan)
        if exif.get("Aperture Value") == "F":  # the published code's rule: an aperture of just "F" is unusable
            return "aperture_F", exif, np.full(len(TAGS), np.nan)
        parsed = parse_exif(exif)
        tags = np.array([np.nan if getattr(parsed, t) is None else float(getattr(parsed, t)) for t in TAGS])
        return ("no_tags" if np.isnan(tags).all() else ""), exif, tags

    def _has_box(self, name: str) -> bool:
        try:
            box = np.asarray(self.metainfo[name]["bounding_box"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return False
        return box.shape == (4,) and bool(np.all(np.isfinite(box)))

    # -------------------------------------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.faces)

    def set_epoch(self, epoch: int) -> None:
        """Items drawn by ``layout[i]`` depend on (seed, epoch, i)."""
        self.epoch = int(epoch)

    def box(self, name: str) -> Optional[np.ndarray]:
        """FDF's face box ``[x0, y0, x1, y1]`` in [0, 1] of the 128 px image (from ``fdf_metainfo.json``), or None."""
        info = self.metainfo.get(name) if self.metainfo else None
        return None if not info or "bounding_box" not in info else np.asarray(info["bounding_box"], dtype=np.float64)

    def landmarks(self, name: str) -> Optional[np.ndarray]:
        """FDF's 7 keypoints (nose, r/l eye, r/l ear, r/l shoulder) as (7, 2) in [0, 1], or None. These are not the
        68 iBUG points the manipulations need; the published manipulated files were made with FAN landmarks."""
        info = self.metainfo.get(name) if self.metainfo else None
        if not info or "landmark" not in info:
            return None
        return np.asarray(info["landmark"], dtype=np.float64).reshape(-1, 2)

    def arrays(self) -> dict[str, np.ndarray]:
        """FDF's own per-split arrays: every ``.npy`` under ``fdf/bounding_box`` and ``fdf/landmarks`` (or a
        ``landmarks.npy`` file), keyed by path relative to ``fdf/``. Loaded with ``allow_pickle=False``; other files
        (DeepPrivacy's ``.torch`` boxes) are not read. Their row order follows FDF's image index, not our face list."""
        found = {}
        for sub in ("bounding_box", "landmarks", "landmarks.npy"):
            path = self.fdf_dir / sub
            files = sorted(path.glob("*.npy")) if path.is_dir() else ([path] if path.is_file() else [])
            for f in files:
                found[str(f.relative_to(self.fdf_dir))] = np.load(f, allow_pickle=False)
        return found

    def load(self, face: FDFFace, manipulation: int = 0) -> np.ndarray:
        """The uint8 RGB image of ``face`` (0 = real, k + 1 = manipulated file k), cropped like the paper."""
        if not 0 <= manipulation <= len(face.manipulated_paths):
            raise IndexError(f"face {face.name} has manipulations 0..{len(face.manipulated_paths)}, not {manipulation}")
        path = face.real_path if manipulation == 0 else face.manipulated_paths[manipulation - 1]
        image = read_rgb(path)
        if self.crop_scale is None:
            return image
        # Manipulated files share the real image's framing, so the real face's box crops them too.
        left, top, right, bottom = crop_box(self.box(face.name), image.shape[1], image.shape[0], self.crop_scale)
        return np.ascontiguousarray(image[top:bottom, left:right])

    def item(self, index: int, manipulation: int = 0) -> FDFItem:
        face = self.faces[index]
        return FDFItem(self.load(face, manipulation), face.tags.copy(), int(manipulation))

    def __getitem__(self, index: int) -> FDFItem:
        if not 0 <= index < len(self):
            raise IndexError(f"face {index} out of range for {len(self)} faces")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        n_neg = len(self.faces[index].manipulated_paths)
        real = n_neg == 0 or rng.random() < self.real_fraction
        return self.item(index, 0 if real else int(rng.integers(1, n_neg + 1)))

    def iter_items(self) -> Iterator[FDFItem]:
        """Every version of every face (real first). Unreadable files are counted in ``skips["unreadable_image"]``
        and left out, never silently."""
        for index, face in enumerate(self.faces):
            for manipulation in range(len(face.manipulated_paths) + 1):
                try:
                    yield self.item(index, manipulation)
                except (OSError, ValueError):
                    self.skips["unreadable_image"] += 1
