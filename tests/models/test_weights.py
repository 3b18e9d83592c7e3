"""Tests of aigfd_lite.models.weights and .initialisation: the registry, hash-checked atomic downloads, safe
loading, and the mapping of the authors' released checkpoints onto ExifManipNet (synthetic state dicts in the
official key layout; no network)."""
from __future__ import annotations

import dataclasses
import hashlib
import sys
import types
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from aigfd_lite.models import initialisation, weights
from aigfd_lite.models.network import TAGS, ExifManipNet
from aigfd_lite.models.initialisation import build_model
from aigfd_lite.models.weights import REGISTRY, HashMismatch, WeightsUnavailable

CLIP_LEFTOVERS = ("model.logit_scale", "model.positional_embedding", "model.token_embedding.weight",
                  "model.ln_final.weight")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets an empty weights cache and torch hub folder; downloads are stand-ins."""
    monkeypatch.setenv("AIGFD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("AIGFD_STORE", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(weights, "DOWNLOADERS", dict(weights.DOWNLOADERS))
    return tmp_path / "cache" / "weights"


def serve(monkeypatch, via: str, payload: bytes) -> list[str]:
    """Make ``via`` downloads write ``payload``; returns the list of URLs requested."""
    calls: list[str] = []

    def download(url: str, out: Path, timeout: float) -> None:
        calls.append(url)
        out.write_bytes(payload)

    monkeypatch.setitem(weights.DOWNLOADERS, via, download)
    return calls


def saved(obj, tmp_path: Path, name: str = "ckpt.pth") -> bytes:
    path = tmp_path / name
    torch.save(obj, path)
    return path.read_bytes()


def pin_prefix(monkeypatch, name: str, payload: bytes) -> None:
    digest = hashlib.sha256(payload).hexdigest()
    monkeypatch.setitem(REGISTRY, name, dataclasses.replace(REGISTRY[name], sha256_prefix=digest[:8]))


def official_state(source: ExifManipNet, prefix: str = "model.visual.") -> dict[str, torch.Tensor]:
    """The released model's layout: CLIP wrapper with a torchvision ResNet-50 (fc 2048 -> 768) as ``visual`` and
    five heads named as in the published code (fc_et fed with focal length, fc_fl with exposure)."""
    state = {prefix + k: v.clone() for k, v in source.backbone.state_dict().items()}
    for theirs, ours in initialisation.OFFICIAL_HEADS.items():
        for p in ("weight", "bias"):
            state[f"{theirs}.{p}"] = source.heads[ours].state_dict()[p].clone()
    state.update({k: torch.zeros(3) for k in CLIP_LEFTOVERS})
    return state


# ------------------------------------------------------------------------------------------------ registry
def test_registry_matches_torchvision_and_says_how_to_download():
    for name, tv in (("resnet50-imagenet1k-v1", torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
                     ("resnet50-imagenet1k-v2", torchvision.models.ResNet50_Weights.IMAGENET1K_V2)):
        entry = REGISTRY[name]
        assert entry.url == tv.url and entry.via == "https"
        assert entry.filename == tv.url.rsplit("/", 1)[1] and entry.sha256_prefix in entry.filename
    for name in ("exif-lan", "released"):
        assert REGISTRY[name].via == "gdrive" and REGISTRY[name].sha256 is None
        assert REGISTRY[name].url.startswith("https://drive.google.com/")
    with pytest.raises(KeyError, match="registry has"):
        weights.fetch("nope")


# ------------------------------------------------------------------------------------------------ downloads
def test_fetch_is_atomic_cached_and_prefix_checked(monkeypatch, tmp_path, isolated_cache):
    payload = saved({"conv1.weight": torch.ones(2)}, tmp_path)
    calls = serve(monkeypatch, "https", payload)
    with pytest.raises(HashMismatch, match="11ad3fa6"):  # the synthetic file is not torchvision's
        weights.fetch("resnet50-imagenet1k-v2")
    assert not list(isolated_cache.iterdir())  # nothing half-written or unverified is left behind
    pin_prefix(monkeypatch, "resnet50-imagenet1k-v2", payload)
    path = weights.fetch("resnet50-imagenet1k-v2")
    assert path == isolated_cache / "resnet50-11ad3fa6.pth" and path.read_bytes() == payload
    assert weights.fetch("resnet50-imagenet1k-v2") == path and len(calls) == 2  # second use: from the cache
    path.write_bytes(payload[:-1] + b"x")  # the cached file rots
    with pytest.raises(HashMismatch):
        weights.fetch("resnet50-imagenet1k-v2")


def test_interrupted_download_leaves_no_partial_file(monkeypatch, isolated_cache):
    entry = REGISTRY["resnet50-imagenet1k-v2"]

    def dropped(url: str, out: Path, timeout: float) -> None:
        out.write_bytes(b"half of the weights")
        raise OSError("connection reset by peer")

    monkeypatch.setitem(weights.DOWNLOADERS, entry.via, dropped)
    with pytest.raises(WeightsUnavailable, match="connection reset"):
        weights.fetch(entry.name)
    assert list(isolated_cache.iterdir()) == []


def test_real_https_downloader_reads_a_url(monkeypatch, tmp_path):
    source = tmp_path / "served.pth"
    source.write_bytes(saved({"w": torch.arange(3.0)}, tmp_path))
    entry = dataclasses.replace(REGISTRY["resnet50-imagenet1k-v1"], url=source.as_uri(),
                                sha256=hashlib.sha256(source.read_bytes()).hexdigest())
    monkeypatch.setitem(REGISTRY, entry.name, entry)
    assert torch.equal(weights.load_state(entry.name)["w"], torch.arange(3.0))


def test_unverified_file_is_trusted_once_then_held_to_its_record(monkeypatch, tmp_path, capsys):
    payload = saved({"model": {"fc_iso.weight": torch.ones(1, 768)}}, tmp_path)
    serve(monkeypatch, "gdrive", payload)
    path = weights.fetch("released")
    record = path.with_name(path.name + ".sha256")
    assert record.read_text().split()[0] == hashlib.sha256(payload).hexdigest()
    assert "unverified" in capsys.readouterr().out
    path.write_bytes(payload + b"tampered")
    with pytest.raises(HashMismatch, match="differs"):
        weights.fetch("released")
    with pytest.raises(HashMismatch):  # a pinned hash is checked on download too
        path.unlink()
        weights.fetch("released", sha256="0" * 64)
    assert not path.exists()


def test_offline_errors_name_the_alternative(monkeypatch):
    def offline(url, out, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setitem(weights.DOWNLOADERS, "https", offline)
    monkeypatch.setitem(weights.DOWNLOADERS, "gdrive", offline)
    with pytest.raises(WeightsUnavailable, match="init='random'") as err:
        build_model("imagenet")
    assert "put it at" in str(err.value) and isinstance(err.value, RuntimeError)
    with pytest.raises(WeightsUnavailable, match="init='imagenet'"):
        weights.fetch("exif-lan")
    with pytest.raises(WeightsUnavailable, match="chapter 4"):
        build_model("released")


def test_google_drive_needs_gdown_and_uses_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gdown", None)  # not installed
    with pytest.raises(WeightsUnavailable, match="pip install gdown"):
        weights.fetch("exif-lan")
    payload = saved({"layer1.0.conv1.weight": torch.zeros(1)}, tmp_path)
    fake = types.ModuleType("gdown")
    fake.download = lambda url, output, quiet: Path(output).write_bytes(payload) and output
    monkeypatch.setitem(sys.modules, "gdown", fake)
    assert weights.fetch("exif-lan").read_bytes() == payload
    fake.download = lambda url, output, quiet: None  # older gdown's answer to a quota or permission error
    (weights.weights_dir() / "exif_pretrained.pth").unlink()
    with pytest.raises(WeightsUnavailable, match="quota"):
        weights.fetch("exif-lan")

    class FileURLRetrievalError(Exception):  # what gdown >= 5 raises instead
        pass

    def refuse(url, output, quiet):
        raise FileURLRetrievalError("Too many users have viewed or downloaded this file recently")

    fake.download = refuse
    with pytest.raises(WeightsUnavailable, match="Too many users"):
        weights.fetch("exif-lan")
    assert not list(weights.weights_dir().glob("*.part"))


def test_store_variable_moves_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("AIGFD_STORE", str(tmp_path / "drive"))
    assert weights.weights_dir() == tmp_path / "drive" / "weights"


def test_weights_only_refuses_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (marker.touch, ())

    torch.save({"model": {"x": Evil()}}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="cannot read"):
        weights.read_state(tmp_path / "evil.pth")
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="exif-lan"):
        build_model(str(tmp_path / "absent.pth"))


# ------------------------------------------------------------------------------------------------ key mapping
@pytest.mark.parametrize("prefix", ["model.visual.", "module.model.visual.", "visual.", "backbone.", ""])
def test_official_layout_maps_onto_exif_manip_net(prefix):
    source = build_model("random", seed=1)
    state = official_state(source, prefix)
    state = {("module." + k if prefix.startswith("module.") else k): v for k, v in state.items()}
    mapped, renames, unmapped = initialisation.map_official_state_dict(state, source)
    assert set(mapped) == set(source.state_dict())  # every tensor of the network is filled
    assert sorted(unmapped) == sorted(k for k in state if k.split(".")[-1] in
                                      {"logit_scale", "positional_embedding"} or "ln_final" in k
                                      or "token_embedding" in k)
    assert renames[("module." if prefix.startswith("module.") else "") + "fc_et.weight"] == "heads.focal_length.weight"


def test_released_checkpoint_loads_through_build_model(monkeypatch, tmp_path):
    source = build_model("random", seed=1)
    state = {f"module.{k}": v for k, v in official_state(source).items()}  # saved from DataParallel
    state["module.model.visual.layer1.0.conv1.weight"] = torch.zeros(64, 64, 3, 3)  # wrong shape: reported
    payload = saved({"epoch": 19, "model": state, "optimizer": {"state": {}}}, tmp_path)
    serve(monkeypatch, "gdrive", payload)
    model = build_model("released", seed=2)
    report = model.load_report
    assert "module.model.logit_scale" in report.unexpected
    assert any(s.startswith("module.model.visual.layer1.0.conv1.weight") for s in report.shape_mismatch)
    assert report.missing == ["backbone.layer1.0.conv1.weight"]
    assert torch.equal(model.backbone.fc.weight, source.backbone.fc.weight)
    assert torch.equal(model.heads["exposure_time"].weight, source.heads["exposure_time"].weight)
    assert torch.equal(model.backbone.layer4[2].bn3.running_mean, source.backbone.layer4[2].bn3.running_mean)
    x = torch.randn(1, 3, 32, 32)
    model.eval(), source.eval()
    model.backbone.layer1[0].conv1.load_state_dict(source.backbone.layer1[0].conv1.state_dict())
    with torch.no_grad():
        assert torch.allclose(model(x)["feature"], source(x)["feature"])
        assert all(torch.allclose(model(x)[t], source(x)[t]) for t in (*TAGS, "manipulation"))


def test_exif_lan_loads_over_imagenet_v1_non_strictly(monkeypatch, tmp_path):
    imagenet = torchvision.models.resnet50(weights=None).state_dict()  # fc: 1000 classes, dropped
    in_payload = saved(imagenet, tmp_path, "in.pth")
    pin_prefix(monkeypatch, "resnet50-imagenet1k-v1", in_payload)
    serve(monkeypatch, "https", in_payload)
    tower = build_model("random", seed=5).backbone.state_dict()
    exif = {f"visual.{k}": v for k, v in tower.items() if k.startswith(("layer4.", "fc."))}
    exif["transformer.resblocks.0.attn.in_proj_weight"] = torch.zeros(3, 3)  # the text tower: ignored
    serve(monkeypatch, "gdrive", saved({"model": exif}, tmp_path, "exif.pth"))
    model = build_model("exif-lan", seed=9)
    report = model.load_report
    assert report.source == "exif-lan" and report.unexpected == ["transformer.resblocks.0.attn.in_proj_weight"]
    assert "heads.iso.weight" in report.missing and "backbone.conv1.weight" in report.missing
    assert torch.equal(model.backbone.conv1.weight, imagenet["conv1.weight"])  # from ImageNet
    assert torch.equal(model.backbone.layer4[0].conv1.weight, tower["layer4.0.conv1.weight"])  # from EXIF
    assert torch.equal(model.backbone.fc.weight, tower["fc.weight"])


def test_full_profile_starts_from_the_papers_init_and_lite_stays_offline():
    from aigfd_lite import resolve

    assert resolve("full").init == "exif-lan" and resolve("lite").init == "imagenet"  # offline MobileNetV2 file
