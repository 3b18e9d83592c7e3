"""The evaluation protocol of chapters 5 and 6: which real faces fit, calibrate and test the detector, and how.

:func:`load_protocol` gathers, for a profile, the real faces the GMM is fitted (and calibrated) on, the balanced test
sets, and (lite) the generated faces the supervised baseline trains on, all real faces with their photo, for the
cross-fitted false-alarm check, and the proxy's manipulated copies of the GMM faces. Real faces are CelebA's, as in
the paper: lite uses the ~940 CelebA crops of :mod:`aigfd_lite.faces.celeba` (GMM, test and generator-training parts),
full the paper's CelebA-HQ lists. Every image takes the same path to the feature extractor:

* lite: :func:`aigfd_lite.images.as_tested`: down to the lite generators' native size (64 px, the resolution
  control), JPEG at CelebA's quality 75 there (the encoder every real photo has been through), then the test
  size; real faces of the GMM, of its calibration, of the tests and of the baseline, and every generated face alike;
* full: the paper's layout, each image read whole and resized to the test size, the GMM's CelebA-HQ faces and the
  test images alike; streamed (:class:`~aigfd_lite.models.image_files.ImageFiles`): the protocol holds paths, the features
  are computed in DataLoader workers, and memory does not grow with the number of images.

:func:`featurize` runs a feature extractor over all of it; :func:`detector_settings` turns a profile into
:class:`~aigfd_lite.detector.GMMDetector` arguments.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from .generators import lite_generators
from ..models import ImageFiles, TASKS, cached_features, extract_features
from .recipe import Choice, detector_faces, detector_params, lite_real_faces, proxy_faces, view_of
from .testsets import TestSet, as_tested, lite_test_set, paper_test_sets


@dataclass
class Protocol:
    """Preprocessed images (uint8, test size) of one profile's evaluation."""

    fit_real: np.ndarray  # real faces for the GMM (fit + calibration)
    test_sets: dict[str, TestSet]
    native_size: Optional[int] = None  # the common resolution every lite image passes through (None: full)
    baseline_fake: dict[str, np.ndarray] = field(default_factory=dict)  # per generator, for the binary baseline
    all_real: Optional[np.ndarray] = None  # lite: every real face of the corpus (cross-fitted false alarm)
    all_real_photo: Optional[np.ndarray] = None  # the photo of each, so faces of one photo share a fold
    generated: dict[str, dict] = field(default_factory=dict)  # lite: lite_generators' output (raw sizes)
    uncontrolled_sets: dict[str, TestSet] = field(default_factory=dict)  # lite: without the resolution control
    uncontrolled_fit_real: Optional[np.ndarray] = None  # lite: the GMM's faces without it


def load_protocol(cfg: Any, progress: bool = False, uncontrolled: bool = False) -> Protocol:
    """The profile's protocol (see the module docstring); ``uncontrolled`` adds lite test sets without the
    resolution control (chapter 6 measures the difference)."""
    if cfg.data_root:
        fit_real = detector_faces(cfg)  # the paper's GMM images, streamed
        sets = paper_test_sets(f"{cfg.data_root}/data", cfg.n_test_per_generator, cfg.test_seed, cfg.test_size,
                               stream=True)
        return Protocol(fit_real, sets)

    parts = lite_real_faces(cfg, progress=progress)
    gmm_raw, test_raw = parts["gmm"].images, parts["test"].images
    generated = lite_generators(parts["generator_train"].images, test_raw, n_samples=cfg.n_test_per_generator,
                                seed=cfg.test_seed, progress=progress)
    native = min(g["native_size"] for g in generated.values())
    view = view_of(cfg)
    if native != view["native_size"]:  # recipe.detector_faces (the bundle's faces) must take the same path
        raise RuntimeError(f"the lite generators' smallest native size is {native} px, the recipe's "
                           f"{view['native_size']} px")

    def sets(control: bool) -> dict[str, TestSet]:
        return {name: lite_test_set(name, test_raw, g["test"], n=cfg.n_test_per_generator, seed=cfg.test_seed,
                                    control_resolution=control, **view) for name, g in generated.items()}

    every_real = np.concatenate([gmm_raw, test_raw])  # cross-fitted false alarm: each CelebA face is one photo
    # (its first rows are the GMM's faces: featurize reuses their features)
    photo = np.array(parts["gmm"].files + parts["test"].files)
    return Protocol(as_tested(gmm_raw, **view), sets(True), native,
                    {name: as_tested(g["train"], **view) for name, g in generated.items()},
                    as_tested(every_real, **view), photo, generated,
                    sets(False) if uncontrolled else {},
                    as_tested(gmm_raw, **view, control_resolution=False) if uncontrolled else None)


