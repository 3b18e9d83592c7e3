"""A one-time index of the official FDF layout, so that later starts read one file instead of a million (chapter 11).

The full FDF has ~1.47 M faces; the official layout keeps one EXIF JSON per Flickr photo, a metadata JSON of all faces
and an id-map pickle. Reading them all at every start takes minutes and, kept as Python objects, gigabytes.
:func:`scan` reads them once into flat numpy arrays (:class:`FDFIndex`: names, photo ids, parsed tags, boxes, FDF's
7 keypoints, the four EXIF strings, how many manipulated files exist) plus a JSON header (settings, counted skips,
the data's hash); :meth:`FDFIndex.save` writes them as one uncompressed ``.npz`` (no pickle: loaded with
``allow_pickle=False``). :func:`load_or_build` finds a cached index whose fingerprint (sizes and modification
times of the layout's files and folders) still matches, or builds and caches one.

Where the index lives: ``$AIGFD_STORE/index`` if set (:mod:`aigfd_lite.storage`), else ``<SSL_training_data>/
.aigfd_index`` (it travels with the data), else, when that folder is read-only, ``<cache>/index``. A file changed in
place keeps its folder's fingerprint: pass ``rebuild=True`` after editing JSON files by hand.

``FDFIndex.data_hash`` identifies the data (names, ids, tags, boxes, settings), not the path it was read from: a
training run can use it in its identity, so the same data under another spelling of the path is the same run.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np

from . import storage
from .camera import TAGS
from .fdf_pickle import load_id_map

PathLike = Union[str, Path]
INDEX_VERSION = 1
EXIF_DIR = "fdf_ccby2_exif_update_filtered_v2"
N_MANIPULATED = 4
#: The Flickr EXIF strings kept per face (the four ordinal tags' raw text).
EXIF_FIELDS: tuple[str, ...] = ("Aperture Value", "Exposure Time", "Focal Length", "ISO Speed Ratings")
ARRAYS = ("names", "photo_ids", "tags", "boxes", "landmarks", "n_manipulated", "exif")


class LayoutPaths(NamedTuple):
    """The official layout's folders and files below ``SSL_training_data`` (``root``)."""

    root: Path
    exif_dir: Path
    id_map: Path
    neg_dir: Path
    fdf_dir: Path
    metainfo: Path
    image_dir: Path

    @classmethod
    def of(cls, root: Path, image_size: int = 128) -> "LayoutPaths":
        data = root / "FDF" / "data"
        fdf_dir = data / "fdf"
        return cls(root, root / EXIF_DIR, data / "id_vs_fdfName.pkl", data / "face_dataaug_neg", fdf_dir,
                   fdf_dir / "fdf_metainfo.json", fdf_dir / "images" / str(image_size))


def listdir(path: Path) -> set[str]:
    """File names in ``path`` (empty if absent): one listing instead of a stat per face."""
    if not path.is_dir():
        return set()
    with os.scandir(path) as entries:
        return {e.name for e in entries}


def sort_key(name: str) -> tuple:
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


