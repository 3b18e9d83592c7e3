"""The lite AI-generated faces: two generator families that exist offline (chapters 5 and 6).

1. **DCGAN** {Radford et al. 2016}: the generator of PyPI's ``gan-face-generate`` 1.1.1 (64 px faces, trained on
   the rendered faces of DigiFace-1M). We do not import that package (it declares wandb); :class:`DCGANGenerator`
   re-creates its architecture (PyTorch's DCGAN-tutorial generator: nz 100, ngf 64) so its state dict loads with
   ``torch.load(weights_only=True)`` (the file ``weights.tar`` is a torch zip archive, key ``netG_state_dict``).
2. **Autoencoder**: a small convolutional autoencoder the book trains itself, on CPU in a minute, on the CelebA
   faces kept for it (``generator_train``, :mod:`aigfd_lite.faces.celeba`) at 64 px, the DCGAN's size. Its
   reconstructions of the real *test* faces are the second AI-generated set: the same people as the real test
   faces, re-synthesised by a network that never saw them.

Both are far weaker than the paper's nine generators (StyleGAN2 ... SDXL), which cannot be had offline; chapter 6
says so next to every number. Autoencoder weights are cached under ``build_dir()/checkpoints`` (fetch-or-train).
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..fetch import files
from ..results import build_dir
from ..runtime import progress_bar as tqdm
from ..storage import atomic_write
from .testsets import resample

DCGAN_LATENT = 100
DCGAN_SIZE = 64
AUTOENCODER_SIZE = 64  # the autoencoder's native size: the DCGAN's, so the lite common resolution is 64 px


class DCGANGenerator(nn.Module):
    """The DCGAN generator: z (N, nz, 1, 1) -> image (N, 3, 64, 64) in [-1, 1]; five transposed convolutions.

    The layer order (and hence the state-dict keys ``main.<i>.*``) matches the shipped weights.
    """

    def __init__(self, nz: int = DCGAN_LATENT, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Module] = []
        in_ch = nz
        for i, out_ch in enumerate(widths):
            # 1x1 -> 4x4 (stride 1, no padding), then each block doubles the side: 8, 16, 32.
            stride, pad = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(in_ch, out_ch, 4, stride, pad, bias=False), nn.BatchNorm2d(out_ch),
                       nn.ReLU(True)]
            in_ch = out_ch
        layers += [nn.ConvTranspose2d(in_ch, nc, 4, 2, 1, bias=False), nn.Tanh()]  # 32 -> 64
        self.main = nn.Sequential(*layers)
        self.nz = nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def dcgan_weights_path() -> Path:
    """The shipped weights file of the fetched ``dcgan-faces`` source."""
    found = files("dcgan-faces", "*weights.tar")
    if not found:
        raise FileNotFoundError("the dcgan-faces source holds no weights.tar (run python -m aigfd_lite.fetch)")
    return found[0]


def load_dcgan(path: str | Path | None = None) -> DCGANGenerator:
    """The DCGAN generator with the shipped weights (strict load: every key must match), in eval mode."""
    path = Path(path) if path is not None else dcgan_weights_path()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # a torch zip archive despite ".tar"
    if not isinstance(checkpoint, dict) or "netG_state_dict" not in checkpoint:
        raise ValueError(f"{path}: expected a dict with key 'netG_state_dict'")
    state = checkpoint["netG_state_dict"]
    model = DCGANGenerator(nz=state["main.0.weight"].shape[0])
    model.load_state_dict(state, strict=True)
    return model.eval()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] tensors (N, 3, H, W) -> uint8 images (N, H, W, 3)."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def sample_dcgan(n: int, seed: int = 2024, model: Optional[DCGANGenerator] = None,
                 batch_size: int = 256) -> np.ndarray:
    """``n`` DCGAN faces (uint8, (n, 64, 64, 3)) from latent codes drawn with ``seed`` (reproducible)."""
    model = model if model is not None else load_dcgan()
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.nz, 1, 1, generator=gen)
    return np.concatenate([to_uint8(model(z[i:i + batch_size])) for i in range(0, n, batch_size)]) \
        if n else np.zeros((0, DCGAN_SIZE, DCGAN_SIZE, 3), np.uint8)


class FaceAutoencoder(nn.Module):
    """A small convolutional autoencoder: size px -> (size/8)^2 x 128 -> ``latent`` -> size px, output in [-1, 1]."""

    def __init__(self, size: int = 32, latent: int = 128, width: int = 32) -> None:
        super().__init__()
        if size % 8:
            raise ValueError(f"size must be a multiple of 8, got {size}")
        self.size, self.latent = size, latent
        side = size // 8
        c1, c2, c3 = width, width * 2, width * 4
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c1, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(c1, c2, 4, 2, 1), nn.BatchNorm2d(c2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(c2, c3, 4, 2, 1), nn.BatchNorm2d(c3), nn.LeakyReLU(0.2, True),
            nn.Flatten(), nn.Linear(c3 * side * side, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, c3 * side * side), nn.Unflatten(1, (c3, side, side)), nn.ReLU(True),
            nn.ConvTranspose2d(c3, c2, 4, 2, 1), nn.BatchNorm2d(c2), nn.ReLU(True),
            nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.BatchNorm2d(c1), nn.ReLU(True),
            nn.ConvTranspose2d(c1, 3, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_autoencoder(images: np.ndarray, *, size: int = 32, epochs: int = 60, batch_size: int = 32,
                      lr: float = 2e-3, seed: int = 2024, progress: bool = True
                      ) -> tuple[FaceAutoencoder, pd.DataFrame]:
    """Train :class:`FaceAutoencoder` on uint8 faces (N, H, W, 3), resized to ``size``; L1 reconstruction loss.

    Seeded (weights, batch order and horizontal-flip augmentation), so a rerun gives the same weights.
    Returns the model (eval mode) and a per-epoch log (epoch, loss, seconds).
    """
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) < 2:
        raise ValueError(f"need at least two uint8 (N, H, W, 3) images, got {images.dtype} {images.shape}")
    threads = torch.get_num_threads()
    # A network this small gains nothing from intra-op threads, and loses up to 10x on a shared CPU (measured).
    torch.set_num_threads(1)
    try:
        return _train_autoencoder(images, size, epochs, batch_size, lr, seed, progress)
    finally:
        torch.set_num_threads(threads)


def _train_autoencoder(images: np.ndarray, size: int, epochs: int, batch_size: int, lr: float, seed: int,
                       progress: bool) -> tuple[FaceAutoencoder, pd.DataFrame]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data = _to_tensor(resample(images, size))
    model = FaceAutoencoder(size=size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    rows, start = [], time.perf_counter()
    model.train()
    for epoch in tqdm(range(epochs), desc="autoencoder", disable=not progress):
        order = torch.randperm(len(data), generator=gen)
        total = 0.0
        for i in range(0, len(data), batch_size):
            x = data[order[i:i + batch_size]]
            flip = torch.rand(len(x), generator=gen) < 0.5  # mirrored faces are faces too
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            loss = (model(x) - x).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
        sched.step()
        rows.append({"epoch": epoch + 1, "loss": total / len(data), "seconds": time.perf_counter() - start})
    return model.eval(), pd.DataFrame(rows)


def fingerprint(images: np.ndarray) -> str:
    """A short hash of the training images, so cached weights are only reused for the same training set."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:12]


