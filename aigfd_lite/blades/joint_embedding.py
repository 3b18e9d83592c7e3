"""BLADES' joint image-text embedding heads: logits = scale x cosine(image feature, class-prompt embedding).

Taught in chapter 7 (``book/07_blades.md``). Every class of every task (:data:`aigfd_lite.blades.tasks.TASKS`) has
a text prompt; a *text tower* turns the prompts into vectors, and a task's logits are the scaled cosine similarities
between the image feature and the task's prompt vectors (CLIP's zero-shot classifier, trained here).

* :class:`LearnedPromptTower` (lite): a learned embedding table, one row per prompt. It stands in for a text
  encoder offline: it ties each class to a vector the image tower is pulled towards, but knows nothing about the
  prompt's words (two prompts with similar meaning start no closer than any others).
* :class:`ClipTextTower` (full): CLIP's text transformer (open_clip, OpenAI weights, downloaded on first use) embeds
  the prompts once (frozen, as a buffer); a learned linear map takes them to the image feature's dimension. Offline
  it raises a ``RuntimeError`` that names ``text_tower="learned"`` as the alternative.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .tasks import TASKS, Task, prompt_slices, prompts


class LearnedPromptTower(nn.Module):
    """One learned ``dim``-d vector per prompt (lite's text tower); ``forward()`` returns (n_prompts, dim)."""

    def __init__(self, texts: Sequence[str], dim: int = 768, seed: int = 0) -> None:
        super().__init__()
        self.texts = tuple(texts)
        generator = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(len(self.texts), dim, generator=generator) / math.sqrt(dim))

    def forward(self) -> torch.Tensor:
        return self.table


def clip_prompt_embeddings(texts: Sequence[str], arch: str = "RN50", pretrained: str = "openai") -> torch.Tensor:
    """CLIP's text embeddings (n, d) of ``texts`` (open_clip; downloads the weights on first use)."""
    try:
        # optional dependency (full profile): a clear error below when it is missing
        import open_clip
    except ImportError as err:
        raise RuntimeError("BLADES' CLIP text tower needs `pip install open_clip_torch` and a weight download "
                           "(full profile, e.g. on Colab); offline use text_tower='learned' (a learned "
                           "prompt-embedding table, the lite profile's stand-in)") from err
    try:
        model, _, _ = open_clip.create_model_and_transforms(arch, pretrained=pretrained)
        tokens = open_clip.get_tokenizer(arch)(list(texts))
    except Exception as err:  # URLError, hub errors, ...
        raise RuntimeError(f"cannot download CLIP's {arch} weights ({err}); offline use "
                           "text_tower='learned' (a learned prompt-embedding table)") from err
    with torch.no_grad():
        return model.eval().encode_text(tokens).float()


class ClipTextTower(nn.Module):
    """CLIP's text tower (frozen) embedding the prompts once, plus a learned projection to ``dim``."""

    def __init__(self, texts: Sequence[str], dim: int = 768, arch: str = "RN50", pretrained: str = "openai",
                 embedded: torch.Tensor | None = None) -> None:
        super().__init__()
        if embedded is None:  # ``embedded`` given: rebuilt from a checkpoint, no download
            embedded = clip_prompt_embeddings(texts, arch, pretrained)
        self.texts = tuple(texts)
        self.register_buffer("embedded", embedded)
        self.projection = nn.Linear(embedded.shape[1], dim)

    def forward(self) -> torch.Tensor:
        return self.projection(self.embedded)


def build_text_tower(kind: str, dim: int = 768, seed: int = 0, state: dict | None = None) -> nn.Module:
    """``"learned"`` (lite) or ``"clip"`` (full) text tower over every prompt of :data:`TASKS`.

    ``state``: a saved model's state dict; a CLIP tower then takes its frozen prompt embeddings from it instead of
    downloading CLIP again."""
    if kind == "learned":
        return LearnedPromptTower(prompts(), dim, seed)
    if kind == "clip":
        embedded = None if state is None else state.get("heads.text_tower.embedded")
        return ClipTextTower(prompts(), dim, embedded=embedded)
    raise ValueError(f"unknown text tower {kind!r}; choose 'learned' (lite) or 'clip' (full)")


class JointEmbeddingHeads(nn.Module):
    """Per task, logits (N, n_prompts) = ``exp(log_scale) * cos(feature, prompt embedding)``.

    ``log_scale`` starts at log(1 / 0.07) like CLIP's temperature and is learned (clamped at 100, as CLIP does).
    The parts task returns (N, 2) sigmoid logits: "flipped" minus "original" per part.
    """

    def __init__(self, text_tower: nn.Module, tasks: Sequence[Task] = TASKS) -> None:
        super().__init__()
        self.text_tower, self.tasks = text_tower, tuple(tasks)
        self.slices = prompt_slices()
        n_prompts = sum(t.n_outputs for t in self.tasks)
        if len(text_tower.texts) != n_prompts:
            raise ValueError(f"the text tower embeds {len(text_tower.texts)} prompts, the tasks have {n_prompts}")
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, feature: torch.Tensor) -> dict[str, torch.Tensor]:
        text = F.normalize(self.text_tower(), dim=1)
        image = F.normalize(feature, dim=1)
        logits = self.log_scale.exp().clamp(max=100.0) * image @ text.T
        out = {}
        for t in self.tasks:
            block = logits[:, self.slices[t.name]]
            out[t.name] = block[:, 1::2] - block[:, 0::2] if t.kind == "parts" else block
        return out


class BladesNet(nn.Module):
    """Image tower (backbone -> 768-d feature) + :class:`JointEmbeddingHeads`; ``features`` for the detectors."""

    def __init__(self, backbone: nn.Module, heads: JointEmbeddingHeads, feature_dim: int = 768) -> None:
        super().__init__()
        self.backbone, self.heads, self.feature_dim = backbone, heads, feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feature = self.backbone(x)
        return {"feature": feature, **self.heads(feature)}
