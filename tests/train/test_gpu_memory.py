"""Tests of aigfd_lite.train.gpu_memory: the bytes one training step holds, counted on small networks by hand."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from aigfd_lite.train.gpu_memory import GIB, estimate_training_memory, fits, measure_step, memory_table, with_world_size
from aigfd_lite.models.network import ExifManipNet
from test_train import tiny_config


def mlp() -> ExifManipNet:
    torch.manual_seed(0)
    return ExifManipNet(feature_dim=32, backbone=nn.Sequential(nn.Flatten(), nn.Linear(48, 32), nn.ReLU()))


def convnet() -> ExifManipNet:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
                             nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                             nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 16))
    return ExifManipNet(feature_dim=16, backbone=backbone)


def test_saved_bytes_are_counted_by_hand_and_the_fixed_part_is_adamw_state():
    """fp32, no autocast: autograd keeps the first Linear's input (the channels-last batch flattened: a copy, 48
    floats) and ReLU's output (32 floats, the heads' input too): 320 bytes per image; weights are parameters."""
    for batch in (2, 4, 8):
        row = measure_step(mlp(), batch, input_size=4, dtype=torch.float32)
        assert row["saved_bytes"] == 320 * batch
        assert row["saved_bytes"] <= row["peak_bytes"] < row["peak_with_gradients_bytes"]
    cfg = tiny_config(input_size=4, feature_dim=32)
    estimate = estimate_training_memory(cfg, batches=(2, 4, 8), model=mlp())
    params = sum(p.numel() for p in mlp().parameters()) * 4
    fixed = estimate["fixed"]
    assert fixed["parameters"] == fixed["gradients"] == params and fixed["adamw_moments"] == 2 * params
    assert fixed["ddp_gradient_buckets"] == 0
    assert estimate["input_per_image_bytes"] == 3 * 4 * 4 * 4
    assert estimate["saved_per_image_bytes"] == pytest.approx(320 * 0.5, rel=1e-9)  # bf16 autocast: 2 bytes
    two = estimate_training_memory(with_world_size(cfg, 2), batches=(2, 4), model=mlp())
    assert two["fixed"]["ddp_gradient_buckets"] == params
    with pytest.raises(ValueError, match="two batch sizes"):
        estimate_training_memory(cfg, batches=(2,), model=mlp())


def test_a_convnet_is_linear_in_the_batch_and_half_precision_halves_the_activations():
    cfg = tiny_config(input_size=16, feature_dim=16)
    estimate = estimate_training_memory(cfg, batches=(2, 4, 8), model=convnet())
    assert estimate["linearity"] < 0.02 and estimate["dtype"] == "bfloat16"
    assert estimate["activation_per_image_bytes"] >= 0.95 * estimate["saved_per_image_bytes"] > 0
    fp32 = [measure_step(convnet(), b, 16, dtype=torch.float32)["saved_bytes"] for b in (4, 8)]
    half = [measure_step(convnet(), b, 16, dtype=torch.bfloat16)["saved_bytes"] for b in (4, 8)]
    ratio = (half[1] - half[0]) / (fp32[1] - fp32[0])
    assert 0.4 < ratio < 0.8, ratio  # 2-byte activations (BatchNorm's statistics stay fp32)


def test_fits_and_table_apply_context_and_fragmentation():
    estimate = {"fixed_bytes": 1.0 * GIB, "per_image_bytes": 0.05 * GIB}
    assert fits(estimate, 128, 16 * GIB) and not fits(estimate, 256, 16 * GIB)
    assert fits(estimate, 256, 16 * GIB, context_gb=0.5, fragmentation=0.05)  # 13.8 x 1.05 = 14.5 <= 15.5
    table = memory_table(estimate, (128, 256), gpu_gb=16)
    assert list(table["fits 16 GiB"]) == [True, False]
    assert table["estimated GiB"].tolist() == pytest.approx([7.4, 13.8])
