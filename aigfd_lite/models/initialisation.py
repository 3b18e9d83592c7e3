"""How the network starts (chapter 4): random, ImageNet, the paper's EXIF-as-language checkpoint or the authors'
released model, each file read from the registry of downloadable weights (:mod:`aigfd_lite.models.weights`) and
its keys mapped onto :class:`~aigfd_lite.models.ExifManipNet`'s.

Initialisations (:func:`apply_init`, called by :func:`build_model`): ``"imagenet"`` (torchvision's
IMAGENET1K_V2), ``"exif-lan"`` (the paper's: the EXIF-as-language checkpoint loaded non-strictly over ImageNet
ResNet-50 IMAGENET1K_V1, which is what the published code's ``resnet50(pretrained=True)`` gives), ``"released"``
(the authors' trained "our model", mapped by :func:`map_official_state_dict`), or a path to a checkpoint.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import torch

from .network import BACKBONES, TASKS, ExifManipNet, LoadReport, imagenet_mobilenet_v2_state
from .weights import WeightsUnavailable, load_state, read_state

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ key mapping
#: The published model's heads -> ours. ``fc_et`` / ``fc_fl`` are crossed on purpose: the published dataset feeds
#: the focal length to ``fc_et`` and the exposure to ``fc_fl`` (reference notes, difference 3). Its exposure label is
#: the denominator of "1/x sec", so the mapped ``exposure_time`` head ranks short exposures high (ours: long ones).
OFFICIAL_HEADS: dict[str, str] = {"fc_iso": "iso", "fc_av": "aperture", "fc_et": "focal_length",
                                  "fc_fl": "exposure_time", "fc_face": "manipulation"}
#: Wrapper prefixes, possibly stacked: DataParallel (module.), the published CLIP wrapper (model.visual.), ours.
PREFIXES: tuple[str, ...] = ("module.", "model.", "visual.", "image_encoder.", "encoder.", "backbone.", "net.")


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def map_official_state_dict(state: dict[str, torch.Tensor], model: Optional[torch.nn.Module] = None
                            ) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """Rename a checkpoint's keys onto :class:`~aigfd_lite.models.ExifManipNet`'s.

    The released model (``model.visual.<torchvision ResNet-50 keys>`` with ``fc`` = Linear(2048, 768), heads
    ``fc_iso``, ``fc_av``, ``fc_et``, ``fc_fl``, ``fc_face``, CLIP leftovers such as ``model.logit_scale``, maybe
    under ``module.``), an EXIF-as-language tower, a bare torchvision ResNet-50, or our own checkpoint. Returns
    ``(mapped, renames, unmapped)``: ``mapped`` our key -> tensor, ``renames`` their key -> ours, ``unmapped`` their
    keys that match nothing (reported, never silently dropped). Shapes are not checked here (see :func:`load_mapped`).
    """
    if model is None:
        model = ExifManipNet()
    own = set(model.state_dict())
    mapped, renames, unmapped = {}, {}, []
    for key, value in state.items():
        bare = _strip(key)
        head, _, rest = bare.partition(".")
        if key in own:
            target = key
        elif head in OFFICIAL_HEADS:
            target = f"heads.{OFFICIAL_HEADS[head]}.{rest}"
        else:
            target = next((c for c in (f"backbone.{bare}", bare) if c in own), None)
        if target is None or target not in own:
            unmapped.append(key)
            continue
        mapped[target], renames[key] = value, target
    return mapped, renames, unmapped


def load_mapped(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str):
    """Map ``state`` (:func:`map_official_state_dict`) and load it non-strictly; returns the
    :class:`~aigfd_lite.models.LoadReport` (also logged). Nothing matching at all is an error."""
    mapped, renames, unmapped = map_official_state_dict(state, model)
    own = model.state_dict()
    report = LoadReport(source=source, unexpected=list(unmapped))
    keep = {}
    for key, target in renames.items():
        if tuple(own[target].shape) != tuple(mapped[target].shape):
            report.shape_mismatch.append(f"{key} {tuple(mapped[target].shape)} vs {tuple(own[target].shape)}")
        else:
            keep[target] = mapped[target]
    if not keep:
        raise ValueError(f"no tensor of {source} matches the model: {report}")
    model.load_state_dict(keep, strict=False)
    report.loaded, report.missing = sorted(keep), sorted(set(own) - set(keep))
    log.warning("%s", report)
    return report


def _imagenet(model: torch.nn.Module, name: str, timeout: float):
    state = {k: v for k, v in load_state(name, timeout=timeout).items() if not k.startswith("fc.")}
    report = load_mapped(model, state, name)  # the 1000-class classifier is dropped above
    left_out = {k for k in report.missing if k.startswith("backbone.")} - {"backbone.fc.weight", "backbone.fc.bias"}
    if report.unexpected or report.shape_mismatch or left_out:
        raise RuntimeError(f"ImageNet weights do not fit the backbone: {report}")
    return report


def apply_init(model: torch.nn.Module, init: str, download_timeout: float = 30.0):
    """Initialise ``model`` in place (see the module docstring); returns the load report of the last file."""
    if init == "imagenet":
        return _imagenet(model, "resnet50-imagenet1k-v2", download_timeout)
    if init == "exif-lan":  # as the published code: ImageNet first, the EXIF checkpoint over it, non-strictly
        try:
            _imagenet(model, "resnet50-imagenet1k-v1", download_timeout)
        except WeightsUnavailable as err:
            raise WeightsUnavailable(f"init='exif-lan' starts from ImageNet ResNet-50, and {err} "
                                     f"(init='imagenet' needs the same kind of download)") from err
        return load_mapped(model, load_state("exif-lan", timeout=download_timeout), "exif-lan")
    if init == "released":
        return load_mapped(model, load_state("released", timeout=download_timeout), "released")
    return load_mapped(model, read_state(init), str(init))


def build_model(init: str = "random", feature_dim: int = 768, tasks: Sequence[str] = TASKS,
                seed: int | None = None, download_timeout: float = 30.0,
                backbone: str = "resnet50") -> ExifManipNet:
    """The pretext network with the chosen backbone and initialisation (chapter 4).

    ``backbone``: a name in :data:`BACKBONES`. ``init``: ``"random"`` (torchvision's init, seeded by ``seed``),
    ``"imagenet"`` (ResNet-50: torchvision's ``IMAGENET1K_V2`` through :mod:`aigfd_lite.models.weights`, downloads on
    Colab; MobileNetV2: :func:`imagenet_mobilenet_v2_state`, offline), ``"exif-lan"`` (the paper's: the authors'
    EXIF-pretrained checkpoint over ImageNet, non-strictly), ``"released"`` (the authors' trained model) or a path
    to a checkpoint (ours, the released layout or an EXIF-as-language tower). Downloads are hash-checked; offline
    a ``RuntimeError`` names the alternatives. The load report is ``model.load_report``.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {BACKBONES}")
    if seed is not None:
        torch.manual_seed(seed)
    model = ExifManipNet(feature_dim=feature_dim, backbone=backbone, tasks=tasks)
    model.load_report = None
    if init == "random":
        return model
    if init == "imagenet" and backbone == "mobilenet_v2":
        state = {k: v for k, v in imagenet_mobilenet_v2_state().items() if not k.startswith("classifier.")}
        missing, unexpected = model.backbone.load_state_dict(state, strict=False)
        if unexpected or set(missing) != {"classifier.weight", "classifier.bias"}:
            raise RuntimeError(f"ImageNet weights do not fit: missing {missing}, unexpected {unexpected}")
        return model
    if backbone != "resnet50" and init in ("imagenet", "exif-lan", "released"):
        raise ValueError(f"init={init!r} is a ResNet-50 checkpoint; backbone {backbone!r} takes 'random', "
                         f"'imagenet' (mobilenet_v2) or a path")
    model.load_report = apply_init(model, init, download_timeout)
    return model
