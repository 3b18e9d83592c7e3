"""Images read from their files when needed: the full profile's GMM faces and test sets, streamed (chapters 5-8).

At paper scale the GMM's 25,000 CelebA-HQ faces and nine generators' balanced test sets are ~17 GB as uint8 at
224 px, more than a Colab runtime's RAM. :class:`ImageFiles` keeps only the paths (one numpy array of bytes) and
the preprocessing; :func:`stream_features` reads them in DataLoader workers (decode, resize, the resolution path),
sends uint8 batches to the model, normalises them on the device and keeps only the float32 (N, 768) features.
:func:`aigfd_lite.models.extract_features` streams an :class:`ImageFiles` by itself, so every caller streams.

Every image takes the same path as in :func:`aigfd_lite.evaluation.testsets.load_images` (read whole by
:func:`aigfd_lite.images.reader.load_rgb`, bilinear resize to ``size``), then, with ``native_size``, through
:func:`aigfd_lite.evaluation.testsets.as_tested`: the GMM's faces, the calibration faces and the test faces of one protocol share
one :class:`ImageFiles` setting, so the resolution control is the same for all of them. Unreadable files are
counted: their rows are dropped from the features and listed in ``files.unreadable`` (never silently lost).
Indexing gives arrays, so small uses (a figure's first eight faces) read just those files.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np
import torch
from PIL import Image

from ..images import UnreadableImage, as_tested, load_rgb
from .network import _autocast, prepare_batch
from ..runtime import gather_rows, processes, progress_bar as tqdm, worker_count

log = logging.getLogger(__name__)


def read_resized(path: Union[str, Path], size: int) -> np.ndarray:
    """One image read whole (:func:`aigfd_lite.images.reader.load_rgb`) and resized to ``size`` x ``size`` (Pillow's
    bilinear): uint8 (size, size, 3). Unreadable files raise :class:`~aigfd_lite.images.reader.UnreadableImage`."""
    return np.array(Image.fromarray(load_rgb(path)).resize((size, size), Image.Resampling.BILINEAR))


class ImageFiles(torch.utils.data.Dataset, Sequence):
    """A list of image files seen as uint8 images (n, S, S, 3), read on access.

    ``files[i]`` is one image (``UnreadableImage`` for a bad file), ``files[a:b]`` (or a list of indices) an array
    of them; ``len``, ``shape`` and ``dtype`` behave like the array it stands for. ``size``: the side every image
    is resized to; ``native_size``: with ``control_resolution``, every image then goes down to it and back up
    (:func:`aigfd_lite.evaluation.testsets.as_tested`).
    """

    def __init__(self, paths: Iterable[Union[str, Path]], size: int, *, native_size: Optional[int] = None,
                 control_resolution: bool = True) -> None:
        encoded = [str(p).encode("utf-8") for p in paths]
        self.paths = np.array(encoded, dtype=f"S{max((len(e) for e in encoded), default=1)}")
        self.size, self.native_size, self.control_resolution = int(size), native_size, bool(control_resolution)
        self.unreadable: list[Path] = []  # filled by stream_features

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), self.size, self.size, 3)

    dtype = np.dtype(np.uint8)
    ndim = 4

    def path(self, i: int) -> Path:
        return Path(self.paths[i].decode("utf-8"))

    def read(self, i: int) -> np.ndarray:
        image = read_resized(self.path(i), self.size)
        if self.native_size and self.control_resolution:
            image = as_tested(image[None], native_size=self.native_size, test_size=self.size)[0]
        return image

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            if not -len(self) <= key < len(self):
                raise IndexError(f"image {key} out of range for {len(self)} files")
            return self.read(int(key) % len(self))
        indices = range(*key.indices(len(self))) if isinstance(key, slice) else [int(k) for k in key]
        return (np.stack([self.read(i) for i in indices]) if len(indices)
                else np.zeros((0, self.size, self.size, 3), np.uint8))

    def subset(self, indices: Sequence[int]) -> "ImageFiles":
        """The files at ``indices``, with the same preprocessing."""
        out = ImageFiles([], self.size, native_size=self.native_size, control_resolution=self.control_resolution)
        out.paths = self.paths[np.asarray(indices, dtype=np.int64)]
        return out


class _Readable(torch.utils.data.Dataset):
    """``files``' items as ``(uint8 image tensor, readable?)``: a bad file gives zeros and False (counted)."""

    def __init__(self, files: ImageFiles, part: range) -> None:
        self.files, self.part = files, part

    def __len__(self) -> int:
        return len(self.part)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, bool]:
        try:
            return torch.from_numpy(self.files[self.part[i]]), True
        except (UnreadableImage, OSError) as err:
            log.warning("cannot read %s: %s", self.files.path(self.part[i]), err)
            return torch.zeros((self.files.size, self.files.size, 3), dtype=torch.uint8), False


@torch.no_grad()
def stream_features(model: torch.nn.Module, files: ImageFiles, *, input_size: int, batch_size: int = 64,
                    device: Union[str, torch.device] = "cpu", num_workers: int = 2,
                    progress: bool = False) -> np.ndarray:
    """Features (float32 (n readable, D)) of ``files``, read in ``num_workers`` DataLoader workers (at most one per
    CPU) and normalised on ``device``; the model is in eval mode meanwhile. Unreadable files' rows are dropped and
    listed in ``files.unreadable``. Under torchrun each rank reads its slice and rank 0 returns every row."""
    device = torch.device(device)
    procs, n_all = processes(), len(files)
    part = procs.shard(n_all) if procs.world_size > 1 else range(n_all)
    workers = worker_count(num_workers)
    loader = torch.utils.data.DataLoader(_Readable(files, part), batch_size=batch_size, shuffle=False,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         prefetch_factor=2 if workers else None)
    was_training = model.training
    model.eval().to(device)
    out = np.zeros((len(part), getattr(model, "feature_dim", 768)), dtype=np.float32)
    readable = np.zeros(len(part), dtype=bool)
    done = 0
    with tqdm(total=len(part), desc="features", unit="img", disable=not (progress and procs.main),
              mininterval=5) as bar:
        for images, ok in loader:
            x = prepare_batch(images, device, input_size, True if device.type == "cuda" else None)
            with _autocast(device):
                feature = model.features(x) if hasattr(model, "features") else model(x)
            out[done:done + len(x)] = feature.float().cpu().numpy()
            readable[done:done + len(x)] = ok.numpy()
            done += len(x)
            bar.update(len(x))
    model.train(was_training)
    out[~readable] = np.nan  # marks the rows to drop after the gather (other ranks' too)
    features = gather_rows(out, n_all)
    if not procs.main:
        return features
    bad = np.isnan(features[:, 0])
    files.unreadable = [files.path(i) for i in np.flatnonzero(bad)]
    return features[~bad] if bad.any() else features  # no copy of (N, 768) when every file was read
