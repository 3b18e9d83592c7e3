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

The module is split at its seams: :mod:`aigfd_lite.fdf.id_map` (the safe id-map loader), :mod:`aigfd_lite.fdf.scan`
(reading the layout once), :mod:`aigfd_lite.fdf.index` (the index file that later starts read in seconds) and this
one (the layout as items); every public name stays importable from here.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional, Union

import numpy as np
from ..images import load_rgb

from .index import FDFIndex, fingerprint, load_or_build, scan  # noqa: F401
from .scan import EXIF_DIR, EXIF_FIELDS, N_MANIPULATED, LayoutPaths  # noqa: F401
from .id_map import (SAFE_GLOBALS, RestrictedUnpickler, UnsafePickleError, convert_id_map,  # noqa: F401
                         load_id_map, safe_unpickle)

PathLike = Union[str, Path]


# ------------------------------------------------------------------------------------------------ the layout
class FDFItem(NamedTuple):
    """One training item: ``image`` uint8 (H, W, 3) RGB, ``tags`` float64 (4,) in TAGS order (NaN = unknown),
    ``manipulation`` 0 for the real face, ``k + 1`` for ``face_dataaug_neg/<name>_k.png``."""

    image: np.ndarray
    tags: np.ndarray
    manipulation: int


@dataclass(frozen=True)
class FDFFace:
    """One usable face: its FDF name, Flickr photo id, parsed tags, the four raw EXIF strings and image files."""

    name: str
    photo_id: str
    tags: np.ndarray
    exif: dict
    real_path: Path
    manipulated_paths: tuple[Path, ...]
    row: int = -1  # its row in the layout's index


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
    """An image file as uint8 (H, W, 3) RGB, read by :func:`aigfd_lite.images.reader.load_rgb` (the package's one reader:
    grey, palette, CMYK, 16-bit and float converted, alpha over black, EXIF orientation applied). Anything it cannot
    decode raises :class:`~aigfd_lite.images.reader.UnreadableImage` (a ``ValueError``) naming the file."""
    return load_rgb(path)


