"""Checking a copy of the paper's data before a long run: ``python -m aigfd_lite.data check DATA_ROOT`` (chapter 11).

``DATA_ROOT`` is the folder holding ``SSL_training_data/`` (training, FDF) and ``data/`` (testing), or either one.
Per part of the official layout (reference notes, "Official data folder layout") :func:`check_layout` counts what is
present, what is missing and what cannot be read, and says whether the part is required:

* training: FDF images, id map (read with the safe unpickler), EXIF JSONs, FDF metadata (boxes), the precomputed
  manipulated files (optional: the code's option) and FDF's own arrays (optional);
* testing: ``train.txt`` (the GMM's CelebA-HQ faces), ``test.txt`` (the real test faces) and the nine generator
  folders.

"Missing" counts faces (or listed images) that lack the part; FDF has many faces without a Flickr EXIF file, so a
part is only *required-missing* (exit code 1) when it is absent altogether, none of it is present, more than half of
its checked sample cannot be read (:data:`MAX_UNREADABLE_FRACTION`), or its index file cannot be read. Readability is
checked on a seeded random sample per part (``--sample``, 0 = every file): images are decoded, JSONs parsed, arrays
loaded without pickle.

Two more rows flag *train/test overlap* (exit code 1), the same image file or the same bytes on both sides
(:func:`.overlap.shared_files`): the GMM's faces (``train.txt``) against the test sets (``test.txt`` and the
generator folders), and FDF's training faces against the test sets.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ..fdf import LayoutPaths, find_training_root, listdir, load_id_map, read_metainfo, read_rgb
from .overlap import shared_files

PathLike = Union[str, Path]
DEFAULT_SAMPLE = 200
MAX_UNREADABLE_FRACTION = 0.5  # a required part most of whose checked files cannot be read is not usable


@dataclass
class PartReport:
    """One part of the layout: counts, whether it is required, and whether it is usable."""

    part: str
    required: bool
    present: int = 0
    missing: int = 0
    unreadable: int = 0
    checked: int = 0
    note: str = ""
    broken: bool = False  # absent altogether, or its index file unreadable
    overlap: int = 0  # files also found on the other side of a train/test split (overlap rows)

    @property
    def mostly_unreadable(self) -> bool:
        return self.checked > 0 and self.unreadable > MAX_UNREADABLE_FRACTION * self.checked

    @property
    def failed(self) -> bool:
        return self.required and (self.broken or self.present == 0 or self.mostly_unreadable or self.overlap > 0)


def _sample(items: Sequence, k: Optional[int], seed: int) -> list:
    items = list(items)
    if not k or k >= len(items):
        return items
    return random.Random(seed).sample(items, k)


def _count_unreadable(paths: Sequence[Path], read: Callable[[Path], object], k: Optional[int], seed: int
                      ) -> tuple[int, int]:
    checked = _sample(paths, k, seed)
    bad = 0
    for path in checked:
        try:
            read(path)
        except Exception:  # noqa: BLE001 - any failure to read counts as unreadable, and is counted
            bad += 1
    return bad, len(checked)


def _read_image(path: Path) -> None:
    read_rgb(path)


def _read_exif_json(path: Path) -> None:
    with open(path, encoding="utf-8") as fh:
        record = json.load(fh)
    if not isinstance(record, dict) or not isinstance(record.get("EXIF"), dict):
        raise ValueError("no EXIF section")


def check_training(root: Path, sample: Optional[int] = DEFAULT_SAMPLE, seed: int = 0) -> list[PartReport]:
    """The parts of ``SSL_training_data`` (``root``)."""
    p = LayoutPaths.of(root)
    images = sorted(n[:-4] for n in listdir(p.image_dir) if n.endswith(".png"))
    out = []
    r = PartReport("training: FDF images (images/128)", True, present=len(images))
    r.broken = not p.image_dir.is_dir()
    r.unreadable, r.checked = _count_unreadable([p.image_dir / f"{n}.png" for n in images], _read_image, sample, seed)
    r.note = f"{p.image_dir}" + (" (folder absent)" if r.broken else "")
    out.append(r)

    r = PartReport("training: id map (id_vs_fdfName)", True)
    id_map: dict[str, str] = {}
    try:
        id_map = load_id_map(p.id_map)
        r.present = sum(n in id_map for n in images)
        r.missing = len(images) - r.present
        r.checked, r.note = 1, f"{len(id_map)} entries (read with the safe unpickler)"
    except FileNotFoundError as err:
        r.broken, r.note = True, str(err)
    except Exception as err:  # noqa: BLE001 - an unsafe or malformed pickle
        r.broken, r.unreadable, r.checked, r.note = True, 1, 1, f"{type(err).__name__}: {err}"[:200]
    out.append(r)

    jsons = listdir(p.exif_dir)
    have = [n for n in images if f"{id_map.get(n)}.json" in jsons]
    r = PartReport("training: EXIF JSON (one per photo)", True, present=len(have),
                   missing=sum(n in id_map for n in images) - len(have), broken=not p.exif_dir.is_dir())
    r.unreadable, r.checked = _count_unreadable([p.exif_dir / f"{id_map[n]}.json" for n in have], _read_exif_json,
                                                sample, seed)
    r.note = f"{len(jsons)} files in {p.exif_dir.name}/" if not r.broken else f"{p.exif_dir} absent"
    out.append(r)

    r = PartReport("training: FDF metadata (boxes)", True)
    try:
        meta = read_metainfo(p.metainfo)
        ok = {n for n, (box, _) in meta.items() if np.asarray(box if box is not None else [], float).shape == (4,)}
        r.present = sum(n in ok for n in images)
        r.missing, r.checked, r.note = len(images) - r.present, 1, f"{len(meta)} entries"
    except FileNotFoundError:
        r.broken, r.note = True, f"{p.metainfo} absent"
    except (ValueError, OSError, TypeError) as err:
        r.broken, r.unreadable, r.checked, r.note = True, 1, 1, f"{type(err).__name__}: {err}"[:200]
    out.append(r)

    negs = listdir(p.neg_dir)
    complete = [n for n in images if all(f"{n}_{k}.png" in negs for k in range(4))]
    r = PartReport("training: manipulated files (optional)", False, present=len(complete),
                   missing=len(images) - len(complete), note="the published code's precomputed manipulations")
    r.unreadable, r.checked = _count_unreadable([p.neg_dir / f"{n}_{k}.png" for n in complete for k in range(4)],
                                                _read_image, sample, seed)
    out.append(r)

    arrays = sorted((p.fdf_dir / "bounding_box").glob("*.npy")) + sorted((p.fdf_dir / "landmarks").glob("*.npy"))
    r = PartReport("training: FDF arrays (optional)", False, present=len(arrays), note="bounding_box/, landmarks/")
    r.unreadable, r.checked = _count_unreadable(arrays, lambda f: np.load(f, allow_pickle=False), None, seed)
    out.append(r)
    return out


def check_test(data_root: Path, sample: Optional[int] = DEFAULT_SAMPLE, seed: int = 0) -> list[PartReport]:
    """The parts of the paper's ``data/`` folder (``data_root``)."""
    # imported here, not at the top: `import aigfd_lite.data` stays free of pandas, sklearn, torchvision
    from ..evaluation import GENERATOR_FOLDERS, IMAGE_SUFFIXES, PaperLayout

    layout = PaperLayout(data_root)
    out = []
    listed: dict[str, list[Path]] = {}
    for list_name, role in (("train.txt", "GMM faces"), ("test.txt", "real test faces")):
        r = PartReport(f"test: {list_name} ({role})", True)
        try:
            found = listed[list_name] = layout.read_list(list_name)
            r.present, r.missing = len(found), layout.missing.get(list_name, 0)
            r.unreadable, r.checked = _count_unreadable(found, _read_image, sample, seed)
        except FileNotFoundError as err:
            r.broken, r.note = True, str(err)[:200]
        out.append(r)
    for generator, folder in GENERATOR_FOLDERS.items():
        path = data_root / folder
        files = sorted(f for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else []
        r = PartReport(f"test: {generator} ({folder}/)", True, present=len(files), broken=not path.is_dir())
        r.missing = int(r.broken)
        r.unreadable, r.checked = _count_unreadable(files, _read_image, sample, seed)
        r.note = "folder absent" if r.broken else ""
        out.append(r)
        listed.setdefault("generators", []).extend(files)
    if "train.txt" in listed:
        out.append(overlap_report("overlap: train.txt (GMM faces) vs test sets", listed["train.txt"],
                                  listed.get("test.txt", []) + listed.get("generators", [])))
    return out


def test_set_files(data_root: Path) -> list[Path]:
    """The test sets' image files: ``test.txt``'s faces and the generator folders' images."""
    # imported here, not at the top: `import aigfd_lite.data` stays free of pandas, sklearn, torchvision
    from ..evaluation import GENERATOR_FOLDERS, IMAGE_SUFFIXES, PaperLayout

    layout = PaperLayout(data_root)
    try:
        files = layout.read_list("test.txt")
    except FileNotFoundError:
        files = []
    for folder in GENERATOR_FOLDERS.values():
        path = data_root / folder
        files += sorted(f for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else []
    return files


def overlap_report(part: str, train: Sequence[Path], test: Sequence[Path]) -> PartReport:
    """A row flagging ``train`` files that are also test files (same file or same bytes)."""
    pairs = shared_files(train, test)
    r = PartReport(part, True, present=len(train), overlap=len(pairs))  # checked: decoded files only (none here)
    r.note = (f"OVERLAP: {len(pairs)} training file(s) also in the test sets (same file or same bytes), e.g. "
              f"{pairs[0][0]} = {pairs[0][1]}" if pairs else "no file shared (compared by file and sha256)")
    return r


def check_layout(root: PathLike, *, only: Optional[str] = None, sample: Optional[int] = DEFAULT_SAMPLE,
                 seed: int = 0) -> list[PartReport]:
    """Every part under ``root`` (``only``: "training" or "test"). A side that cannot be found is one failed row."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} does not exist")
    out = []
    training_root = None
    if only in (None, "training"):
        try:
            training_root = find_training_root(root)
            out += check_training(training_root, sample, seed)
        except FileNotFoundError as err:
            out.append(PartReport("training: SSL_training_data", True, broken=True, missing=1, note=str(err)[:300]))
    if only in (None, "test"):
        candidates = [root / "data", root, root.parent / "data"]
        data_root = next((c for c in candidates if (c / "train.txt").is_file() or (c / "celeba-face").is_dir()), None)
        if data_root is None:
            out.append(PartReport("test: data/ (train.txt, test.txt, generators)", True, broken=True, missing=1,
                                  note="none of " + ", ".join(map(str, candidates))))
        else:
            out += check_test(data_root, sample, seed)
            if training_root is not None:
                image_dir = LayoutPaths.of(training_root).image_dir
                fdf = [image_dir / n for n in sorted(listdir(image_dir)) if n.endswith(".png")]
                out.append(overlap_report("overlap: FDF images vs test sets", fdf, test_set_files(data_root)))
    return out


def format_report(reports: Sequence[PartReport]) -> str:
    """A fixed-width table, one line per part, with a verdict line."""
    lines = [f"{'part':<44}{'required':>9}{'present':>9}{'missing':>9}{'unreadable':>11}{'checked':>9}  note"]
    for r in reports:
        flag = ("UNREADABLE " if r.required and r.mostly_unreadable else "") or ("MISSING " if r.failed and
                                                                               not r.overlap else "")
        lines.append(f"{r.part:<44}{'yes' if r.required else 'no':>9}{r.present:>9}{r.missing:>9}"
                     f"{r.unreadable:>11}{r.checked:>9}  {flag}{r.note}")
    failed = [r.part for r in reports if r.failed]
    lines.append("verdict: " + ("required parts missing, unreadable or overlapping: " + "; ".join(failed) if failed
                                else "every required part is present and readable, no train/test overlap"))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigfd_lite.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check a data folder in the official layout")
    check.add_argument("data_root")
    check.add_argument("--only", choices=("training", "test"))
    check.add_argument("--sample", type=int, default=DEFAULT_SAMPLE,
                       help="files decoded per part to find unreadable ones (0: every file)")
    check.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args(argv)
    try:
        reports = check_layout(args.data_root, only=args.only, sample=args.sample or None)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps([asdict(r) | {"failed": r.failed} for r in reports], indent=1) if args.json
          else format_report(reports))
    return 1 if any(r.failed for r in reports) else 0
