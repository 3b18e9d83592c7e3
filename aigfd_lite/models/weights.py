"""The network's starting points and the authors' released model: one registry of downloadable weights (chapter 4).

Every file the book may download is one :class:`WeightFile` in :data:`REGISTRY`: its URL, how to fetch it (plain
HTTPS with ``urllib``, or Google Drive with the optional ``gdown`` package, imported only when needed), and its
sha256. :func:`fetch` downloads into the cache atomically (a temporary file, hashed while it streams, renamed only
once it checks out) and :func:`load_state` reads it with ``torch.load(weights_only=True)``, so no code inside a
downloaded file can run. Offline, or on any failure, :class:`WeightsUnavailable` says what to do instead.

**Unverified files.** torchvision publishes the first 8 hex digits of each file's sha256 in its name; the book
checks them. The authors' two checkpoints (Google Drive) come with no published hash, so their entries have
``sha256=None`` and follow trust on first use: the first download is accepted, its sha256 is recorded beside it
(``<file>.sha256``) and printed with the advice to pin it in :data:`REGISTRY`; every later use is checked against
the record, so a file that changes or rots is refused. Pass ``sha256=`` to :func:`fetch` to pin a hash yourself.

Cache: ``$AIGFD_STORE/weights`` (a Google Drive folder on Colab, see :mod:`aigfd_lite.storage`), else
``$AIGFD_CACHE/weights``, else ``~/.cache/aigfd_lite/weights``. A file put there by hand (e.g. downloaded in a
browser) under the registry's file name is used as is, after the hash check.

The network's initialisations that read these files: :mod:`aigfd_lite.models.initialisation`.
"""
from __future__ import annotations

import logging
import os
import pickle
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch

from .. import storage
from ..fetch import sha256_of  # noqa: F401 (one hashing function for every download)
from .network import _state_dict_of

log = logging.getLogger(__name__)
PathLike = Union[str, Path]


@dataclass(frozen=True)
class WeightFile:
    """One downloadable file. ``via``: ``"https"`` (urllib) or ``"gdrive"`` (needs ``pip install gdown``).
    ``sha256``: full hex digest, or None (unverified: trust on first use); ``sha256_prefix``: the leading digits
    a publisher embeds in the file name (torchvision), checked when no full digest is known."""

    name: str
    filename: str
    url: str
    via: str
    sha256: Optional[str]
    sha256_prefix: Optional[str] = None
    size: Optional[int] = None
    about: str = ""


_DRIVE = "https://drive.google.com/uc?id="
#: The one registry of downloadable weights.
REGISTRY: dict[str, WeightFile] = {w.name: w for w in (
    WeightFile("resnet50-imagenet1k-v1", "resnet50-0676ba61.pth",
               "https://download.pytorch.org/models/resnet50-0676ba61.pth", "https", None, "0676ba61",
               about="torchvision ResNet-50 IMAGENET1K_V1 (BSD-3; ImageNet terms): the published code's base"),
    WeightFile("resnet50-imagenet1k-v2", "resnet50-11ad3fa6.pth",
               "https://download.pytorch.org/models/resnet50-11ad3fa6.pth", "https", None, "11ad3fa6",
               about="torchvision ResNet-50 IMAGENET1K_V2: init='imagenet'"),
    WeightFile("exif-lan", "exif_pretrained.pth", _DRIVE + "17MW-fZRRQQ8dSRv52X_9DmcmdQD7TmHZ", "gdrive", None,
               about="the authors' EXIF-pretrained ResNet-50 (EXIF-as-language), the paper's init; unverified"),
    WeightFile("released", "aigfd_exif_our_model.pth", _DRIVE + "1rpKta773mA-hgKOoycZODUAbNpDUyZ8f", "gdrive", None,
               about="the authors' trained model ('our model' in their README); unverified"),
)}


class WeightsUnavailable(RuntimeError):
    """A file could not be had (offline, gdown missing, download failed); the message names the alternatives."""


class HashMismatch(ValueError):
    """A file's sha256 differs from the registry's or from the hash recorded at its first download."""


def weights_dir() -> Path:
    """``$AIGFD_STORE/weights``, else ``$AIGFD_CACHE/weights``, else ``~/.cache/aigfd_lite/weights``."""
    base = os.environ.get("AIGFD_CACHE") or Path.home() / ".cache" / "aigfd_lite"
    return storage.store_path("weights", default=Path(base).expanduser() / "weights")


