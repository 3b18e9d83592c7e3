"""A one-time index of the official FDF layout, so that later starts read one file instead of a million (chapter 11).

The full FDF has ~1.47 M faces; the official layout keeps one EXIF JSON per Flickr photo, a metadata JSON of all faces
and an id-map pickle. Reading them all at every start takes minutes and, kept as Python objects, gigabytes.
:func:`aigfd_lite.fdf.index.scan` reads them once into flat numpy arrays (:class:`FDFIndex`: names, photo ids, parsed tags, boxes, FDF's
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
from typing import Any, Callable, Optional, Union

import numpy as np

from .. import storage
from ..camera import TAGS
from ..exif import parse_flickr_exif
from .id_map import load_id_map
from .scan import (ARRAYS, EXIF_FIELDS, INDEX_VERSION, N_MANIPULATED, LayoutPaths, _as_array, _hash_arrays, _parser_name,
                   hashed_settings, listdir, parser_spelling, read_all, read_metainfo, sort_key, upgrade_header)

PathLike = Union[str, Path]


def save_npz(path: PathLike, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """``arrays`` and a JSON ``header`` in one npz (no pickle), written atomically: a temporary file, then a
    rename, so an interrupted write never replaces a good file (the index, the landmark table)."""
    path = Path(path)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, header=np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8), **arrays)

    storage.atomic_write(path, write, prefix=path.name, mode=None, mkdir=True)
    return path


def load_npz(path: PathLike, version: Any, what: str, names: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and the arrays ``names`` of a :func:`save_npz` file; another ``version`` is a clear error."""
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(data["header"].tobytes().decode("utf-8"))
        if header.get("version") != version:
            raise ValueError(f"{path}: {what} version {header.get('version')}, expected {version}")
        return header, {k: data[k] for k in names}


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
        return save_npz(path, self.header, {k: getattr(self, k) for k in ARRAYS})

    @classmethod
    def load(cls, path: PathLike) -> "FDFIndex":
        header, arrays = load_npz(path, INDEX_VERSION, "index", ARRAYS)
        return cls(header=upgrade_header(header, arrays), **arrays)  # an older parser name: the same data


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
                  progress: bool = True, workers: Union[int, None] = None, **settings: Any) -> FDFIndex:
    """The index of ``root`` for ``settings`` (see :func:`scan`): cached (``index`` None: the default folder; a
    path: that folder) or, with ``index=False`` or a custom lambda parser, scanned in memory without writing."""
    parse = settings.get("parse_exif")
    if index is False or (parse is not None and _parser_name(parse) is None):
        return scan(root, progress=False, workers=workers, **settings)
    folder = default_index_dir(root) if index in (None, True) else Path(index).expanduser()
    # The key leaves the path out: the same files re-extracted to the same place (or moved) keep their index.
    key_source = dict(version=INDEX_VERSION, fingerprint=fingerprint(root, settings.get(
        "image_size", 128)), settings={k: (parser_spelling(_parser_name(v)) if k == "parse_exif" and v else v)
                                       for k, v in sorted(settings.items())})
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"fdf-index-{key}.npz"
    if path.is_file() and not rebuild:
        try:
            return FDFIndex.load(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # damaged: rebuilt
            print(f"rebuilding the FDF index: cannot read {path} ({err})")
    built = scan(root, progress=progress, workers=workers, **settings)
    built.header["fingerprint_key"] = key
    built.save(path)
    return built


def scan(root: Path, *, crop: bool = True, require_manipulated: bool = True, image_size: int = 128,
         parse_exif: Optional[Callable] = None, progress: bool = False, workers: Optional[int] = None) -> "FDFIndex":
    """Read the layout under ``root`` (``SSL_training_data``) once; the rules are :class:`aigfd_lite.fdf.FDFLayout`'s.
    Faces are kept in FDF's numeric name order; every dropped face is counted in ``header["skips"]``."""
    started = time.perf_counter()
    p = LayoutPaths.of(Path(root), image_size)
    parse = parse_exif or parse_flickr_exif
    if crop and not p.metainfo.is_file():
        raise FileNotFoundError(f"{p.metainfo} is needed for the paper's face crop (or pass crop_scale=None)")
    id_map = load_id_map(p.id_map)
    jsons, negs = listdir(p.exif_dir), listdir(p.neg_dir)
    names = sorted((n[:-4] for n in listdir(p.image_dir) if n.endswith(".png")), key=sort_key)
    skips, missing_tags = Counter(), Counter()
    rows: dict[str, list] = {k: [] for k in ARRAYS}
    candidates = []
    for name in names:
        photo_id = id_map.get(name)
        if photo_id is None:
            skips["no_photo_id"] += 1
        elif f"{photo_id}.json" not in jsons:
            skips["no_json"] += 1
        else:
            candidates.append((name, photo_id))
    folder = str(p.exif_dir)  # plain strings: a Path object per photo costs ~0.5 kB at FDF's scale
    read = read_all([os.path.join(folder, f"{pid}.json") for _, pid in candidates], parse, workers, progress)
    meta = read_metainfo(p.metainfo) if p.metainfo.is_file() else {}  # after the workers: they fork a small process
    for (name, photo_id), (reason, strings, tags) in zip(candidates, read):
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
                  missing_tags=dict(missing_tags), data_hash=_hash_arrays(arrays, hashed_settings(settings)),
                  build_seconds=round(time.perf_counter() - started, 3))
    return FDFIndex(header=header, **arrays)
