"""BLADES' eleven pretext tasks as ONE table: each task's classes, their text prompts and how labels map onto them.

Taught in chapter 7 (``book/07_blades.md``). Prompts (what the text tower embeds, one per class) and targets (class
indices) are both read from :data:`TASKS`, so a head can never have a different number of outputs than its labels
have classes.

* four ordinal EXIF tags, each discretised into low / medium / high by the tertiles of the training data
  (:func:`tertile_edges`, :func:`to_levels`);
* five categorical EXIF tags: make (10 classes incl. "other"), metering mode (8, the EXIF codes), exposure mode
  (3: EXIF defines only auto / manual / auto bracket; BLADES uses 7, which the reference notes do not enumerate),
  white balance (2) and exposure program (6: not defined, manual, program AE, aperture priority, shutter priority,
  and the scene modes 5-8 merged);
* coarse manipulation (photographic / manipulated) and fine-grained parts (eye, mouth: two binary labels, each a
  pair of prompts "original" / "flipped" whose logit difference is the label's sigmoid logit).

:func:`task_losses` turns the heads' logits and a batch's labels into the 11 losses (:data:`LOSS_NAMES`).
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch

from ..exif import ORDINAL_TAGS
from ..losses import fidelity_loss, focal_fidelity_loss, multilabel_fidelity_loss, ordinal_level_ranking_loss

LEVELS = ("low", "medium", "high")
_ORDINAL_PHRASE = {"aperture": "f-number", "exposure_time": "exposure time", "focal_length": "focal length",
                   "iso": "ISO speed"}
#: Camera makes with their own class (matched case-insensitively at the start of the EXIF Make string); the rest
#: are "other". Nine makers common on Flickr plus "other": BLADES' ten make classes.
MAKES = ("canon", "nikon", "sony", "fujifilm", "olympus", "panasonic", "pentax", "samsung", "apple")
_MAKE_ALIASES = {"nikon corporation": "nikon", "olympus imaging corp.": "olympus", "ricoh": "pentax",
                 "om digital solutions": "olympus", "fuji": "fujifilm"}


@dataclass(frozen=True)
class Task:
    """One task: ``kind`` is "ordinal", "categorical", "coarse" or "parts"; ``classes`` its class names,
    ``prompts`` one text per class (same length), ``codes`` the EXIF code(s) of each categorical class."""

    name: str
    kind: str
    classes: tuple[str, ...]
    prompts: tuple[str, ...]
    codes: tuple[tuple[Any, ...], ...] = ()

    @property
    def n_outputs(self) -> int:
        """Logits the head gives for this task: one per prompt."""
        return len(self.prompts)

    @property
    def n_targets(self) -> int:
        """Classes of a categorical / ordinal / coarse target; labels (each binary) of the parts task."""
        return len(self.prompts) // 2 if self.kind == "parts" else len(self.prompts)


def _categorical(name: str, entries: list[tuple[str, tuple[Any, ...], str]]) -> Task:
    return Task(name, "categorical", tuple(e[0] for e in entries), tuple(e[2] for e in entries),
                tuple(e[1] for e in entries))


def _build_tasks() -> tuple[Task, ...]:
    tasks = [Task(tag, "ordinal", LEVELS,
                  tuple(f"a photo taken with a {level} {_ORDINAL_PHRASE[tag]}" for level in LEVELS))
             for tag in ORDINAL_TAGS]
    makes = [(m, (m,), f"a photo taken with a {m.capitalize()} camera") for m in MAKES]
    tasks.append(_categorical("make", makes + [("other", (), "a photo taken with a camera of another make")]))
    metering = [("unknown", 0), ("average", 1), ("center-weighted average", 2), ("spot", 3), ("multi-spot", 4),
                ("multi-segment", 5), ("partial", 6), ("other", 255)]
    tasks.append(_categorical("metering_mode", [(n, (c,), f"a photo metered with {n} metering")
                                                for n, c in metering]))
    tasks.append(_categorical("exposure_mode", [(n, (c,), f"a photo taken in {n} exposure mode")
                                                for n, c in (("auto", 0), ("manual", 1), ("auto bracket", 2))]))
    tasks.append(_categorical("white_balance", [(n, (c,), f"a photo with {n} white balance")
                                                for n, c in (("auto", 0), ("manual", 1))]))
    program = [("not defined", (0,)), ("manual", (1,)), ("program AE", (2,)), ("aperture priority", (3,)),
               ("shutter priority", (4,)), ("scene mode", (5, 6, 7, 8))]
    tasks.append(_categorical("exposure_program", [(n, c, f"a photo taken with the {n} exposure program")
                                                   for n, c in program]))
    tasks.append(Task("manipulation", "coarse", ("photographic", "manipulated"),
                      ("a photographic face", "a manipulated face")))
    tasks.append(Task("parts", "parts", ("eye", "mouth"),
                      ("a face with its original eye", "a face with a flipped eye",
                       "a face with its original mouth", "a face with a flipped mouth")))
    return tuple(tasks)


#: The table every prompt and every label is built from.
TASKS: tuple[Task, ...] = _build_tasks()
TASK_NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
CATEGORICAL_TASKS: tuple[str, ...] = tuple(t.name for t in TASKS if t.kind == "categorical")
#: Manipulation kinds (:data:`aigfd_lite.manipulate.LABELS`) -> the parts they flip (eye, mouth). The global warp
#: changes the whole face, no single part: coarse label 1, parts (0, 0).
PARTS_OF_KIND = {"real": (0, 0), "eye_flip": (1, 0), "mouth_flip_h": (0, 1), "mouth_flip_v": (0, 1),
                 "warp": (0, 0)}


#: The 11 losses, in the order of every loss vector and task-weight vector.
LOSS_NAMES: tuple[str, ...] = (*ORDINAL_TAGS, *CATEGORICAL_TASKS, "manipulation", "parts")


def task(name: str) -> Task:
    for t in TASKS:
        if t.name == name:
            return t
    raise KeyError(f"unknown task {name!r}; tasks: {TASK_NAMES}")


def prompts() -> list[str]:
    """Every prompt of every task, in table order (the text tower embeds these)."""
    return [p for t in TASKS for p in t.prompts]


def prompt_slices() -> dict[str, slice]:
    """Which rows of :func:`prompts` belong to each task."""
    out, start = {}, 0
    for t in TASKS:
        out[t.name] = slice(start, start + t.n_outputs)
        start += t.n_outputs
    return out


def category_index(name: str, value: Any) -> int:
    """Class index of an EXIF value for a categorical task, or -1 (missing / unknown value: no loss)."""
    t = task(name)
    if t.kind != "categorical":
        raise ValueError(f"{name!r} is not a categorical task")
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return -1
    if name == "make":
        text = str(value).strip().lower()
        if not text:
            return -1
        text = _MAKE_ALIASES.get(text, text)
        for k, make in enumerate(MAKES):
            if text.startswith(make):
                return k
        return len(MAKES)  # "other"
    for k, codes in enumerate(t.codes):
        if int(value) in codes:
            return k
    return -1


def categorical_targets(values: dict[str, Any]) -> np.ndarray:
    """(5,) int64 class indices of one photo's categorical EXIF (``ExifTags.categorical()``), -1 where missing."""
    return np.array([category_index(n, values.get(n)) for n in CATEGORICAL_TASKS], dtype=np.int64)


