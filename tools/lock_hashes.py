"""Add sha256 hashes to requirements-lock.txt, so `pip install --require-hashes -r requirements-lock.txt` works.

    python tools/lock_hashes.py [--lock requirements-lock.txt] [--wheels DIR]

(``--lock requirements-imgaug.txt`` does the same for the imgaug side environment's pins.)

Downloads the exact pinned versions as wheels (``pip download --no-deps --only-binary :all:``: no source
distribution, so no build code runs) into DIR (a temporary folder by default), hashes each file like
``pip hash`` does, and rewrites the lock as ``name==version --hash=sha256:...``. The hashes are those of the files
pip picks on this platform (Linux x86-64, CPython 3.11, the CI machine's); on another platform regenerate the lock.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

LOCK = Path(__file__).resolve().parents[1] / "requirements-lock.txt"


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> list[tuple[str, str]]:
    """(name, version) of every ``name==version`` line, hashes and comments ignored."""
    out = []
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            out.append((name.strip(), version.split()[0].strip()))
    return out


def wheel_key(path: Path) -> tuple[str, str]:
    name, version = path.name.split("-")[:2]
    return normalise(name), version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", default=str(LOCK), help="the pinned requirements file to rewrite")
    parser.add_argument("--wheels", default=None, help="download folder (default: a temporary one)")
    args = parser.parse_args(argv)
    lock = Path(args.lock)
    header = [line for line in lock.read_text().splitlines() if line.startswith("#")]
    entries = pins(lock)
    plain = "\n".join(f"{n}=={v}" for n, v in entries) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        wheels = Path(args.wheels or tmp)
        (Path(tmp) / "plain.txt").write_text(plain)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        "-r", str(Path(tmp) / "plain.txt"), "-d", str(wheels)], check=True, timeout=3600)
        digests = {wheel_key(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in wheels.glob("*.whl")}
    lines = header or ["# Exact versions for CI, with the sha256 of each wheel: install with",
                       f"#   pip install --require-hashes -r {lock.name}",
                       f"# Regenerate the hashes with `python tools/lock_hashes.py --lock {lock.name}` after changing "
                       "a version (pip freeze omits pip, setuptools and wheel: pin those a package needs too)."]
    for name, version in entries:
        digest = digests.get((normalise(name), version.split("+")[0])) or digests.get((normalise(name), version))
        if digest is None:
            raise SystemExit(f"no wheel downloaded for {name}=={version}")
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}")
    lock.write_text("\n".join(lines) + "\n")
    print(f"{len(entries)} pins hashed into {lock}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