def _check(entry: WeightFile, digest: str, path: Path, expected: Optional[str]) -> None:
    """Refuse ``path`` unless ``digest`` matches the pinned hash, the name's prefix, or the first-use record."""
    record = path.with_name(path.name + ".sha256")
    if expected is None and record.is_file():
        expected = record.read_text().split()[0]
    if expected is not None:
        if digest != expected.lower():
            raise HashMismatch(f"{path}: sha256 {digest} differs from the expected {expected} ({entry.name}); "
                               f"delete the file and download it again, or check where it came from")
    elif entry.sha256_prefix is not None:
        if not digest.startswith(entry.sha256_prefix):
            raise HashMismatch(f"{path}: sha256 {digest[:16]}... does not start with {entry.sha256_prefix}, the "
                               f"prefix torchvision publishes in the file name ({entry.name})")
    else:
        record.write_text(f"{digest}  {path.name}\n")
        message = (f"unverified: {entry.name} has no published sha256; accepted on first use and recorded in "
                   f"{record}: sha256={digest}. Pin it in aigfd_lite.models.weights.REGISTRY.")
        log.warning(message)
        print(message)
    if entry.size is not None and path.stat().st_size != entry.size:
        raise HashMismatch(f"{path}: {path.stat().st_size} bytes, expected {entry.size} ({entry.name})")


def _https(url: str, out: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(out, "wb") as fh:
        while block := response.read(1 << 20):
            fh.write(block)


def _gdrive(url: str, out: Path, timeout: float) -> None:
    try:
        # imported here, not at the top: `import aigfd_lite.blades` stays free of gdown (optional)
        import gdown
    except ImportError as err:
        raise WeightsUnavailable("this file is on Google Drive, which needs the gdown package: "
                                 "pip install gdown (Colab has it)") from err
    try:
        result = gdown.download(url, str(out), quiet=True)
    except Exception as err:  # gdown >= 5 raises its own FileURLRetrievalError (quota, permission, offline)
        raise OSError(f"gdown could not download {url}: {err}") from err
    if result is None or not out.is_file() or out.stat().st_size == 0:
        raise OSError(f"gdown could not download {url} (quota exceeded, access denied, or offline)")


#: Downloaders by ``WeightFile.via``; tests swap in local stand-ins.
DOWNLOADERS: dict[str, Callable[[str, Path, float], None]] = {"https": _https, "gdrive": _gdrive}


def _alternatives(entry: WeightFile, target: Path) -> str:
    other = {"exif-lan": "init='imagenet' or init='random'", "released": "training your own model (chapter 4)",
             }.get(entry.name, "init='random'")
    return (f"Offline, use {other}, or pass the path of a local checkpoint; or download {entry.url} by hand and "
            f"put it at {target}. On Colab the download works.")


def fetch(name: str, *, cache: Optional[PathLike] = None, sha256: Optional[str] = None,
          timeout: float = 30.0) -> Path:
    """The local path of registry file ``name``: from the cache (hash-checked) or downloaded atomically."""
    if name not in REGISTRY:
        raise KeyError(f"unknown weights {name!r}; the registry has {sorted(REGISTRY)}")
    entry = REGISTRY[name]
    expected = sha256 or entry.sha256
    folder = Path(cache).expanduser() if cache is not None else weights_dir()
    target = folder / entry.filename
    if not target.is_file():  # torchvision's own cache (Colab may have it already)
        hub = Path(torch.hub.get_dir()) / "checkpoints" / entry.filename
        if entry.via == "https" and hub.is_file():
            target = hub
    if target.is_file():
        _check(entry, sha256_of(target), target, expected)
        return target

    def download(tmp: str) -> None:
        DOWNLOADERS[entry.via](entry.url, Path(tmp), timeout)
        _check(entry, sha256_of(Path(tmp)), target, expected)

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # an unreachable host fails in seconds, not minutes
    try:
        storage.atomic_write(target, download, prefix=entry.filename, mode=None, mkdir=True)
    except HashMismatch:
        raise
    except WeightsUnavailable as err:  # gdown missing
        raise WeightsUnavailable(f"cannot download {entry.name}: {err}. {_alternatives(entry, target)}") from err
    except (OSError, urllib.error.URLError, socket.timeout, ValueError) as err:
        raise WeightsUnavailable(f"cannot download {entry.name} ({entry.url}): {err}. "
                                 f"{_alternatives(entry, target)}") from err
    finally:
        socket.setdefaulttimeout(previous)
    return target


def read_state(path: PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, read with ``torch.load(weights_only=True)`` (nothing in it can run code).
    Accepts a bare state dict or one under ``model`` / ``state_dict`` / ``model_state_dict`` / ``net``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (init must be 'random', 'imagenet', "
                                f"'exif-lan', 'released' or a file)")
    try:
        return _state_dict_of(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err


def load_state(name: str, **fetch_kwargs: Any) -> dict[str, torch.Tensor]:
    """Fetch registry file ``name`` and read its tensors safely."""
    return read_state(fetch(name, **fetch_kwargs))
