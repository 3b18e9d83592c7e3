"""The ``aigfd`` command (also ``python -m aigfd_lite.cli``): ``aigfd score`` and ``aigfd bundle`` (chapter 9).

``aigfd score PATH... [--bundle DIR] [--format table|csv|json] [--out FILE]`` prints one row per face: file, face
index, box (x0, y0, x1, y1 in the photo's pixels), log-likelihood, threshold, verdict ("photograph" or
"ai-generated"), error and note; a file or folder that cannot be read, or a file with no scorable face, gets one
row with an ``error``; a ``note`` says what limits a row (see :mod:`aigfd_lite.score`). Exit status: 0 when every
input was read, 1 when at least one file or folder could not be read, 2 for a usage error, a missing or damaged
bundle or an ``--out`` that cannot be written (checked before scoring). No traceback is printed for a bad input;
``--format json`` is strict JSON.

``aigfd bundle [--profile lite] [--run-name ours] [--out DIR]`` fits chapter 5's detector on a finished training
run and writes the bundle (default ``_build/bundle``).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Sequence, TextIO

from .profiles import resolve
from .score import BundleError, ROW_KEYS, ScoreStats, build_bundle, load_bundle, score_files
from .storage import PendingFile, pending_file

EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE = 0, 1, 2


def _cell(key: str, value) -> str:
    if value is None:
        return ""
    if key == "box":
        return " ".join(str(v) for v in value)
    if key == "log_likelihood" or key == "threshold":
        return f"{value:.2f}"
    return str(value)


def format_rows(rows: list[dict], fmt: str) -> str:
    """The rows as an aligned text table, CSV (box as "x0 y0 x1 y1") or a JSON list of objects."""
    if fmt == "json":
        return json.dumps([{k: r[k] for k in ROW_KEYS} for r in rows], indent=1, allow_nan=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ROW_KEYS)
        for r in rows:
            writer.writerow(["" if r[k] is None else (" ".join(map(str, r[k])) if k == "box" else r[k])
                             for k in ROW_KEYS])
        return out.getvalue()
    cells = [list(ROW_KEYS)] + [[_cell(k, r[k]) for k in ROW_KEYS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(ROW_KEYS) - 1)]
    lines = ["  ".join([c.ljust(w) for c, w in zip(row[:-1], widths)] + [row[-1]]).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


def _reserve(out: str) -> PendingFile:
    """A temporary file beside ``out`` (proof that it can be written, before minutes of scoring); it replaces
    ``out`` at the end, or is removed."""
    if Path(out).is_dir():
        raise IsADirectoryError(f"{out} is a folder; name a file")
    return pending_file(out, mkdir=True)  # 0644: the rows are an ordinary readable file


def _score(args, stdout: TextIO, stderr: TextIO) -> int:
    try:
        bundle = load_bundle(args.bundle)
    except BundleError as err:
        stderr.write(f"aigfd score: {err}\n")
        return EXIT_USAGE
    # imported here, not at the top: `import aigfd_lite.cli` stays free of pandas
    from .faces import LandmarkBackendUnavailable

    tmp = None
    try:
        if args.out is not None:
            try:
                tmp = _reserve(args.out)
            except OSError as err:
                stderr.write(f"aigfd score: cannot write {args.out}: {err}\n")
                return EXIT_USAGE
        stats = ScoreStats()
        try:
            rows = list(score_files(args.paths, bundle, stats, face_detector=args.face_detector))
        except LandmarkBackendUnavailable as err:
            stderr.write(f"aigfd score: --face-detector fan: {err}\n")
            return EXIT_USAGE
        text = format_rows(rows, args.format)
        if tmp is None:
            stdout.write(text)
        else:
            try:
                Path(tmp.path).write_text(text)
                tmp.commit()
            except OSError as err:
                stderr.write(f"aigfd score: cannot write {args.out}: {err}\n")
                return EXIT_USAGE
    finally:
        if tmp is not None:
            tmp.discard()
    stderr.write(f"aigfd score: {stats.files} file(s), {stats.faces} face(s) scored, {stats.unreadable} "
                 f"unreadable (files or folders), {stats.without_face} without a scorable face, "
                 f"{stats.repeated_folders} folder(s) not walked twice, {stats.ignored_files} other file(s) ignored "
                 f"by suffix; {stats.seconds:.1f} s ({stats.images_per_second:.2f} images/s)\n")
    return EXIT_UNREADABLE if stats.unreadable else EXIT_OK


def _bundle(args, stdout: TextIO, stderr: TextIO) -> int:
    try:
        cfg = resolve(args.profile, data_root=args.data_root)
        folder = build_bundle(cfg, args.run_name, args.out)
    except (FileNotFoundError, FileExistsError) as err:
        stderr.write(f"aigfd bundle: {err}\n")
        return EXIT_USAGE
    except ValueError as err:
        stderr.write(f"aigfd bundle: {err}\n")
        return EXIT_USAGE
    stdout.write(f"{folder}\n")
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aigfd", description="Detect AI-generated faces as anomalies of real ones.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="score the faces in image files and folders (recursively)")
    s.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders")
    s.add_argument("--bundle", default=None, metavar="DIR", help="detector bundle (default: _build/bundle)")
    s.add_argument("--format", choices=("table", "csv", "json"), default="table")
    s.add_argument("--out", default=None, metavar="FILE", help="write the rows here instead of to stdout")
    s.add_argument("--face-detector", choices=("dlib", "fan"), default="dlib",
                   help="dlib's HOG (offline, as the bundle's faces were cut) or FAN's S3FD (the paper's; "
                        "downloads its weights, e.g. on Colab)")
    b = sub.add_parser("bundle", help="build a detector bundle from a finished training run")
    b.add_argument("--profile", default="lite")
    b.add_argument("--run-name", default="ours")
    b.add_argument("--data-root", default=None, help="full profile: the folder holding the paper's data/")
    b.add_argument("--out", default=None, metavar="DIR", help="bundle folder (default: _build/bundle)")
    return p


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:  # argparse has printed the usage message
        return int(stop.code or 0) and EXIT_USAGE
    return _score(args, stdout, stderr) if args.command == "score" else _bundle(args, stdout, stderr)


if __name__ == "__main__":
    raise SystemExit(main())
