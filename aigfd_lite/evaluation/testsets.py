"""Test sets: balanced real-vs-generated sets, lite and full, with the resolution confound controlled (chapters 5-6).

**The resolution confound.** A generator that makes 64 px faces, shown to the detector at a larger size, gives
upsampled (smooth) images, while real photographs are sharp: a detector can then separate them by sharpness alone,
whatever it learned about faces. The lite protocol therefore sends *every* image through one common path,
:func:`as_tested`: down to the smallest native size of the lite generators, then up to the test size. The real
faces the GMM is fitted on, those that set its threshold, the real and generated test faces and the supervised
baseline's training faces all take it, so real faces seen in training and in testing come from one distribution
(which the held-out threshold of :mod:`aigfd_lite.detector` needs) and no generator can be spotted by its size.
``control_resolution=False`` shows, in chapter 6, what happens otherwise.

**Full profile.** :class:`PaperLayout` reads the paper's ``data/`` folder as it is distributed (reference notes):
``train.txt`` / ``test.txt`` (one CelebA-HQ image path per line; the GMM is fitted on the first 25,000 of
``train.txt``) and nine generator folders. Per generator, up to ``n`` generated images and an equally large random
sample of the test reals are drawn with seed 2024 (balanced sets); test images are used whole, resized to 224 px.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..images import UnreadableImage, as_tested, resample, through
from ..models import ImageFiles, read_resized

log = logging.getLogger(__name__)

#: The paper's nine generators -> their folder under ``data/`` (the official layout).
GENERATOR_FOLDERS: dict[str, str] = {
    "StyleGAN2": "stylegan2",
    "VQGAN": "VQ-GAN_celebahq",
    "LDM": "LDM",
    "DDIM": "DDIM",
    "SDv2.1": "stable_diffusion_v_2_1_text2img_p2g3",
    "FreeDoM": "FreeDoM_T",
    "HPS": "HPS",
    "Midjourney": "Midjourney",
    "SDXL": "SDXL",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@dataclass
class TestSet:
    """A balanced test set: ``real`` and ``fake`` uint8 (n, S, S, 3) of equal length ``n``."""

    name: str
    real: np.ndarray
    fake: np.ndarray
    native_size: Optional[int] = None
    controlled: bool = True
    skipped: int = 0  # images that could not be read (full profile), dropped in pairs to keep the balance

    def __post_init__(self) -> None:
        if len(self.real) != len(self.fake):
            raise ValueError(f"{self.name}: unbalanced test set ({len(self.real)} real, {len(self.fake)} generated)")

    def __len__(self) -> int:
        return len(self.real)


def balanced_indices(n_real: int, n_fake: int, n: int, seed: int = 2024) -> tuple[np.ndarray, np.ndarray]:
    """Equal-size random samples (sorted indices) of ``min(n, n_real, n_fake)`` reals and fakes, seeded."""
    k = min(n, n_real, n_fake)
    if k <= 0:
        raise ValueError(f"cannot balance {n_real} real and {n_fake} generated images (n={n})")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_real, k, replace=False)), np.sort(rng.choice(n_fake, k, replace=False))


def lite_test_set(name: str, real: np.ndarray, fake: np.ndarray, *, test_size: int, n: int, seed: int = 2024,
                  native_size: Optional[int] = None, control_resolution: bool = True,
                  jpeg_quality: Optional[int] = None) -> TestSet:
    """A balanced lite test set: ``n`` (at most) real test faces and generated faces, both at ``test_size``.

    ``native_size`` is the resolution every image passes through (default: the generated images' size; the lite
    protocol passes the smallest native size of all its generators), JPEG-encoded there at ``jpeg_quality``. With
    ``control_resolution`` real and generated faces both go through it (:func:`as_tested`); without, both are
    resized straight to ``test_size`` and no encoder is applied (each keeps its own format's traces).
    """
    native_size = native_size or fake.shape[1]
    ri, fi = balanced_indices(len(real), len(fake), n, seed)
    kw = dict(native_size=native_size, test_size=test_size, control_resolution=control_resolution,
              jpeg_quality=jpeg_quality)
    return TestSet(name, as_tested(real[ri], **kw), as_tested(fake[fi], **kw), native_size, control_resolution)


# --- the paper's layout (full profile) -------------------------------------------------------------------------
@dataclass
class PaperLayout:
    """The official ``data/`` folder: CelebA-HQ lists and the nine generator folders.

    Missing list entries are counted in ``missing`` (per list) and skipped, never silently lost.
    """

    data_root: Path
    missing: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_root = Path(self.data_root).expanduser()
        if not self.data_root.is_dir():
            raise FileNotFoundError(f"data root {self.data_root} does not exist (the paper's data/ folder)")

    def _resolve(self, line: str) -> Optional[Path]:
        entry = Path(line)
        candidates = [entry] if entry.is_absolute() else [self.data_root / entry]
        # Lists written on another machine hold foreign absolute paths: fall back to the file name in celeba-face/.
        candidates += [self.data_root / "celeba-face" / entry.name, self.data_root / "celeba-face" / entry]
        return next((c for c in candidates if c.is_file()), None)

    def read_list(self, list_name: str, limit: Optional[int] = None) -> list[Path]:
        """Image paths of ``train.txt`` or ``test.txt`` in file order (the first ``limit`` lines that exist)."""
        path = self.data_root / list_name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the paper's layout has data/train.txt and data/test.txt")
        found, missing = [], 0
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            if limit is not None and len(found) >= limit:
                break
            resolved = self._resolve(line)
            if resolved is None:
                missing += 1
            else:
                found.append(resolved)
        self.missing[list_name] = missing
        if missing:
            log.warning("%s: %d listed image(s) not found, skipped", list_name, missing)
        if not found:
            raise FileNotFoundError(f"none of the images listed in {path} exists under {self.data_root}")
        return found

    def gmm_train_paths(self, n: int = 25_000) -> list[Path]:
        """The GMM's training faces: the first ``n`` lines of ``train.txt``."""
        return self.read_list("train.txt", limit=n)

    def test_real_paths(self) -> list[Path]:
        return self.read_list("test.txt")

    def available_generators(self) -> list[str]:
        return [g for g, folder in GENERATOR_FOLDERS.items() if (self.data_root / folder).is_dir()]

    def generator_paths(self, generator: str) -> list[Path]:
        """Every image under the generator's folder (recursively), sorted."""
        if generator not in GENERATOR_FOLDERS:
            raise ValueError(f"unknown generator {generator!r}; known: {list(GENERATOR_FOLDERS)}")
        folder = self.data_root / GENERATOR_FOLDERS[generator]
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} not found (generator {generator})")
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not paths:
            raise FileNotFoundError(f"no images under {folder}")
        return paths

    def balanced_paths(self, n_per_generator: int = 5_000, seed: int = 2024,
                       generators: Optional[Sequence[str]] = None) -> dict[str, tuple[list[Path], list[Path]]]:
        """Per generator: (real test paths, generated paths), equally many (at most ``n_per_generator``), seeded.

        Each generator gets its own random sample of the test reals (seeded by ``seed``), as in the paper.
        """
        reals = self.test_real_paths()
        names = list(generators) if generators is not None else self.available_generators()
        if not names:
            raise FileNotFoundError(f"no generator folder of {list(GENERATOR_FOLDERS.values())} in {self.data_root}")
        out = {}
        for name in names:
            fakes = self.generator_paths(name)
            ri, fi = balanced_indices(len(reals), len(fakes), n_per_generator, seed)
            out[name] = ([reals[i] for i in ri], [fakes[i] for i in fi])
        return out


