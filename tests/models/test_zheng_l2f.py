"""Zheng et al. 2020 L2F (`models.zheng.l2f`, Sec. III-B): the landmark heatmaps peak at the landmarks in the store's
pixel convention, the pix2pix U-Net and PatchGAN shapes and sizes at both presets, the Eq. 8 lip crop follows the
landmarks (and only the image gets gradients), the lip loss sees the mouth and nothing else, and the small U-Net
learns a fixed batch."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from models.zheng.l2f import (L2FConfig, PatchDiscriminator, UNetGenerator, crop_boxes, crop_lips, landmark_heatmaps,
                              lip_boxes, lip_loss)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def face_landmarks(B: int = 2, seed: int = 0) -> torch.Tensor:
    """(B, 68, 2) crop pixels at 128: random points for the face, the lips (48-67) on an ellipse 40 x 16 px about
    (64, 96) with a little per-face jitter (their box: about 60 x 30 px, x 34-94, y 81-111)."""
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(B, 68, 2, generator=g) * 100 + 14
    angle = torch.linspace(0, 2 * math.pi, 21)[:20]
    lips = torch.stack([64 + 20 * angle.cos(), 96 + 8 * angle.sin()], dim=1)  # (20, 2)
    pts[:, 48:68] = lips + torch.randn(B, 20, 2, generator=g) * 0.5
    return pts


def mouth_image(B: int = 2, centre: tuple[float, float] = (64.0, 96.0), seed: int = 0) -> torch.Tensor:
    """(B, 3, 128, 128) in [-1, 1]: a smooth random background with a bright checkered patch about `centre` (x, y)."""
    g = torch.Generator().manual_seed(seed)
    img = F.interpolate(torch.rand(B, 3, 8, 8, generator=g) * 2 - 1, size=(128, 128), mode="bilinear")
    x, y = int(centre[0]), int(centre[1])
    checks = (torch.arange(20).view(-1, 1) // 4 + torch.arange(36).view(1, -1) // 4) % 2  # (20, 36)
    img[:, :, y - 10:y + 10, x - 18:x + 18] = checks.float() * 1.6 - 0.8
    return img


@pytest.mark.parametrize("size", [128, 64])
def test_heatmaps_peak_at_the_landmarks(size):
    g = torch.Generator().manual_seed(size)
    landmarks = torch.rand(3, 68, 2, generator=g) * (size - 1)  # sub-pixel, inside the image
    heat = landmark_heatmaps(landmarks, size, sigma=2.0 * size / 128)
    assert heat.shape == (3, 68, size, size) and heat.dtype == torch.float32
    assert heat.min() >= 0 and heat.max() <= 1
    peak = heat.flatten(2).argmax(dim=2)  # (3, 68)
    rows, cols = peak // size, peak % size  # pixel (i, j) is centred at (x=j, y=i)
    assert (cols - landmarks[..., 0]).abs().max() <= 1 and (rows - landmarks[..., 1]).abs().max() <= 1

    on_pixel = landmark_heatmaps(torch.tensor([[[10.0, 20.0]]]), size, sigma=2.0)[0, 0]  # x=10, y=20
    assert on_pixel[20, 10] == 1 and on_pixel.argmax() == 20 * size + 10
    torch.testing.assert_close(on_pixel[20, 13], torch.tensor(math.exp(-9 / 8)))  # 3 px right: exp(-3^2 / 2 sigma^2)

    mask = torch.arange(68) % 3 != 0  # landmark 0 masked out
    landmarks[:, 0] = float("nan")  # a masked-out landmark may be missing
    masked = landmark_heatmaps(landmarks, size, sigma=2.0 * size / 128, mask=mask)
    assert (masked[:, ~mask] == 0).all() and torch.equal(masked[:, mask], heat[:, mask])


def test_heatmaps_refuse_bad_inputs():
    with pytest.raises(ValueError, match="landmarks"):
        landmark_heatmaps(torch.zeros(2, 68), 128, 2.0)
    with pytest.raises(ValueError, match="mask"):
        landmark_heatmaps(torch.zeros(2, 68, 2), 128, 2.0, mask=torch.ones(67, dtype=torch.bool))


@pytest.mark.parametrize("preset", ["paper", "small"])
def test_generator_and_discriminator_shapes(preset):
    torch.manual_seed(0)
    cfg = L2FConfig.preset(preset)
    G, D = UNetGenerator(cfg), PatchDiscriminator(cfg)
    if preset == "paper":
        assert cfg == L2FConfig()
        # pix2pix unet_128 with 3 input channels is 41,828,995 (its 54,413,955 is unet_256, one level deeper); the
        # 68 heatmap channels add 68 * 64 * 4 * 4 = 69,632 first-conv weights. The D: pix2pix's 6-channel basic D
        # (2,768,705) plus 65 input channels * 64 * 16.
        assert n_params(G) == 41_828_995 + 69_632 == 41_898_627
        assert n_params(D) == 2_768_705 + 66_560 == 2_835_265
    else:
        assert n_params(G) == 664_147 and n_params(D) == 53_353
    identity = torch.rand(2, 3, 128, 128) * 2 - 1
    heat = landmark_heatmaps(face_landmarks(), 128, cfg.sigma)
    with torch.no_grad():
        fake = G(identity, heat)
        logits = D(fake, heat)
    assert fake.shape == (2, 3, 128, 128) and fake.dtype == torch.float32 and fake.abs().max() <= 1
    assert logits.shape == (2, 1, 14, 14)  # one per 70x70 patch
    with pytest.raises(ValueError, match="heatmaps"):
        G(identity, heat[:, :67])
    with pytest.raises(ValueError, match="identity"):
        G(identity[..., :64, :64], heat)
    with pytest.raises(ValueError, match="frame"):
        D(fake[:, :1], heat)


def test_config_checks_and_presets():
    assert L2FConfig.from_dict(L2FConfig.preset("small").to_dict()) == L2FConfig.preset("small")
    with pytest.raises(KeyError):
        L2FConfig.preset("large")
    with pytest.raises(ValueError, match="divisible"):
        L2FConfig(image_size=96)
    with pytest.raises(ValueError, match="n_down"):
        L2FConfig(n_down=4)
    assert PatchDiscriminator(L2FConfig(image_size=256, n_down=8, d_filters=8))(
        torch.zeros(1, 3, 256, 256), torch.zeros(1, 68, 256, 256)).shape == (1, 1, 30, 30)


def test_crop_boxes_map_pixel_edges_exactly():
    images = torch.randn(2, 3, 128, 128)
    boxes = torch.tensor([[9.5, 39.5, 73.5, 71.5]]).repeat(2, 1)  # 64 x 32 pixels, edges on pixel edges
    torch.testing.assert_close(crop_boxes(images, boxes, (32, 64)), images[:, :, 40:72, 10:74], rtol=0, atol=1e-5)
    # 2x down: output pixel s samples x = 9.5 + (s + 0.5) * 2 = 10.5 + 2 s, half-way between pixels 10 + 2 s and
    # 11 + 2 s (same in y), so bilinear sampling is a 2x2 average pool; the box stays inside the image
    halved = crop_boxes(images, torch.tensor([[9.5, 39.5, 121.5, 95.5]]).repeat(2, 1), (28, 56))
    torch.testing.assert_close(halved, F.avg_pool2d(images[:, :, 40:96, 10:122], 2), rtol=0, atol=1e-4)


def test_the_lip_crop_follows_the_landmarks():
    landmarks, images = face_landmarks(), mouth_image()
    boxes = lip_boxes(landmarks)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    torch.testing.assert_close(w / h, torch.full((2,), 2.0))
    lip_w = landmarks[:, 48:68, 0].amax(1) - landmarks[:, 48:68, 0].amin(1)
    torch.testing.assert_close(w, lip_w * 1.5)  # the lips are wider than 2:1 here: 25 % of their width per side

    crops = crop_lips(images, landmarks)
    assert crops.shape == (2, 3, 32, 64)
    shift = (7, -5)  # (x, y) pixels
    moved = torch.roll(images, shifts=(shift[1], shift[0]), dims=(2, 3))
    together = crop_lips(moved, landmarks + torch.tensor(shift, dtype=torch.float32))
    torch.testing.assert_close(together, crops, rtol=0, atol=1e-5)
    assert (crop_lips(moved, landmarks) - crops).abs().mean() > 0.2  # the image alone moved: the mouth left the box

    # a sub-pixel move: bilinear sampling reproduces a linear image exactly
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    ramp = lambda dx, dy: ((xx - dx) * 0.01 - (yy - dy) * 0.005).expand(2, 1, 128, 128)  # noqa: E731
    sub = torch.tensor([0.3, -0.7])
    torch.testing.assert_close(crop_lips(ramp(*sub.tolist()), landmarks + sub), crop_lips(ramp(0, 0), landmarks),
                               rtol=0, atol=1e-5)


def test_gradients_reach_the_image_not_the_landmarks():
    images = mouth_image().requires_grad_()
    landmarks = face_landmarks().requires_grad_()
    crop_lips(images, landmarks).square().sum().backward()
    assert landmarks.grad is None
    grad = images.grad.abs().sum(dim=(0, 1))  # (128, 128)
    assert grad[84:108, 40:88].sum() > 0 and grad[:60].sum() == 0 and grad[:, :30].sum() == 0


def test_lip_loss_sees_the_mouth_only():
    landmarks, real = face_landmarks(), mouth_image()
    assert lip_loss(real, real.clone(), landmarks) == 0
    fake = real.clone()
    fake[:, :, 92:100, 56:72] = 0  # inside the lip box
    assert lip_loss(fake, real, landmarks) > 0.01
    far = fake.clone()
    far[:, :, :40] = torch.rand_like(far[:, :, :40])  # the top third: far outside the box
    far[:, :, :, :20] = -1
    assert lip_loss(far, real, landmarks) == lip_loss(fake, real, landmarks)
    with pytest.raises(ValueError, match="one shape"):
        lip_loss(fake[:1], real, landmarks)


def test_the_small_unet_learns_a_fixed_batch():
    torch.manual_seed(0)
    cfg = L2FConfig.preset("small")
    G = UNetGenerator(cfg).train()
    identity, target, landmarks = mouth_image(seed=1), mouth_image(seed=2), face_landmarks()
    heat = landmark_heatmaps(landmarks, cfg.image_size, cfg.sigma)
    opt = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(12):
        fake = G(identity, heat)
        loss = F.l1_loss(fake, target) + lip_loss(fake, target, landmarks)  # Eq. 7 + Eq. 8
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
