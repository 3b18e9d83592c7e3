"""Held-out evidence of the pretext tasks (chapter 4): ranking accuracy per tag, manipulation accuracy and AUC.

:func:`evaluate_pretext` scores a held-out dataset once; :func:`bootstrap_intervals` gives face-level bootstrap
intervals of its accuracies; :func:`saturation_diagnostic` compares the fidelity loss's gradients with BCE's.

Ranking accuracy is measured on pairs of real items (:func:`ranking_accuracy`). All ``N (N - 1) / 2`` pairs are used
while there are at most ``max_pairs`` of them (the lite test split's 33 faces give 528: exact, as before); beyond
that a fixed number of pairs is drawn with a seeded generator, so memory and time stay flat at paper scale (an
all-pairs evaluation of 100,000 items would need 5e9 pairs). Both AUCs are rank statistics (sklearn's
``roc_auc_score``, :func:`aigfd_lite.evaluation.metrics.pairwise_auc`). Items come as uint8 batches and are normalised on the
device, like the training loop's (:func:`aigfd_lite.models.prepare_batch`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from ..losses import manipulation_loss, pairwise_ranking_accuracy
from ..models import TAGS, ExifManipNet, prepare_batch
from ..runtime import progress_bar as tqdm

#: Above this many pairs, :func:`ranking_accuracy` samples ``max_pairs`` of them (seeded) instead of taking all.
MAX_PAIRS = 1_000_000


def ranking_accuracy(scores: Any, tags: Any, *, max_pairs: int = MAX_PAIRS, seed: int = 0) -> tuple[float, int]:
    """Share of untied, tagged pairs whose scores are ordered like their tags (score ties count half), and the
    number of such pairs used. Exact over all i < j pairs (:func:`aigfd_lite.losses.pairwise_ranking_accuracy`)
    when ``N (N - 1) / 2 <= max_pairs``; else over ``max_pairs`` pairs drawn uniformly (i != j) from a generator
    seeded by ``seed`` (pairs with a NaN or tied tag are then dropped, as in the exact count)."""
    scores = torch.as_tensor(scores)
    tags = torch.as_tensor(tags)
    n = len(scores)
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be at least 1, got {max_pairs}")
    if n * (n - 1) // 2 <= max_pairs:
        return pairwise_ranking_accuracy(scores, tags)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, max_pairs)
    j = rng.integers(0, n - 1, max_pairs)
    j += j >= i  # uniform over j != i
    s, t = scores.double().cpu().numpy(), tags.double().cpu().numpy()
    keep = np.isfinite(t[i]) & np.isfinite(t[j]) & (t[i] != t[j])
    i, j = i[keep], j[keep]
    if not len(i):
        return float("nan"), 0
    predicted = (s[i] > s[j]) + 0.5 * (s[i] == s[j])
    right = np.where(t[i] > t[j], predicted, 1.0 - predicted)
    return float(right.mean()), int(len(i))


@torch.no_grad()
def evaluate_pretext(model: ExifManipNet, dataset: torch.utils.data.Dataset, batch_size: int = 64,
                     device: str = "cpu", progress: bool = True, num_workers: int = 0,
                     max_pairs: int = MAX_PAIRS, seed: int = 0) -> dict[str, Any]:
    """Held-out evidence of the pretext tasks (chance is 0.5 for every number).

    Pairwise ranking accuracy per tag over the untied, tagged pairs of the dataset's real items (all items if it
    has none: with ``schedule="every_kind"`` a face's five versions share its tags), all of them or ``max_pairs``
    sampled ones (:func:`ranking_accuracy`, seeded by ``seed``); manipulation detection at logit 0 as a balanced
    accuracy (mean of the accuracy on real items and on manipulated items, so the class mix of the dataset does not
    matter), its ROC AUC, and the accuracy per kind. ``num_workers`` DataLoader workers decode the items.
    """
    # imported here, not at the top: `import aigfd_lite.pretext` stays free of sklearn
    from sklearn.metrics import roc_auc_score

    device = torch.device(device)
    model.eval().to(device)
    outs: dict[str, list[torch.Tensor]] = {k: [] for k in (*TAGS, "manipulation", "tags", "labels", "kinds")}
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         pin_memory=device.type == "cuda")
    for images, tags, labels, kinds in tqdm(loader, desc="held-out", disable=not progress):
        out = model(prepare_batch(images, device, getattr(dataset, "input_size", None)))
        for k in (*TAGS, "manipulation"):
            outs[k].append(out[k].float().cpu())
        outs["tags"].append(tags)
        outs["labels"].append(labels)
        outs["kinds"].append(kinds)
    cat = {k: torch.cat(v) for k, v in outs.items()}
    result: dict[str, Any] = {}
    real = cat["labels"] == 0 if (cat["labels"] == 0).any() else torch.ones_like(cat["labels"], dtype=torch.bool)
    for k, tag in enumerate(TAGS):
        accuracy, pairs = ranking_accuracy(cat[tag][real], cat["tags"][real, k].float(), max_pairs=max_pairs,
                                           seed=seed)
        result[f"ranking_accuracy_{tag}"], result[f"ranking_pairs_{tag}"] = accuracy, pairs
    labels = cat["labels"].numpy()
    correct = ((cat["manipulation"] > 0).long() == cat["labels"]).numpy()
    per_class = [correct[labels == c].mean() for c in (0, 1) if (labels == c).any()]
    result["manipulation_balanced_accuracy"] = float(np.mean(per_class))
    both = len(per_class) == 2
    result["manipulation_auc"] = float(roc_auc_score(labels, cat["manipulation"].numpy())) if both else float("nan")
    result["n_items"] = len(labels)
    names = getattr(dataset, "labels", None)
    kinds = cat["kinds"].numpy()
    for kind in np.unique(kinds):
        name = names[kind] if names else str(kind)
        result[f"manipulation_accuracy_{name}"] = float(correct[kinds == kind].mean())
    groups = None  # which face each item shows: its items move together in the bootstrap
    if hasattr(dataset, "faces_of_items"):
        groups = dataset.faces_of_items()
    elif hasattr(dataset, "item_kind"):
        groups = [dataset.item_kind(i)[0] for i in range(len(dataset))]
    result["faces"] = np.asarray(groups if groups is not None else np.arange(len(labels)))
    result["scores"] = {k: cat[k].numpy() for k in (*TAGS, "manipulation")}
    result["tags"], result["labels"], result["kinds"] = cat["tags"].numpy(), cat["labels"].numpy(), cat["kinds"].numpy()
    result["max_pairs"], result["pair_seed"] = int(max_pairs), int(seed)
    return result


def bootstrap_intervals(result: dict[str, Any], n_resamples: int = 300, level: float = 0.95,
                        seed: int = 0) -> pd.DataFrame:
    """Percentile bootstrap intervals of :func:`evaluate_pretext`'s accuracies, resampling *faces* (a face's items
    and pairs move together, since they are not independent). Columns: metric, value, low, high. Ranking accuracies
    of a resample use :func:`ranking_accuracy` with the evaluation's ``max_pairs`` (sampled pairs at scale)."""
    faces = result["faces"]
    unique, inverse = np.unique(faces, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(unique) + 1))
    members = [order[starts[f]:starts[f + 1]] for f in range(len(unique))]
    rng = np.random.default_rng(seed)
    names = [f"ranking_accuracy_{t}" for t in TAGS] + ["manipulation_balanced_accuracy"]
    draws: dict[str, list[float]] = {n: [] for n in names}
    labels, scores, tags = result["labels"], result["scores"], result["tags"]
    max_pairs = int(result.get("max_pairs", MAX_PAIRS))
    for r in range(n_resamples):
        idx = np.concatenate([members[f] for f in rng.choice(len(unique), len(unique), replace=True)])
        real = idx[labels[idx] == 0] if (labels[idx] == 0).any() else idx
        for k, tag in enumerate(TAGS):
            accuracy, _ = ranking_accuracy(torch.from_numpy(scores[tag][real]),
                                           torch.from_numpy(tags[real, k].astype(np.float64)),
                                           max_pairs=max_pairs, seed=seed + 1 + r)
            draws[f"ranking_accuracy_{tag}"].append(accuracy)
        correct = (scores["manipulation"][idx] > 0).astype(int) == labels[idx]
        per_class = [correct[labels[idx] == c].mean() for c in (0, 1) if (labels[idx] == c).any()]
        draws["manipulation_balanced_accuracy"].append(float(np.mean(per_class)))
    tail = (1 - level) / 2 * 100
    rows = [{"metric": n, "value": result[n], "low": np.nanpercentile(draws[n], tail),
             "high": np.nanpercentile(draws[n], 100 - tail)} for n in names]
    return pd.DataFrame(rows)


