"""Tests of aigfd_lite.blades.joint_embedding (chapter 7): head shapes always agree with the task table's labels, logits
are scaled cosines, and CLIP's text tower (through a local open_clip stand-in) or a clear offline error."""
from __future__ import annotations

import sys

import pytest
import torch

from aigfd_lite.blades.training import task_losses
from aigfd_lite.blades.tasks import TASKS, prompts
from aigfd_lite.blades.joint_embedding import BladesNet, JointEmbeddingHeads, LearnedPromptTower, build_text_tower


def test_head_shapes_always_agree_with_labels():
    heads = JointEmbeddingHeads(build_text_tower("learned", dim=12))
    out = heads(torch.randn(5, 12))
    for t in TASKS:
        assert out[t.name].shape == (5, t.n_targets), t.name  # one logit per class (per label for parts)
        if t.kind in ("categorical", "ordinal"):
            target = torch.full((5,), t.n_targets - 1)  # the largest label the table can produce
            assert out[t.name].gather(1, target[:, None]).shape == (5, 1)


def test_a_tower_with_other_prompts_is_refused():
    with pytest.raises(ValueError, match="prompts"):
        JointEmbeddingHeads(LearnedPromptTower(prompts()[:-1], 8))


def test_logits_are_scaled_cosines():
    tower = build_text_tower("learned", dim=6)
    heads = JointEmbeddingHeads(tower)
    feature = torch.randn(3, 6)
    out = heads(feature)
    text = torch.nn.functional.normalize(tower.table[:3], dim=1)  # the aperture task's three prompts
    expected = (1 / 0.07) * torch.nn.functional.normalize(feature, dim=1) @ text.T
    assert torch.allclose(out["aperture"], expected, atol=1e-4)
    assert out["aperture"].abs().max() <= 1 / 0.07 + 1e-4


class _FakeOpenClip:
    def __init__(self, fail=None):
        self.fail, self.calls = fail, []

    def create_model_and_transforms(self, arch, pretrained=None):
        self.calls.append((arch, pretrained))
        if self.fail:
            raise self.fail

        class Tiny(torch.nn.Module):
            def encode_text(self, tokens):
                return tokens.float() @ torch.ones(tokens.shape[1], 10)

        return Tiny(), None, None

    def get_tokenizer(self, arch):
        return lambda texts: torch.tensor([[len(t), t.count(" ")] for t in texts])


def test_clip_text_tower_through_open_clip(monkeypatch):
    fake = _FakeOpenClip()
    monkeypatch.setitem(sys.modules, "open_clip", fake)
    tower = build_text_tower("clip", dim=16)
    assert fake.calls == [("RN50", "openai")]
    assert tower().shape == (len(prompts()), 16)
    model = BladesNet(torch.nn.Linear(4, 16), JointEmbeddingHeads(tower), 16)
    rebuilt = BladesNet(torch.nn.Linear(4, 16), JointEmbeddingHeads(
        build_text_tower("clip", 16, state=model.state_dict())), 16)  # from a checkpoint: no download
    assert fake.calls == [("RN50", "openai")]
    rebuilt.load_state_dict(model.state_dict())


def test_clip_offline_errors_name_the_lite_alternative(monkeypatch):
    import urllib.error

    monkeypatch.setitem(sys.modules, "open_clip", _FakeOpenClip(fail=urllib.error.URLError("no network")))
    with pytest.raises(RuntimeError, match="cannot download.*text_tower='learned'"):
        build_text_tower("clip")
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(RuntimeError, match="pip install open_clip_torch.*text_tower='learned'"):
        build_text_tower("clip")
    with pytest.raises(ValueError, match="unknown text tower"):
        build_text_tower("bert")


def test_losses_run_on_head_outputs_for_any_batch():
    net = BladesNet(torch.nn.Flatten(), JointEmbeddingHeads(build_text_tower("learned", dim=12)), 12)
    x = torch.randn(4, 3, 2, 2)
    levels = torch.tensor([[0, 1, 2, -1]] * 4)
    categorical = torch.tensor([[t.n_targets - 1 for t in TASKS if t.kind == "categorical"]] * 4)
    batch = (x, levels, categorical, torch.tensor([0, 1, 1, 0]), torch.tensor([[0.0, 0], [1, 0], [0, 1], [0, 0]]))
    assert torch.isfinite(task_losses(net(x), batch)).all()