def load_images(paths: Iterable[Path], size: int) -> tuple[np.ndarray, list[Path]]:
    """Read images whole (no face crop) with :func:`aigfd_lite.images.reader.load_rgb`, resized to ``size`` x ``size``
    (bilinear); returns (uint8 array, paths that could not be read, each logged with the reason). In RAM: the full
    profile streams instead (:class:`aigfd_lite.models.image_files.ImageFiles`, the same reading)."""
    images, failed = [], []
    for path in paths:
        try:
            images.append(read_resized(path, size))
        except (UnreadableImage, OSError) as err:
            log.warning("cannot read %s: %s", path, err)
            failed.append(Path(path))
    array = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return array, failed


def load_test_set(name: str, real_paths: list[Path], fake_paths: list[Path], size: int) -> TestSet:
    """Read a balanced pair of path lists; unreadable images are counted and their set trimmed to keep balance."""
    real, bad_real = load_images(real_paths, size)
    fake, bad_fake = load_images(fake_paths, size)
    k = min(len(real), len(fake))
    if k == 0:
        raise ValueError(f"{name}: no readable image pair")
    return TestSet(name, real[:k], fake[:k], None, True, skipped=len(bad_real) + len(bad_fake))


def paper_test_sets(data_root: str | Path, n_per_generator: int = 5_000, seed: int = 2024, size: int = 224,
                    generators: Optional[Sequence[str]] = None, stream: bool = False) -> dict[str, TestSet]:
    """Full profile: every available generator's balanced test set, read from the paper's ``data/`` folder.

    ``stream=True``: the sets hold :class:`aigfd_lite.models.image_files.ImageFiles` (paths, read when featurised: memory
    independent of their size; unreadable files are then dropped in pairs by :func:`aigfd_lite.evaluation.protocol.featurize`);
    else the images are read into RAM now."""
    layout = PaperLayout(Path(data_root))
    pairs = layout.balanced_paths(n_per_generator, seed, generators)
    if stream:
        return {name: TestSet(name, ImageFiles(real, size), ImageFiles(fake, size))
                for name, (real, fake) in pairs.items()}
    return {name: load_test_set(name, real, fake, size) for name, (real, fake) in pairs.items()}