@dataclass
class FDFIndex:
    """Per usable face (rows aligned): ``names``/``photo_ids`` (bytes), ``tags`` float64 (N, 4) in TAGS order (NaN =
    unparseable), ``boxes`` float64 (N, 4) normalised (NaN without metadata), ``landmarks`` float32 (N, 7, 2) (NaN
    where absent), ``n_manipulated`` uint8 (0 or 4), ``exif`` bytes (N, 4) in EXIF_FIELDS order; ``header`` JSON."""

    names: np.ndarray
    photo_ids: np.ndarray
    tags: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    n_manipulated: np.ndarray
    exif: np.ndarray
    header: dict

    def __len__(self) -> int:
        return len(self.names)

    @property
    def skips(self) -> Counter:
        return Counter(self.header.get("skips", {}))

    @property
    def missing_tags(self) -> Counter:
        return Counter(self.header.get("missing_tags", {}))

    @property
    def data_hash(self) -> str:
        return self.header["data_hash"]

    def name(self, row: int) -> str:
        return self.names[row].decode("utf-8")

    def save(self, path: PathLike) -> Path:
        """Write atomically (temporary file, then rename): a half-written index is never picked up."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                header = np.frombuffer(json.dumps(self.header).encode("utf-8"), dtype=np.uint8)
                np.savez(fh, header=header, **{k: getattr(self, k) for k in ARRAYS})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: PathLike) -> "FDFIndex":
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(data["header"].tobytes().decode("utf-8"))
            if header.get("version") != INDEX_VERSION:
                raise ValueError(f"{path}: index version {header.get('version')}, expected {INDEX_VERSION}")
            return cls(header=header, **{k: data[k] for k in ARRAYS})


def _hash_arrays(arrays: dict[str, np.ndarray], settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for key in ARRAYS:
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _read_tags(path: Path, parse_exif: Callable) -> tuple[str, list[str], np.ndarray]:
    """(skip reason or "", the four EXIF strings, tags) for one photo's JSON (the published code's rules)."""
    nan = np.full(len(TAGS), np.nan)
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "bad_json", [], nan
    exif = record.get("EXIF") if isinstance(record, dict) else None
    if not isinstance(exif, dict):
        return "no_exif", [], nan
    strings = [str(exif.get(f, "")) for f in EXIF_FIELDS]
    if exif.get("Aperture Value") == "F":  # the published code's rule: an aperture of just "F" is unusable
        return "aperture_F", strings, nan
    parsed = parse_exif(exif)
    tags = np.array([np.nan if getattr(parsed, t) is None else float(getattr(parsed, t)) for t in TAGS])
    return ("no_tags" if np.isnan(tags).all() else ""), strings, tags


def read_metainfo(path: Path) -> dict[str, tuple]:
    """FDF's metadata JSON reduced to name -> (bounding_box, landmark): the two fields the loader serves."""
    with open(path) as fh:
        meta = json.load(fh)
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a mapping FDF name -> metadata")
    return {str(k): (v.get("bounding_box"), v.get("landmark")) for k, v in meta.items() if isinstance(v, dict)}


def _as_array(value: Any, shape: tuple) -> Optional[np.ndarray]:
    try:
        a = np.asarray(value, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError):
        return None
    return a if np.all(np.isfinite(a)) else None


def scan(root: Path, *, crop: bool = True, require_manipulated: bool = True, image_size: int = 128,
         parse_exif: Optional[Callable] = None, progress: bool = False) -> FDFIndex:
    """Read the layout under ``root`` (``SSL_training_data``) once; the rules are :class:`aigfd_lite.fdf.FDFLayout`'s.
    Faces are kept in FDF's numeric name order; every dropped face is counted in ``header["skips"]``."""
    from .exif import parse_flickr_exif

    started = time.perf_counter()
    p = LayoutPaths.of(Path(root), image_size)
    parse = parse_exif or parse_flickr_exif
    meta = read_metainfo(p.metainfo) if crop or p.metainfo.is_file() else {}
    id_map = load_id_map(p.id_map)
    jsons, negs = listdir(p.exif_dir), listdir(p.neg_dir)
    names = sorted((n[:-4] for n in listdir(p.image_dir) if n.endswith(".png")), key=sort_key)
    skips, missing_tags = Counter(), Counter()
    rows: dict[str, list] = {k: [] for k in ARRAYS}
    from tqdm.auto import tqdm

    for name in tqdm(names, desc="indexing FDF", unit="face", disable=not progress, mininterval=5):
        photo_id = id_map.get(name)
        if photo_id is None:
            skips["no_photo_id"] += 1
            continue
        if f"{photo_id}.json" not in jsons:
            skips["no_json"] += 1
            continue
        reason, strings, tags = _read_tags(p.exif_dir / f"{photo_id}.json", parse)
        if reason:
            skips[reason] += 1
            continue
        box, landmark = meta.get(name, (None, None))
        box, landmark = _as_array(box, (4,)), _as_array(landmark, (-1, 2))
        if crop and box is None:
            skips["no_box"] += 1
            continue
        has_negs = all(f"{name}_{k}.png" in negs for k in range(N_MANIPULATED))
        if not has_negs and require_manipulated:
            skips["no_manipulated"] += 1
            continue
        missing_tags.update(t for t, v in zip(TAGS, tags) if np.isnan(v))
        rows["names"].append(name.encode("utf-8"))
        rows["photo_ids"].append(photo_id.encode("utf-8"))
        rows["tags"].append(tags)
        rows["boxes"].append(box if box is not None else np.full(4, np.nan))
        rows["landmarks"].append(landmark if landmark is not None and landmark.shape == (7, 2)
                                 else np.full((7, 2), np.nan))
        rows["n_manipulated"].append(N_MANIPULATED if has_negs else 0)
        rows["exif"].append([s.encode("utf-8") for s in strings])
    n = len(rows["names"])
    arrays = {
        "names": np.array(rows["names"], dtype=bytes) if n else np.zeros(0, "S1"),
        "photo_ids": np.array(rows["photo_ids"], dtype=bytes) if n else np.zeros(0, "S1"),
        "tags": np.array(rows["tags"], dtype=np.float64).reshape(n, len(TAGS)),
        "boxes": np.array(rows["boxes"], dtype=np.float64).reshape(n, 4),
        "landmarks": np.array(rows["landmarks"], dtype=np.float32).reshape(n, 7, 2),
        "n_manipulated": np.array(rows["n_manipulated"], dtype=np.uint8),
        "exif": np.array(rows["exif"], dtype=bytes).reshape(n, len(EXIF_FIELDS)) if n else np.zeros((0, 4), "S1"),
    }
    settings = dict(crop=crop, require_manipulated=require_manipulated, image_size=image_size,
                    parse_exif=_parser_name(parse))
    header = dict(version=INDEX_VERSION, settings=settings, faces=n, images=len(names), skips=dict(skips),
                  missing_tags=dict(missing_tags), data_hash=_hash_arrays(arrays, settings),
                  build_seconds=round(time.perf_counter() - started, 3))
    return FDFIndex(header=header, **arrays)


