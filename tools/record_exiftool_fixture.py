"""Record exiftool's reading of the real camera files once, as the reference for tests/exif/test_exif.py.

exiftool (Debian: ``apt-get install libimage-exiftool-perl``) is the reference EXIF reader; tests compare
:func:`aigfd_lite.exif.read_exif` with its numbers. Run once, commit the small JSON; the tests need no exiftool:

    .venv/bin/python tools/record_exiftool_fixture.py          # writes tests/fixtures/exiftool/camera_files.json

Only the standard EXIF directories are kept (IFD0 and the Exif IFD, ``-G1`` groups "IFD0"/"ExifIFD"), because
read_exif reads those; maker-note and composite values (e.g. Canon:FNumber) are dropped. ``-n`` gives numbers
(seconds, mm, f-number; APEX ApertureValue/ShutterSpeedValue converted to f-number and seconds).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aigfd_lite.fetch import SOURCES, files  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "exiftool" / "camera_files.json"
TAGS = ("FNumber", "ExposureTime", "FocalLength", "ISO", "Make", "MeteringMode", "ExposureMode", "WhiteBalance",
        "ExposureProgram", "ApertureValue", "ShutterSpeedValue")
GROUPS = ("ExifIFD", "IFD0")  # first wins: the Exif IFD is where the tags belong, IFD0 where some TIFFs put them
INPUTS = {"piexif-tests": "*/images/*", "face-api-demo": "*.jpg"}


def record() -> dict:
    exiftool = shutil.which("exiftool")
    if exiftool is None:
        raise SystemExit("exiftool not found: apt-get install -y libimage-exiftool-perl")
    version = subprocess.run([exiftool, "-ver"], capture_output=True, text=True, check=True).stdout.strip()
    out: dict = {
        "exiftool_version": version,
        "command": "exiftool -n -j -G1 " + " ".join(f"-{t}" for t in TAGS),
        "groups_kept": list(GROUPS),
        "sources": {name: f"{SOURCES[name].spec} ({SOURCES[name].registry})" for name in INPUTS},
        "files": {},
    }
    for source, pattern in INPUTS.items():
        paths = [p for p in files(source, pattern) if p.suffix.lower() in (".jpg", ".jpeg", ".tif", ".tiff")]
        # exiftool exits 1 when one file fails (e.g. an empty file); its JSON still lists every file.
        proc = subprocess.run([exiftool, "-n", "-j", "-G1", *[f"-{t}" for t in TAGS], *map(str, paths)],
                              capture_output=True, text=True)
        for row in json.loads(proc.stdout):
            name = Path(row.pop("SourceFile")).name
            tags = {}
            for tag in TAGS:
                for group in GROUPS:
                    if f"{group}:{tag}" in row:
                        tags[tag] = row[f"{group}:{tag}"]
                        break
            if isinstance(tags.get("Make"), str):
                tags["Make"] = tags["Make"].strip()
            out["files"][f"{source}/{name}"] = tags
    return out


def main() -> int:
    data = record()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(data['files'])} files, exiftool {data['exiftool_version']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
