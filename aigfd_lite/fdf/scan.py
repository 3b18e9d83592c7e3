"""Reading the official FDF layout once, into the arrays of :class:`aigfd_lite.fdf.index.FDFIndex` (chapter 11).

:func:`scan` applies :class:`aigfd_lite.fdf.FDFLayout`'s rules (faces without photo id, JSON, EXIF, usable tag, box
or manipulated files are skipped and counted) to every face, in FDF's numeric name order. Two things make it fast
enough for FDF's 1.47 M faces: the photos' JSON files are read by worker processes (one per CPU), and each EXIF
string is parsed once per distinct value (FDF repeats a few hundred apertures, exposures, focal lengths and ISOs).
"""
from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from ..camera import TAGS
from ..exif import FLICKR_KEYS, flickr
from .id_map import load_id_map
from ..runtime import progress_bar as tqdm

EXIF_DIR = "fdf_ccby2_exif_update_filtered_v2"
N_MANIPULATED = 4
INDEX_VERSION = 1
#: The Flickr EXIF strings kept per face (the four ordinal tags' raw text).
EXIF_FIELDS: tuple[str, ...] = ("Aperture Value", "Exposure Time", "Focal Length", "ISO Speed Ratings")
ARRAYS = ("names", "photo_ids", "tags", "boxes", "landmarks", "n_manipulated", "exif")
#: The package's own EXIF parsers by a token that names what they compute, not where they live: an index's
#: settings record the token, so moving a parser to another module leaves every index and run identity unchanged.
#: Give a parser a new token (``-v2``) when its output changes. Looked up by the function object itself
#: (:func:`_registered_parsers`), never by ``__module__``/``__qualname__``.
PARSER_TOKENS: dict[str, str] = {"parse_flickr_exif": "aigfd-exif-v1",
                                 "parse_flickr_exif_published": "aigfd-exif-published-v1"}
#: What each token stands for in the data's hash and the index's cache key: frozen. These are the module paths the
#: parsers had when full-profile runs were first stored (their identities were hashed from them); they are now
#: plain strings, kept so that those indexes and runs stay valid. Never edit one; a new token gets its own.
HASH_SPELLING: dict[str, str] = {"aigfd-exif-v1": "aigfd_lite.flickr.parse_flickr_exif",
                                 "aigfd-exif-published-v1": "aigfd_lite.flickr.parse_flickr_exif_published"}
#: The names older indexes recorded for the package's parsers (their module paths, before and after the
#: ``exif``/``flickr`` split) -> token: such an index is read as the same data (:func:`upgrade_header`).
LEGACY_PARSER_NAMES: dict[str, str] = {
    "aigfd_lite.flickr.parse_flickr_exif": "aigfd-exif-v1",
    "aigfd_lite.exif.parse_flickr_exif": "aigfd-exif-v1",
    "aigfd_lite.flickr.parse_flickr_exif_published": "aigfd-exif-published-v1",
    "aigfd_lite.exif.parse_flickr_exif_published": "aigfd-exif-published-v1",
}
#: Parsers whose tags depend on each field alone, so a field's value can be parsed once and remembered.
PER_FIELD_PARSERS = frozenset({"aigfd-exif-v1", "aigfd-exif-published-v1"})
PARALLEL_FROM = 20_000  # photos; fewer are read in this process (workers cost ~1 s to start)


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


def _registered_parsers() -> dict[int, str]:
    """``id(function) -> token`` of the package's own parsers (:data:`PARSER_TOKENS`), wherever they live."""
    return {id(getattr(flickr, name)): token for name, token in PARSER_TOKENS.items()}


def _parser_name(parse: Callable) -> Optional[str]:
    """The name an index records for ``parse``: the package's own parsers' stable token (:data:`PARSER_TOKENS`,
    independent of their module), else ``module.qualname``, which is *not* stable (moving or renaming such a
    parser makes its indexes, and runs named by them, another data set); None for a lambda or closure (such an
    index is never cached)."""
    token = _registered_parsers().get(id(parse))
    if token is not None:
        return token
    qualname = getattr(parse, "__qualname__", "<unknown>")
    return None if "<" in qualname else f"{parse.__module__}.{qualname}"


def parser_spelling(name: Optional[str]) -> Optional[str]:
    """What a recorded parser name stands for in the data's hash and the cache key: a token's frozen spelling
    (:data:`HASH_SPELLING`), a legacy name's token's, any other name itself."""
    token = LEGACY_PARSER_NAMES.get(name, name) if isinstance(name, str) else name
    return HASH_SPELLING.get(token, token) if isinstance(token, str) else token


def hashed_settings(settings: dict) -> dict:
    """An index's settings as they enter its data hash: the parser by its frozen spelling."""
    return {**settings, "parse_exif": parser_spelling(settings.get("parse_exif"))}