def featurize(model: Any, protocol: Protocol, cfg: Any, *, uncontrolled: bool = False,
              baseline: bool = False, all_real: bool = False, proxy: bool = False) -> dict[str, Any]:
    """Features: ``fit`` (GMM faces), ``sets[name] = (real, generated)``; optionally ``baseline[name]`` (the
    baseline's generated training faces), ``all_real`` (every lite real face) and ``proxy`` (lite: the manipulated
    copies of the GMM faces that choose the detector, :func:`aigfd_lite.evaluation.recipe.proxy_faces`). ``uncontrolled``: the GMM's
    faces and the test sets without the resolution control instead."""
    seen: dict[str, np.ndarray] = {}  # lite: the same images (each set's real test faces) featurised once

    def run(images: Any) -> np.ndarray:  # arrays (lite) or ImageFiles (full: streamed, cached per model and files)
        def compute() -> np.ndarray:
            return extract_features(model, images, input_size=cfg.input_size, device=cfg.resolved_device(),
                                    progress=False, num_workers=cfg.num_workers if streamed else 0)

        streamed = isinstance(images, ImageFiles)
        if streamed:
            return cached_features(model, images, compute, input_size=cfg.input_size)
        key = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest() + str(images.shape)
        if key not in seen:
            seen[key] = compute()
        return seen[key].copy()

    def pair(ts: TestSet) -> tuple[np.ndarray, np.ndarray]:
        real, fake = run(ts.real), run(ts.fake)
        if isinstance(ts.real, ImageFiles):  # unreadable files were dropped: trim to keep the set balanced
            ts.skipped = len(ts.real.unreadable) + len(ts.fake.unreadable)
        k = min(len(real), len(fake))
        if k == 0:
            raise ValueError(f"{ts.name}: no readable image pair")
        return real[:k], fake[:k]

    sets = protocol.uncontrolled_sets if uncontrolled else protocol.test_sets
    fit = protocol.uncontrolled_fit_real if uncontrolled else protocol.fit_real
    if fit is None or not sets:
        raise ValueError("no uncontrolled data: load_protocol(cfg, uncontrolled=True) makes it (lite only)")
    out: dict[str, Any] = {"fit": run(fit), "sets": {name: pair(ts) for name, ts in sets.items()}}
    if baseline:
        out["baseline"] = {name: run(images) for name, images in protocol.baseline_fake.items()}
    if all_real and protocol.all_real is not None:
        n_fit = len(protocol.fit_real)
        reuse = np.array_equal(protocol.all_real[:n_fit], protocol.fit_real)  # lite: GMM faces come first
        out["all_real"] = (np.concatenate([run(protocol.fit_real), run(protocol.all_real[n_fit:])]) if reuse
                           else run(protocol.all_real))
    if proxy:
        faces = proxy_faces(cfg)
        if faces is not None:
            out["proxy"] = run(faces)
    return out


def detector_settings(cfg: Any, **overrides: Any) -> dict[str, Any]:
    """:class:`~aigfd_lite.detector.GMMDetector` arguments of a profile (``overrides`` win): the profile's own K
    and PCA dimension; chapter 5's choice comes from :func:`aigfd_lite.evaluation.recipe.chapter_detector`."""
    settings = detector_params(cfg, Choice(cfg.gmm_components, cfg.gmm_pca_components, "paper"))
    settings.update(overrides)
    return settings


def pretext_evidence(models: dict[str, Any], cfg: Any, n_resamples: int = 300) -> pd.DataFrame:
    """Held-out pretext accuracy (chapter 4's check, the corpus's test split) of each pretraining run: per run the
    best bootstrap lower bound among the tasks it trained and whether that bound is above chance (0.5)."""
    # imported here, not at the top: `import aigfd_lite.evaluation` stays free of scipy
    from ..pretext import bootstrap_intervals, build_pretext_dataset, evaluate_pretext

    test_set = build_pretext_dataset(cfg, "test", schedule="every_kind")
    rows = {}
    for name, model in models.items():
        tasks = tuple(getattr(model, "tasks", None) or TASKS)
        ci = bootstrap_intervals(evaluate_pretext(model, test_set, progress=False),
                                 n_resamples=n_resamples, seed=cfg.seed).set_index("metric")
        wanted = [m for m in ci.index if (m.startswith("ranking") and "exif" in tasks)
                  or (m.startswith("manipulation") and "manipulation" in tasks)]
        best = ci.loc[wanted, "low"].idxmax()
        rows[name] = {"tasks": "+".join(tasks), "best held-out task": best,
                      "accuracy": ci.loc[best, "value"], "lower bound": ci.loc[best, "low"],
                      "informative": bool(ci.loc[best, "low"] > 0.5)}
    return pd.DataFrame.from_dict(rows, orient="index")
