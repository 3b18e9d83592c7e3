"""The losses of one pretraining step (Eq. 6, chapter 4): the network's heads in one order, all-pairs ranking per tag
and the manipulation loss; shared by the training loop and by gradient accumulation (:mod:`.accumulation`)."""
from __future__ import annotations

import torch

from ..losses import manipulation_loss, pairwise_ranking_loss, total_loss
from ..models import TAGS
from .run_config import TrainConfig

HEADS: tuple[str, ...] = (*TAGS, "manipulation")


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()  # autocast's fp16/bf16 -> fp32; fp64 stays (checks)


def compute_losses(out: dict[str, torch.Tensor], tags: torch.Tensor, labels: torch.Tensor,
                   tcfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 6: all-pairs ranking loss per tag + manipulation loss; terms of tasks not trained get weight 0."""
    ranking = {t: pairwise_ranking_loss(_at_least_float32(out[t]), tags[:, k].float(), tcfg.ranking_variant)
               for k, t in enumerate(TAGS)}
    manip = manipulation_loss(_at_least_float32(out["manipulation"]), labels.float(), form=tcfg.manipulation_form)
    weights = {t: 0.0 for t in TAGS} if "exif" not in tcfg.tasks else {}
    if "manipulation" not in tcfg.tasks:
        weights["manipulation"] = 0.0
    total = total_loss(ranking, manip, weights=weights)
    terms = {f"loss_{t}": float(v.detach()) for t, v in ranking.items()}
    terms["loss_manipulation"] = float(manip.detach())
    return total, terms