class FDFLayout:
    """The official training data (full profile) as ``(image, tags, manipulation)`` items (chapter 3).

    ``root``: ``SSL_training_data``, its parent, or the paper's ``data/`` folder beside it. ``layout[i]`` is face ``i``
    as the paper samples it: real with probability ``real_fraction``, else one of its four manipulated versions,
    drawn from a generator seeded by ``(seed, epoch, i)`` (call :meth:`set_epoch` each epoch). :meth:`item` gives a
    chosen version, :meth:`iter_items` every version of every face. ``crop_scale=None`` returns the stored 128 px
    images uncropped; ``require_manipulated=False`` keeps faces whose manipulated files are missing (they then only
    give real items). ``parse_exif`` defaults to :func:`aigfd_lite.exif.parse_flickr_exif`.

    The first start reads the layout into an index file (:mod:`aigfd_lite.fdf.index`; ``index``: None for the default
    folder, a folder, or False to scan in memory without writing; ``rebuild_index`` forces a new scan;
    ``index_workers`` processes read the JSON files, default one per CPU at FDF's scale); later starts read that
    file. ``data_hash`` identifies the data whatever the path is called.
    """

    def __init__(self, root: PathLike, *, crop_scale: Optional[float] = 1.3, real_fraction: float = 0.5,
                 seed: int = 42, require_manipulated: bool = True, image_size: int = 128,
                 parse_exif: Optional[Callable[[dict], Any]] = None, index: Union[bool, PathLike, None] = None,
                 rebuild_index: bool = False, progress: bool = True, index_workers: Optional[int] = None) -> None:
        if not 0.0 <= real_fraction <= 1.0:
            raise ValueError(f"real_fraction must lie in [0, 1], got {real_fraction}")
        self.root = find_training_root(root)
        paths = LayoutPaths.of(self.root, image_size)
        self.fdf_dir, self.exif_dir, self.neg_dir = paths.fdf_dir, paths.exif_dir, paths.neg_dir
        self.image_dir = paths.image_dir
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"no FDF images at {self.image_dir}")
        if crop_scale is not None and not paths.metainfo.is_file():
            raise FileNotFoundError(f"{paths.metainfo} is needed for the paper's face crop (or pass crop_scale=None)")
        self.crop_scale, self.real_fraction, self.seed = crop_scale, float(real_fraction), int(seed)
        self.epoch = 0
        # One file read at a warm start; built once per layout and settings (aigfd_lite.fdf.index).
        self.index: FDFIndex = load_or_build(self.root, index=index, rebuild=rebuild_index, progress=progress,
                                             workers=index_workers,
                                             crop=crop_scale is not None, require_manipulated=require_manipulated,
                                             image_size=image_size, parse_exif=parse_exif)
        self.skips: Counter = self.index.skips
        self.missing_tags: Counter = self.index.missing_tags  # kept faces with some (not all) tags unparseable
        self.faces = FaceList(self.index, self.image_dir, self.neg_dir)
        self._rows: Optional[dict[str, int]] = None

    @property
    def data_hash(self) -> str:
        """The data's identity (names, ids, tags, boxes and settings), independent of the path's spelling."""
        return self.index.data_hash

    # -------------------------------------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.faces)

    def set_epoch(self, epoch: int) -> None:
        """Items drawn by ``layout[i]`` depend on (seed, epoch, i)."""
        self.epoch = int(epoch)

    def _row(self, name: str) -> Optional[int]:
        if self._rows is None:  # built on first use only: a dict of every name costs memory at FDF's scale
            self._rows = {n.decode("utf-8"): i for i, n in enumerate(self.index.names)}
        return self._rows.get(name)

    def box(self, name: str) -> Optional[np.ndarray]:
        """A usable face's FDF box ``[x0, y0, x1, y1]`` in [0, 1] of the 128 px image (from ``fdf_metainfo.json``),
        or None (unknown or skipped face, or no metadata)."""
        row = self._row(name)
        box = None if row is None else self.index.boxes[row]
        return None if box is None or np.isnan(box).any() else box

    def landmarks(self, name: str) -> Optional[np.ndarray]:
        """FDF's 7 keypoints (nose, r/l eye, r/l ear, r/l shoulder) as (7, 2) in [0, 1], or None. These are not the
        68 iBUG points the manipulations need; the published manipulated files were made with FAN landmarks."""
        row = self._row(name)
        points = None if row is None else self.index.landmarks[row].astype(np.float64)
        return None if points is None or np.isnan(points).any() else points

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
        box = self.index.boxes[face.row] if face.row >= 0 else self.box(face.name)
        left, top, right, bottom = crop_box(box, image.shape[1], image.shape[0], self.crop_scale)
        return np.ascontiguousarray(image[top:bottom, left:right])

    def item(self, index: int, manipulation: int = 0) -> FDFItem:
        face = self.faces[index]
        return FDFItem(self.load(face, manipulation), face.tags.copy(), int(manipulation))

    def __getitem__(self, index: int) -> FDFItem:
        if not 0 <= index < len(self):
            raise IndexError(f"face {index} out of range for {len(self)} faces")
        return self.item(index, self.manipulation_of(index))

    def manipulation_of(self, index: int) -> int:
        """The version face ``index`` shows in the current epoch: 0 (real) or ``k`` (``<name>_{k-1}.png``)."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        n_neg = len(self.faces[index].manipulated_paths)
        real = n_neg == 0 or rng.random() < self.real_fraction
        return 0 if real else int(rng.integers(1, n_neg + 1))

    def iter_items(self) -> Iterator[FDFItem]:
        """Every version of every face (real first). Unreadable files are counted in ``skips["unreadable_image"]``
        and left out, never silently."""
        for index, face in enumerate(self.faces):
            for manipulation in range(len(face.manipulated_paths) + 1):
                try:
                    yield self.item(index, manipulation)
                except (OSError, ValueError):
                    self.skips["unreadable_image"] += 1


class FaceList(Sequence):
    """The usable faces as :class:`FDFFace` records, made on access from the index's arrays (a list of a million
    Python objects would cost gigabytes, and DataLoader workers would copy it page by page)."""

    def __init__(self, index: FDFIndex, image_dir: Path, neg_dir: Path) -> None:
        self.index, self.image_dir, self.neg_dir = index, image_dir, neg_dir

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(f"face {i} out of range for {len(self)} faces")
        i = i % len(self)
        ix = self.index
        name = ix.name(i)
        negs = tuple(self.neg_dir / f"{name}_{k}.png" for k in range(int(ix.n_manipulated[i])))
        exif = {f: v.decode("utf-8") for f, v in zip(EXIF_FIELDS, ix.exif[i])}
        return FDFFace(name, ix.photo_ids[i].decode("utf-8"), ix.tags[i].copy(), exif,
                       self.image_dir / f"{name}.png", negs, i)
