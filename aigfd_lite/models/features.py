"""Features of the pretext network (chapters 5-8): 768-d vectors of uint8 images, of a Dataset, or of image files
streamed from disk (:mod:`aigfd_lite.models.image_files`), one slice per torchrun process."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..runtime import gather_rows, processes, progress_bar as tqdm
from .image_files import ImageFiles, stream_features
from .network import _autocast, prepare_batch

@torch.no_grad()
def extract_features(model: nn.Module, images: np.ndarray | torch.utils.data.Dataset, *, input_size: int,
                     batch_size: int = 64, device: str | torch.device = "cpu", progress: bool = True,
                     num_workers: int = 0) -> np.ndarray:
    """768-d features (float32, (N, feature_dim)) of uint8 images (N, H, W, 3) or of a Dataset, no gradients.

    An :class:`aigfd_lite.models.image_files.ImageFiles` is streamed (:func:`~aigfd_lite.models.image_files.stream_features`).
    A Dataset's items are image tensors, uint8 (H, W, 3) (normalised on ``device``, like the arrays) or already
    normalised (3, S, S), or tuples whose first element is one. The model is put
    in eval mode (BatchNorm uses its running statistics) and restored to its previous mode afterwards.
    Under torchrun (an initialised process group) each rank featurises its slice and rank 0 returns all ``N`` rows
    in order; the other ranks return an empty ``(0, feature_dim)`` array.
    """
    if isinstance(images, ImageFiles):  # files read in workers, rows of unreadable ones dropped (image_files)
        return stream_features(model, images, input_size=input_size, batch_size=batch_size, device=device,
                               num_workers=num_workers, progress=progress)
    device = torch.device(device)
    if isinstance(images, np.ndarray) and (images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8):
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    procs, n_all = processes(), len(images)
    if procs.world_size > 1:  # each rank one slice, gathered on rank 0
        part = procs.shard(n_all)
        images = (images[part.start:part.stop] if isinstance(images, np.ndarray)
                  else torch.utils.data.Subset(images, part))
        progress = progress and procs.main
    features = _features(model, images, input_size, batch_size, device, progress, num_workers)
    return gather_rows(features, n_all)


def _features(model: nn.Module, images: np.ndarray | torch.utils.data.Dataset, input_size: int, batch_size: int,
              device: torch.device, progress: bool, num_workers: int) -> np.ndarray:
    if isinstance(images, np.ndarray):
        n = len(images)
        batches = (torch.from_numpy(images[i:i + batch_size]) for i in range(0, n, batch_size))
    else:
        n = len(images)
        batches = iter(torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False,
                                                   num_workers=num_workers, pin_memory=device.type == "cuda"))

    was_training = model.training
    model.eval().to(device)
    out = np.zeros((n, getattr(model, "feature_dim", 768)), dtype=np.float32)
    done = 0
    with tqdm(total=n, desc="features", unit="img", disable=not progress, mininterval=5) as bar:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            x = prepare_batch(x, device, input_size, True if device.type == "cuda" else None)
            with _autocast(device):
                feature = model.features(x) if hasattr(model, "features") else model(x)
            out[done:done + len(x)] = feature.float().cpu().numpy()
            done += len(x)
            bar.update(len(x))
    model.train(was_training)
    return out