def saturation_diagnostic(logits: np.ndarray, labels: np.ndarray, confident: float = 0.95) -> pd.DataFrame:
    """How much each manipulation loss pushes the items it gets wrong: fidelity (Eq. 4) against BCE.

    Per group of items (all, correct, wrong, and wrong with a saturated sigmoid, i.e. ``q_hat`` beyond
    ``confident`` on the wrong side), the count and the mean ``|dL/d logit|`` one item receives from each loss. For a
    label 1, the fidelity gradient is ``sqrt(q)(1 - q) / 2`` (up to the epsilon), which vanishes as ``q -> 0``, while
    BCE's is ``1 - q`` (-> 1): a confidently wrong item is hardly corrected by the fidelity loss (chapter 4).
    """
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64))
    if z.shape != y.shape or z.ndim != 1:
        raise ValueError(f"logits {tuple(z.shape)} and labels {tuple(y.shape)} must be two equal 1-d arrays")
    grads = {}
    for form in ("fidelity", "bce"):
        zz = z.clone().requires_grad_(True)
        (manipulation_loss(zz, y, form=form) * len(zz)).backward()  # the sum: one item's own gradient each
        grads[form] = zz.grad.abs().numpy()
    q = torch.sigmoid(z).numpy()
    wrong = (q > 0.5) != (y.numpy() == 1)
    saturated = np.maximum(q, 1 - q) > confident
    groups = {"all": np.ones_like(wrong), "correct": ~wrong, "wrong": wrong, "wrong, saturated": wrong & saturated}
    rows = [{"items": name, "n": int(mask.sum()),
             "mean |dL/dz| fidelity": float(grads["fidelity"][mask].mean()) if mask.any() else float("nan"),
             "mean |dL/dz| BCE": float(grads["bce"][mask].mean()) if mask.any() else float("nan")}
            for name, mask in groups.items()]
    return pd.DataFrame(rows)