def upgrade_header(header: dict, arrays: dict[str, np.ndarray]) -> dict:
    """An index header read from disk, with an older name of the package's parser replaced by its token; if the
    data hash was computed from another spelling than the frozen one (an index written before the ``flickr``
    split), it is recomputed from the arrays, so the same data has one identity however it was recorded."""
    settings = header.get("settings") or {}
    name = settings.get("parse_exif")
    token = LEGACY_PARSER_NAMES.get(name) if isinstance(name, str) else None
    if token is None:
        return header
    header = {**header, "settings": {**settings, "parse_exif": token}}
    if name != HASH_SPELLING[token]:
        header["data_hash"] = _hash_arrays(arrays, hashed_settings(header["settings"]))
    return header


class TagReader:
    """One photo's JSON -> (skip reason or "", the four EXIF strings, tags (4,) in TAGS order, NaN = unparseable)."""

    def __init__(self, parse: Callable) -> None:
        self.parse, self.keys = parse, {t: FLICKR_KEYS[t] for t in TAGS}
        self.per_field = _parser_name(parse) in PER_FIELD_PARSERS
        self.cache: dict[tuple, tuple] = {}

    def _whole(self, exif: dict) -> np.ndarray:
        parsed = self.parse(exif)
        return np.array([np.nan if getattr(parsed, t) is None else float(getattr(parsed, t)) for t in TAGS])

    def tags(self, exif: dict) -> np.ndarray:
        if not self.per_field:
            return self._whole(exif)
        out = np.full(len(TAGS), np.nan)
        for tag in TAGS:
            key = next((k for k in self.keys[tag] if k in exif), None)
            if key is None:
                continue
            try:
                values = self.cache.get((key, exif[key]))
            except TypeError:  # an unhashable value: parse the whole record
                return self._whole(exif)
            if values is None:
                values = tuple(self._whole({key: exif[key]}))
                self.cache[(key, exif[key])] = values
            for j, v in enumerate(values):  # a parser may move a field to another tag (the code's swap)
                if not np.isnan(v):
                    out[j] = v
        return out

    def __call__(self, path: Path) -> tuple[str, list[str], np.ndarray]:
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
        tags = self.tags(exif)
        return ("no_tags" if np.isnan(tags).all() else ""), strings, tags


_WORKER_READER: Optional[TagReader] = None  # set before forking; each worker keeps its own cache


def _read_chunk(paths: list) -> list[tuple]:
    return [_WORKER_READER(p) for p in paths]


def read_all(paths: list, parse: Callable, workers: Optional[int] = None, progress: bool = False) -> list:
    """:class:`TagReader` over ``paths`` in order, in ``workers`` forked processes (default: one per CPU when
    there are at least :data:`PARALLEL_FROM` paths; where fork is unavailable, in this process)."""
    global _WORKER_READER

    if workers is None:
        workers = (os.cpu_count() or 1) if len(paths) >= PARALLEL_FROM else 1
    _WORKER_READER = TagReader(parse)
    chunks = [paths[i:i + 2000] for i in range(0, len(paths), 2000)]
    bar = tqdm(total=len(paths), desc="indexing FDF", unit="photo", disable=not progress, mininterval=5)
    out: list = []
    try:
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            gc.freeze()  # the workers share this process's objects; the collector must not touch (copy) them
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for part in pool.imap(_read_chunk, chunks):
                    out += part
                    bar.update(len(part))
        else:
            for chunk in chunks:
                out += _read_chunk(chunk)
                bar.update(len(chunk))
    finally:
        gc.unfreeze()
        bar.close()
        _WORKER_READER = None
    return out


def _hash_arrays(arrays: dict[str, np.ndarray], settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for key in ARRAYS:
        a = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _keep_two_fields(obj: dict) -> Any:
    # Called by the JSON parser for every object as soon as it is read: a face's entry (a dozen fields) shrinks to
    # the two fields the loader serves before the next one is read, so memory follows the faces, not the file.
    if "bounding_box" in obj or "landmark" in obj:
        return (obj.get("bounding_box"), obj.get("landmark"))
    return obj


def read_metainfo(path: Path) -> dict[str, tuple]:
    """FDF's metadata JSON reduced to name -> (bounding_box, landmark): the two fields the loader serves."""
    with open(path) as fh:
        meta = json.load(fh, object_hook=_keep_two_fields)
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a mapping FDF name -> metadata")
    return {str(k): (v if isinstance(v, tuple) else (None, None)) for k, v in meta.items()
            if isinstance(v, (tuple, dict))}


def _as_array(value: Any, shape: tuple) -> Optional[np.ndarray]:
    try:
        a = np.asarray(value, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError):
        return None
    return a if np.all(np.isfinite(a)) else None


