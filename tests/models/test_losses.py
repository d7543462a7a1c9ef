"""VG-net losses (Chen et al. CVPR 2019, Sec. 3.3-3.5; public code `vgnet.py`): exact values on hand-built inputs."""
import pytest
import torch

from models.atvgnet import VGNetLossConfig, discriminator_loss, generator_loss
from models.atvgnet.losses import MOUTH_Y_INDICES, gan_loss, landmark_loss, pixel_loss

B, T, S = 2, 3, 8


def frames_pair(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, T, 3, S, S, generator=g) * 2 - 1, torch.rand(B, T, 3, S, S, generator=g) * 2 - 1


def test_mouth_indices_are_the_y_of_points_48_to_67():
    assert MOUTH_Y_INDICES == tuple(range(97, 136, 2))  # the public code's musk[:, 97 + jj], jj = 0, 2, ..., 38


def test_mouth_y_error_costs_100_times_another():
    target = torch.zeros(1, 1, 136)
    costs = {}
    for i in (96, 97, 0, 1, 135, 134, 95):  # 96 is point 48's x, 95 point 47's y
        pred = target.clone()
        pred[..., i] = 0.1
        costs[i] = float(landmark_loss(pred, target))
    for mouth_y in (97, 135, 1):
        ratio = costs[mouth_y] / costs[96]
        assert ratio == pytest.approx(100.0 if mouth_y != 1 else 1.0, rel=1e-5)
    assert costs[0] == pytest.approx(0.01 / 136) and costs[95] == costs[134] == costs[96]
    # the public code's MSE-after-masking is the same as mouth_weight = 100^2
    pred = torch.randn(2, 4, 136)
    true = torch.randn(2, 4, 136)
    musk = torch.ones(136)
    musk[list(MOUTH_Y_INDICES)] = 100.0
    code = torch.nn.functional.mse_loss(pred * musk, true * musk)
    assert torch.allclose(landmark_loss(pred, true, mouth_weight=1e4), code, rtol=1e-5)


def test_dynamic_loss_with_zero_and_full_attention():
    fake, real = frames_pair()
    l1 = (fake - real).abs().mean()
    cfg = VGNetLossConfig()
    zeros, ones = torch.zeros(B, T, 1, S, S), torch.ones(B, T, 1, S, S)
    assert torch.allclose(pixel_loss(fake, real, zeros, cfg), 0.5 * 10 * l1)  # beta * lambda * L1
    assert torch.allclose(pixel_loss(fake, real, ones, cfg), 1.5 * 10 * l1)
    # per-pixel weighting: attention 1 on the left half only
    half = zeros.clone()
    half[..., : S // 2] = 1.0
    d = (fake - real).abs()
    expected = 10 * (d[..., : S // 2].sum() * 1.5 + d[..., S // 2:].sum() * 0.5) / d.numel()
    assert torch.allclose(pixel_loss(fake, real, half, cfg), expected)


def test_dynamic_loss_does_not_train_the_attention():
    fake, real = frames_pair()
    fake.requires_grad_()
    att = torch.rand(B, T, 1, S, S, requires_grad=True)
    pixel_loss(fake, real, att, VGNetLossConfig()).backward()
    assert att.grad is None and fake.grad.abs().sum() > 0


def test_without_dal_plain_l1():
    fake, real = frames_pair()
    cfg = VGNetLossConfig(use_dal=False)
    l1 = (fake - real).abs().mean()
    for att in (None, torch.zeros(B, T, 1, S, S), torch.rand(B, T, 1, S, S)):
        assert torch.allclose(pixel_loss(fake, real, att, cfg), 10 * l1)
    with pytest.raises(ValueError):
        pixel_loss(fake, real, None, VGNetLossConfig())


def test_gan_forms():
    logits = torch.tensor([-2.0, 0.5, 3.0])
    # "bce" is the public code's BCELoss on sigmoid(score)
    assert torch.allclose(gan_loss(logits, True), torch.nn.BCELoss()(torch.sigmoid(logits), torch.ones(3)))
    assert torch.allclose(gan_loss(logits, False), torch.nn.BCELoss()(torch.sigmoid(logits), torch.zeros(3)))
    assert torch.allclose(gan_loss(logits, True, "lsgan"), ((logits - 1) ** 2).mean())
    assert torch.allclose(gan_loss(logits, False, "lsgan"), (logits ** 2).mean())
    with pytest.raises(ValueError):
        VGNetLossConfig(gan_loss="hinge")


def test_generator_and_discriminator_totals():
    fake, real = frames_pair()
    fake.requires_grad_()
    att = torch.rand(B, T, 1, S, S)
    lmk = torch.rand(B, T, 136) * 2 - 1
    fake_lmk = (lmk + 0.1 * torch.randn(B, T, 136)).requires_grad_()
    real_lmk = lmk + 0.05 * torch.randn(B, T, 136)
    fake_score, real_score = torch.randn(B, requires_grad=True), torch.randn(B)
    cfg = VGNetLossConfig()
    g = generator_loss(fake, real, att, fake_score, fake_lmk, lmk, cfg)
    assert set(g) == {"pixel", "gan", "landmark", "total"} and all(v.ndim == 0 for v in g.values())
    assert torch.allclose(g["total"], g["gan"] + g["pixel"] + g["landmark"])
    assert torch.allclose(g["landmark"], landmark_loss(fake_lmk, lmk, 100.0))
    g["total"].backward()
    assert fake.grad.abs().sum() > 0 and fake_score.grad.abs().sum() > 0 and fake_lmk.grad.abs().sum() > 0
    d = discriminator_loss(real_score, fake_score.detach(), real_lmk, fake_lmk.detach(), lmk, cfg)
    assert set(d) == {"real", "fake", "landmark_real", "landmark_fake", "total"}
    assert torch.allclose(d["total"], d["real"] + d["fake"] + d["landmark_real"] + d["landmark_fake"])
    assert torch.allclose(d["fake"], gan_loss(fake_score.detach(), False))
    weighted = VGNetLossConfig(lambda_gan=2.0, lambda_landmark=3.0)
    g2 = generator_loss(fake, real, att, fake_score, fake_lmk, lmk, weighted)
    assert torch.allclose(g2["total"], 2 * g2["gan"] + g2["pixel"] + 3 * g2["landmark"])


def test_without_rd_no_landmark_terms():
    fake, real = frames_pair()
    lmk = torch.rand(B, T, 136)
    cfg = VGNetLossConfig(use_rd=False)
    score = torch.randn(B)
    g = generator_loss(fake, real, torch.rand(B, T, 1, S, S), score, None, lmk, cfg)
    assert float(g["landmark"]) == 0.0 and torch.allclose(g["total"], g["gan"] + g["pixel"])
    g_rd = generator_loss(fake, real, torch.rand(B, T, 1, S, S), score, lmk + 1, lmk, cfg)
    assert torch.equal(g_rd["landmark"], g["landmark"])  # predictions ignored
    d = discriminator_loss(score, -score, None, None, lmk, cfg)
    assert float(d["landmark_real"]) == float(d["landmark_fake"]) == 0.0
    assert torch.allclose(d["total"], d["real"] + d["fake"])
    with pytest.raises(ValueError):
        generator_loss(fake, real, torch.rand(B, T, 1, S, S), score, None, lmk, VGNetLossConfig())


def test_config_round_trip():
    cfg = VGNetLossConfig(use_dal=False, gan_loss="lsgan")
    assert VGNetLossConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(TypeError):
        VGNetLossConfig.from_dict({"nope": 1})
