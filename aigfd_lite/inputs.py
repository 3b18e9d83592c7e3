"""What a chapter reads, checked before its first expensive step (every chapter's config cell, chapter 0).

A chapter's config cell calls ``resolve(profile, ..., needs=(...))``; :func:`require` then checks, in seconds:

* ``"data_root"``: the full profile has a ``data_root`` (the folder of the paper's data);
* ``"training"`` / ``"test"``: that folder's ``SSL_training_data/`` (FDF, EXIF JSONs, id map, boxes) or ``data/``
  (CelebA-HQ lists, the nine generators) passes the check of ``python -m aigfd_lite.data check`` (on a small
  sample of files); in any profile when ``data_root`` is given, always in the full profile;
* ``"landmarks"``: with ``landmark_backend = "fan"``, FAN's weights are in torch hub's cache, or their host answers
  a 2-second connection (where it does not, the download is named before it is tried).

Each failure is one :class:`MissingInputError` whose message names what is missing and where to read how to get it.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

from . import profiles

#: The chapter that takes a reader from nothing to a checked data folder.
DATA_CHAPTER = "chapter 11, \"Getting the paper's data\" (book/11_paper_data.md)"
NEEDS = ("data_root", "training", "test", "landmarks")
#: Files checked per part of the layout: enough to find a folder of broken files, cheap on a mounted Drive.
SAMPLE = 4
#: FAN's weight files (face-alignment 1.4's URLs: S3FD, the face detector it builds first, and 2DFAN4); the
#: installed package's own table is used when it can be imported.
FAN_URLS = ("https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
            "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar")
NETWORK_TIMEOUT = 2.0  # seconds for the connection test


class MissingInputError(RuntimeError):
    """Something a chapter reads is missing (data, or a download that cannot happen); the message says how to get
    it, or what to use instead."""


class MissingDataError(MissingInputError):
    """The paper's data: no ``data_root``, or a folder that fails ``python -m aigfd_lite.data check``."""


class DownloadUnavailable(MissingInputError):
    """Weights that are not cached and cannot be downloaded from here."""


def resolve(profile: str, *, settings: Any = None, needs: Sequence[str] = (), **overrides: Any) -> profiles.Profile:
    """:func:`aigfd_lite.profiles.resolve` (the profile with ``settings`` and ``overrides``, every value checked), then
    :func:`require` on ``needs``: what the chapter reads (``"data_root"``, ``"training"``, ``"test"``,
    ``"landmarks"``), checked before any expensive step. Raises :class:`~aigfd_lite.specs.ProfileError` for a bad
    profile or setting and :class:`MissingInputError` for a missing input. This is ``aigfd_lite.resolve``."""
    cfg = profiles.resolve(profile, settings=settings, **overrides)
    if needs:
        require(cfg, needs)
    return cfg


def require(cfg: Any, needs: Sequence[str]) -> None:
    """Check what ``needs`` names for profile ``cfg`` (see the module docstring); raise one
    :class:`MissingInputError` naming the first thing missing."""
    needs = (needs,) if isinstance(needs, str) else tuple(needs)
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"unknown need(s) {unknown}; choose among {NEEDS}")
    data = [n for n in ("training", "test") if n in needs]
    if cfg.name == "full" and (data or "data_root" in needs) and not cfg.data_root:
        raise MissingDataError(
            "the full profile needs data_root: the folder that holds the paper's data (SSL_training_data/ for "
            "training, data/ for the test sets); set data_root in the parameters cell (papermill: -p data_root "
            f"/path). How to get it and check it: {DATA_CHAPTER}")
    if cfg.data_root and data:
        check_data(cfg.data_root, data)
    if "landmarks" in needs and cfg.landmark_backend == "fan":
        check_fan()


def check_data(root: str, parts: Sequence[str], sample: int = SAMPLE) -> None:
    """Raise :class:`MissingDataError` when a required part of ``parts`` (``"training"``, ``"test"``) under
    ``root`` is missing or unusable, as ``python -m aigfd_lite.data check`` would report it."""
    # imported here, not at the top: `import aigfd_lite` stays free of scipy, torch
    from .data import check_layout

    failed = []
    for part in parts:
        try:
            reports = check_layout(root, only=part, sample=sample)
        except FileNotFoundError as err:
            raise MissingDataError(f"data_root: {err}. How to get the paper's data: {DATA_CHAPTER}") from None
        failed += [f"{r.part} ({r.note})" if r.note else r.part for r in reports if r.failed]
    if failed:
        raise MissingDataError(
            f"data_root {root} lacks what this chapter reads: {'; '.join(failed)}. Run `python -m aigfd_lite.data "
            f"check {root}` for the whole report; how to get the missing parts: {DATA_CHAPTER}")


def fan_urls() -> tuple[str, ...]:
    """The URLs face-alignment downloads FAN's weights from (its own tables where it imports)."""
    try:
        # imported here, not at the top: `import aigfd_lite` stays free of face_alignment (optional: the FAN backend)
        from face_alignment.api import models_urls
        from face_alignment.detection.sfd.sfd_detector import models_urls as detector_urls

        return (detector_urls["s3fd"], models_urls["2DFAN-4"])
    except Exception:  # noqa: BLE001 - not installed, or another version's layout: the pinned table
        return FAN_URLS


def hub_checkpoints() -> Path:
    """Torch hub's checkpoint cache, where face-alignment keeps FAN's weights ($TORCH_HOME/hub/checkpoints)."""
    if "torch" in sys.modules:  # honours torch.hub.set_dir; otherwise torch's own rule, without importing it
        return Path(sys.modules["torch"].hub.get_dir()) / "checkpoints"
    home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
    return Path(home).expanduser() / "hub" / "checkpoints"


def reachable(host: str, port: int = 443, timeout: float = NETWORK_TIMEOUT) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds (DNS failure: no)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_fan(connect: Callable[[str], bool] = reachable) -> None:
    """Raise :class:`DownloadUnavailable` when FAN's weights are not cached and their host does not answer."""
    folder = hub_checkpoints()
    missing = [u for u in fan_urls() if not (folder / Path(urlparse(u).path).name).is_file()]
    if not missing:
        return
    host = urlparse(missing[0]).hostname
    if connect(host):
        return
    raise DownloadUnavailable(
        f"landmark_backend='fan': FAN's weights are not in {folder} and would be downloaded from "
        f"{', '.join(missing)}, but {host} cannot be reached from here; offline set landmark_backend='dlib' "
        "(settings={'landmark_backend': 'dlib'}), or copy the files into that folder")
