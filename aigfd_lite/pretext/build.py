"""The pretext dataset of a profile (chapter 4): the lite corpus's faces (:class:`~aigfd_lite.pretext.batches.
PretextDataset`) or, with the paper's data, FDF with on-the-fly manipulations (:mod:`aigfd_lite.pretext.fdf_items`)."""
from __future__ import annotations

from typing import Any

import torch

from .batches import PretextDataset, tags_of
from ..faces import build_corpus
from .fdf_items import build_fdf_dataset
from ..profiles import resolve

def build_pretext_dataset(cfg: Any, split: str = "train", schedule: str = "random",
                          corpus: Any = None, profile: Any = None) -> torch.utils.data.Dataset:
    """The pretext dataset of a profile (or a :class:`aigfd_lite.train.TrainConfig`) for one corpus split.

    Lite: the face corpus of chapter 3 (``build_corpus``), capped at ``max_train_items`` faces for training. Full
    (``data_root`` set and the official layout present): FDF through :class:`FDFPretextDataset`, manipulated on the
    fly (``cfg.manipulations``; see :func:`aigfd_lite.pretext.fdf_items.build_fdf_dataset`). ``profile``: the profile the
    lite corpus is built from when ``cfg`` is a TrainConfig (default: ``cfg.profile`` with its defaults).
    """
    data_root = getattr(cfg, "data_root", None)
    if data_root and corpus is None and split == "train":
        return build_fdf_dataset(cfg)
    if corpus is None:
        if profile is None:
            profile = cfg if hasattr(cfg, "cache_path") else resolve(cfg.profile)
        corpus = build_corpus(profile)
    part = corpus.subset(split)
    images, landmarks = part.images, part.landmarks
    tags, has = tags_of(part.table)
    cap = getattr(cfg, "max_train_items", None)
    if split == "train" and cap:
        images, landmarks, tags, has = images[:cap], landmarks[:cap], tags[:cap], has[:cap]
    return PretextDataset(images, landmarks, tags, has, seed=cfg.seed, input_size=cfg.input_size,
                          real_fraction=cfg.real_fraction, simulate_camera=cfg.simulate_camera,
                          symmetric=cfg.symmetric_resampling, schedule=schedule,
                          variants_per_kind=getattr(cfg, "variants_per_kind", None) if split == "train" else None)
