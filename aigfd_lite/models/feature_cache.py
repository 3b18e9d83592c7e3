"""Features computed once per model and image list, kept where they outlive a Colab runtime (chapters 5-8, full).

At paper scale, featurising the GMM's 25,000 faces and nine generators' test sets takes a GPU several minutes, and
chapters 5, 6, 7 and 8 each need the same features of chapter 4's model. :func:`cached_features` stores them under
``$AIGFD_STORE/features`` (Google Drive on Colab; :mod:`aigfd_lite.storage`), else ``_build/features``, named by a
key that changes whenever the result could: the model's weights and buffers, the files (paths, sizes and
modification times), their preprocessing (size, native size, resolution control) and the input size. A stale
entry is thus never read, and a renamed data folder is read afresh (the key is of the files, not of a spelling).
Each entry is an ``.npy`` of float32 features plus a JSON with the unreadable files that were dropped, so a cached
read gives exactly what a computed one gave. Lite featurises arrays in seconds and does not use the cache.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .image_files import ImageFiles
from ..results import build_dir, write_json_atomic
from ..storage import atomic_write, store_path


def model_digest(model: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer (names, shapes, dtypes and values), in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def files_digest(images: ImageFiles) -> str:
    """sha256 of the file list with each file's size and modification time, and of the preprocessing."""
    digest = hashlib.sha256(json.dumps([images.size, images.native_size, images.control_resolution]).encode())
    for raw in images.paths:
        try:
            st = os.stat(raw.decode("utf-8"))
            digest.update(raw + f"|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(raw + b"|missing\n")
    return digest.hexdigest()


def cache_key(model: torch.nn.Module, images: ImageFiles, **settings: Any) -> str:
    text = json.dumps({"model": model_digest(model), "files": files_digest(images), **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def features_dir() -> Path:
    return store_path("features", default=build_dir() / "features")


def cached_features(model: torch.nn.Module, images: ImageFiles, compute: Callable[[], np.ndarray],
                    **settings: Any) -> np.ndarray:
    """``compute()``'s features of ``images``, read from the cache when an entry with the same key exists.

    ``settings``: whatever else changes the features (e.g. ``input_size``). After a cached read,
    ``images.unreadable`` lists the files the computing run dropped, as after ``compute()``.
    """
    key = cache_key(model, images, **settings)
    folder = features_dir()
    array, meta = folder / f"{key}.npy", folder / f"{key}.json"
    if array.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        features = np.load(array)
        if features.shape == (info["rows"], info["dim"]):
            images.unreadable = [Path(p) for p in info["unreadable"]]
            return features
    features = np.asarray(compute(), dtype=np.float32)
    atomic_write(array, lambda tmp: _save_array(tmp, features), mkdir=True)
    write_json_atomic(meta, {"rows": int(features.shape[0]), "dim": int(features.shape[1]), "files": len(images),
                             "unreadable": [str(p) for p in images.unreadable], "settings": settings})
    return features


def _save_array(path: str, features: np.ndarray) -> None:
    with open(path, "wb") as fh:  # through a handle: np.save would add ".npy" to the temporary file's name
        np.save(fh, features)