def tertile_edges(tags: np.ndarray) -> np.ndarray:
    """(4, 2) tertile edges of each ordinal tag over the finite values of ``tags`` (N, 4) (the training data)."""
    tags = np.asarray(tags, dtype=np.float64)
    edges = np.full((tags.shape[1], 2), np.nan)
    for j in range(tags.shape[1]):
        col = tags[:, j][np.isfinite(tags[:, j])]
        if len(col) >= 3:
            edges[j] = np.quantile(col, [1 / 3, 2 / 3])
    return edges


def to_levels(tags: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Levels 0 / 1 / 2 (low / medium / high) of tags (N, 4) given :func:`tertile_edges`; -1 where missing.

    A value equal to an edge goes to the upper level (``np.digitize``, right-open bins). Tags snapped to camera
    stops tie often, so the three levels are only roughly equal in size.
    """
    tags = np.atleast_2d(np.asarray(tags, dtype=np.float64))
    out = np.full(tags.shape, -1, dtype=np.int64)
    for j in range(tags.shape[1]):
        ok = np.isfinite(tags[:, j]) & np.all(np.isfinite(edges[j]))
        out[ok, j] = np.digitize(tags[ok, j], edges[j])
    return out


def parts_targets(kind: Optional[str]) -> np.ndarray:
    """(2,) float32 eye / mouth labels of a manipulation kind."""
    if kind not in PARTS_OF_KIND:
        raise ValueError(f"unknown manipulation kind {kind!r}; known: {sorted(PARTS_OF_KIND)}")
    return np.asarray(PARTS_OF_KIND[kind], dtype=np.float32)


def _masked_mean(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.mean() if values.numel() else like.sum() * 0.0


def task_losses(out: dict[str, torch.Tensor], batch: Sequence[torch.Tensor], gamma: float = 2.0,
                variant: str = "code") -> torch.Tensor:
    """The 11 losses (:data:`LOSS_NAMES`) of one batch ``(images, levels, categorical, manipulated, parts)``:
    ordinal expected-level ranking, focal fidelity (labels -1 skipped), coarse and multi-label fidelity."""
    _, levels, categorical, manipulated, parts = batch
    losses = [ordinal_level_ranking_loss(out[t].float(), levels[:, k], variant) for k, t in enumerate(ORDINAL_TAGS)]
    for k, name in enumerate(CATEGORICAL_TASKS):
        ok = categorical[:, k] >= 0
        logits = out[name].float()
        losses.append(_masked_mean(focal_fidelity_loss(logits[ok], categorical[ok, k], gamma), logits))
    p_manipulated = torch.softmax(out["manipulation"].float(), dim=1)[:, 1]
    losses.append(fidelity_loss(p_manipulated, manipulated.float()).mean())
    losses.append(multilabel_fidelity_loss(out["parts"].float(), parts.float()).mean())
    return torch.stack(losses)