def fetch_or_train_autoencoder(images: np.ndarray, *, size: int = 32, epochs: int = 60, seed: int = 2024,
                               checkpoint_dir: str | Path | None = None, progress: bool = True
                               ) -> tuple[FaceAutoencoder, Optional[pd.DataFrame]]:
    """Load the cached autoencoder for these training images and settings, or train and cache it (atomically).

    Returns the model and the training log (``None`` when loaded from the cache).
    """
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else build_dir() / "checkpoints"
    path = folder / f"autoencoder-{size}px-{epochs}ep-seed{seed}-{fingerprint(images)}.pt"
    if path.is_file():
        model = FaceAutoencoder(size=size)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval(), None
    model, log = train_autoencoder(images, size=size, epochs=epochs, seed=seed, progress=progress)
    # a killed run never leaves a half-written checkpoint behind
    atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp), prefix=".autoencoder-", mode=None,
                 mkdir=True)
    return model, log


@torch.no_grad()
def reconstruct(model: FaceAutoencoder, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """The autoencoder's reconstructions (uint8, (N, size, size, 3)) of uint8 faces of any size."""
    model.eval()
    data = _to_tensor(resample(images, model.size))
    if not len(data):
        return np.zeros((0, model.size, model.size, 3), np.uint8)
    return np.concatenate([to_uint8(model(data[i:i + batch_size])) for i in range(0, len(data), batch_size)])


def lite_generators(train_images: np.ndarray, test_images: np.ndarray, *, n_samples: int, seed: int = 2024,
                    ae_size: int = AUTOENCODER_SIZE, ae_epochs: int = 60, progress: bool = True) -> dict[str, dict]:
    """The lite generator families, ready for :func:`aigfd_lite.evaluation.testsets.lite_test_set` (chapters 5 and 6).

    Per family: ``"test"`` (generated faces for the test sets), ``"train"`` (other generated faces, only for the
    supervised baseline of chapter 6), ``"native_size"`` and, for the autoencoder, its training ``"log"`` (None when
    cached). DCGAN test and train samples come from disjoint seeds; the autoencoder is trained on ``train_images``
    and reconstructs ``test_images`` (test) and ``train_images`` (train).
    """
    dcgan = load_dcgan()
    ae, log = fetch_or_train_autoencoder(train_images, size=ae_size, epochs=ae_epochs, seed=seed, progress=progress)
    return {
        "DCGAN": {"test": sample_dcgan(n_samples, seed, dcgan), "train": sample_dcgan(len(train_images), seed + 1, dcgan),
                  "native_size": DCGAN_SIZE, "log": None},
        "Autoencoder": {"test": reconstruct(ae, test_images), "train": reconstruct(ae, train_images),
                        "native_size": ae_size, "log": log, "model": ae},
    }