def _parser_name(parse: Callable) -> Optional[str]:
    """A stable name for a module-level parser, None for a lambda or closure (such an index is never cached)."""
    qualname = getattr(parse, "__qualname__", "<unknown>")
    return None if "<" in qualname else f"{parse.__module__}.{qualname}"


def fingerprint(root: Path, image_size: int = 128) -> dict[str, list]:
    """Sizes and modification times of the layout's files and folders: cheap, and changes when faces come or go."""
    p = LayoutPaths.of(Path(root), image_size)
    out = {}
    for key, path in (("id_map", p.id_map), ("id_map_json", p.id_map.with_suffix(".json")),
                      ("metainfo", p.metainfo), ("exif_dir", p.exif_dir), ("neg_dir", p.neg_dir),
                      ("image_dir", p.image_dir)):
        try:
            st = path.stat()
            out[key] = [st.st_size if path.is_file() else 0, st.st_mtime_ns]
        except FileNotFoundError:
            out[key] = None
    return out


def default_index_dir(root: Path) -> Path:
    """``$AIGFD_STORE/index``, else ``<root>/.aigfd_index`` if writable, else ``<cache>/index``."""
    if storage.store_root() is not None:
        return storage.store_path("index")
    here = Path(root) / ".aigfd_index"
    try:
        here.mkdir(exist_ok=True)
        if os.access(here, os.W_OK):
            return here
    except OSError:
        pass
    base = os.environ.get("AIGFD_CACHE") or Path.home() / ".cache" / "aigfd_lite"
    return Path(base).expanduser() / "index"


def load_or_build(root: Path, *, index: Union[bool, PathLike, None] = None, rebuild: bool = False,
                  progress: bool = True, **settings: Any) -> FDFIndex:
    """The index of ``root`` for ``settings`` (see :func:`scan`): cached (``index`` None: the default folder; a
    path: that folder) or, with ``index=False`` or a custom lambda parser, scanned in memory without writing."""
    parse = settings.get("parse_exif")
    if index is False or (parse is not None and _parser_name(parse) is None):
        return scan(root, progress=False, **settings)
    folder = default_index_dir(root) if index in (None, True) else Path(index).expanduser()
    # The key leaves the path out: the same files re-extracted to the same place (or moved) keep their index.
    key_source = dict(version=INDEX_VERSION, fingerprint=fingerprint(root, settings.get(
        "image_size", 128)), settings={k: (_parser_name(v) if k == "parse_exif" and v else v)
                                       for k, v in sorted(settings.items())})
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"fdf-index-{key}.npz"
    if path.is_file() and not rebuild:
        try:
            return FDFIndex.load(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # damaged: rebuilt
            print(f"rebuilding the FDF index: cannot read {path} ({err})")
    built = scan(root, progress=progress, **settings)
    built.header["fingerprint_key"] = key
    built.save(path)
    return built
