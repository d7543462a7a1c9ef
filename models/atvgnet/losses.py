"""ATVGnet VG-net losses: dynamic pixel-wise L1, landmark regression with a mouth weighting, GAN terms.

Chen, Maddox, Duan, Xu. "Hierarchical Cross-Modal Talking Face Generation with Dynamic Pixel-Wise Loss", CVPR 2019,
Sec. 3.3-3.5, and the authors' training script (lelechen63/ATVGnet, `code/vgnet.py`, `Trainer.fit`):

- dynamic pixel-wise loss (DAL): lambda * mean(|frames - real| * (stop_grad(alpha) + beta)), lambda = 10, beta = 0.5
  (vgnet.py: `loss_musk = att.detach() + 0.5; loss_pix = mean(|fake - real| * loss_musk)`; `10 * loss_pix`);
- regression discriminator (RD): D_p regresses the 136 landmark coordinates of every frame; MSE against the true
  landmarks with the y-coordinates of the mouth points 48-67 (flat indices 97, 99, ..., 135) weighted;
  the discriminator minimises it on real and on generated frames, the generator on its generated frames;
- GAN: the public code uses `nn.BCELoss` on sigmoid(mean over T of the per-frame decisions), i.e. the standard
  (non-saturating for G) GAN with binary cross-entropy; here `gan_loss="bce"` computes exactly that from the
  discriminator's logit with `binary_cross_entropy_with_logits`. `gan_loss="lsgan"` (least squares on the logit,
  targets 1 / 0) is offered as an alternative, not the paper's.

Totals, as the public code weights them:
    generator     = lambda_gan * GAN(fake -> real) + lambda_pix * pixel + lambda_landmark * landmark(fake)
    discriminator = GAN(real -> real) + GAN(fake -> fake) + landmark(real) + landmark(fake)

Where this differs from the public code, deliberately:
- mouth weighting: `mouth_weight` multiplies the *squared* error (a mouth-y error of the same size costs 100x, as
  DESIGN reads the paper). The public code multiplies prediction and target by the mask *before* the MSE
  (`mse(d * musk, r * musk)`), so its effective weight on the squared error is 100^2 = 10^4; set
  `mouth_weight=1e4` to reproduce the code.
- the public generator step feeds `fake_im.detach()` to the discriminator, so its GAN and landmark terms never reach
  the generator (a bug); here the training loop passes undetached frames and the terms train the generator.

Ablations (paper Table 3): `use_dal=False` -> plain lambda * L1 (no attention weighting, no beta);
`use_rd=False` -> no landmark regression terms anywhere (a plain sequence GAN); the dict keeps the keys, as zeros.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models.atvgnet.vg_net import N_LANDMARK_COORDS
from models.config import DictConfig

MOUTH_POINTS = range(48, 68)  # dlib 68-point mouth (outer lip 48-59, inner lip 60-67)
MOUTH_Y_INDICES = tuple(2 * i + 1 for i in MOUTH_POINTS)  # y in the flat (x0, y0, x1, y1, ...) layout: 97, ..., 135


@dataclass(frozen=True)
class VGNetLossConfig(DictConfig):
    """Loss weights and switches; defaults are the paper's / public code's (see the module docstring).

    lambda_pix: weight of the (dynamic) pixel-wise L1 (10).
    beta: constant added to the detached attention in the dynamic weighting (0.5).
    lambda_gan: weight of the generator's adversarial term (1).
    lambda_landmark: weight of the generator's landmark regression term (1).
    mouth_weight: weight on the squared error of the mouth y-coordinates (100; the public code's effective 1e4).
    gan_loss: "bce" (the paper's code: BCE on sigmoid of the score) or "lsgan" (least squares on the score).
    use_dal: dynamic attention-weighted L1; False -> plain L1.
    use_rd: regression discriminator terms; False -> none (plain sequence GAN).
    """

    lambda_pix: float = 10.0
    beta: float = 0.5
    lambda_gan: float = 1.0
    lambda_landmark: float = 1.0
    mouth_weight: float = 100.0
    gan_loss: str = "bce"
    use_dal: bool = True
    use_rd: bool = True

    def __post_init__(self):
        if self.gan_loss not in ("bce", "lsgan"):
            raise ValueError(f"gan_loss must be 'bce' or 'lsgan', got {self.gan_loss!r}")


def landmark_weights(mouth_weight: float, n: int = N_LANDMARK_COORDS, device=None) -> torch.Tensor:
    """Per-coordinate weights float32 (n,): 1 everywhere, `mouth_weight` at the mouth y-coordinates."""
    w = torch.ones(n, device=device)
    w[list(MOUTH_Y_INDICES)] = mouth_weight
    return w


def landmark_loss(pred: torch.Tensor, target: torch.Tensor, mouth_weight: float = 100.0) -> torch.Tensor:
    """Weighted MSE: mean over all elements of w * (pred - target)^2, w from `landmark_weights`.

    pred, target: float (..., 136) in the same normalised coordinates. Returns a scalar.
    Raises ValueError on mismatched shapes or a last dimension other than 136.
    """
    if pred.shape != target.shape or pred.shape[-1] != N_LANDMARK_COORDS:
        raise ValueError(f"pred and target must be equal (..., 136), got {tuple(pred.shape)}, {tuple(target.shape)}")
    w = landmark_weights(mouth_weight, device=pred.device).to(pred.dtype)  # (136,)
    return (w * (pred - target).pow(2)).mean()


def pixel_loss(frames: torch.Tensor, real_frames: torch.Tensor, attention: torch.Tensor | None,
               cfg: "VGNetLossConfig") -> torch.Tensor:
    """The (dynamic) pixel-wise L1, already times lambda_pix. Returns a scalar.

    frames, real_frames: float (B, T, 3, H, W) in [-1, 1]; attention: float (B, T, 1, H, W) in [0, 1], broadcast
    over channels and detached (the loss does not train the attention through its weights); may be None when
    cfg.use_dal is False. use_dal: lambda * mean(|frames - real| * (alpha + beta)); otherwise lambda * mean|...|.
    Raises ValueError on mismatched shapes or a missing attention with use_dal.
    """
    if frames.shape != real_frames.shape:
        raise ValueError(f"frames {tuple(frames.shape)} and real_frames {tuple(real_frames.shape)} differ")
    diff = (frames - real_frames).abs()  # (B, T, 3, H, W)
    if cfg.use_dal:
        if attention is None or attention.shape != (*frames.shape[:2], 1, *frames.shape[3:]):
            raise ValueError(f"use_dal needs attention (B, T, 1, H, W), got "
                             f"{None if attention is None else tuple(attention.shape)}")
        diff = diff * (attention.detach() + cfg.beta)  # (B, T, 1, H, W) broadcast over the 3 channels
    return cfg.lambda_pix * diff.mean()


def gan_loss(score: torch.Tensor, real: bool, form: str = "bce") -> torch.Tensor:
    """Adversarial loss of logits (B,) against the target "real" (1) or "fake" (0). Scalar.

    "bce": binary cross-entropy of sigmoid(score) (= the public code's BCELoss on its sigmoid output);
    "lsgan": mean((score - target)^2) (Mao et al. 2017).
    """
    target = torch.full_like(score, 1.0 if real else 0.0)
    if form == "bce":
        return F.binary_cross_entropy_with_logits(score, target)
    if form == "lsgan":
        return F.mse_loss(score, target)
    raise ValueError(f"unknown GAN loss form {form!r}")


def generator_loss(frames: torch.Tensor, real_frames: torch.Tensor, attention: torch.Tensor | None,
                   fake_score: torch.Tensor, fake_landmarks: torch.Tensor | None, landmarks: torch.Tensor,
                   cfg: VGNetLossConfig = VGNetLossConfig()) -> dict[str, torch.Tensor]:
    """Generator (VG-net) loss terms.

    frames: generated (B, T, 3, H, W), NOT detached; real_frames: ground truth, same shape; attention: VG-net's
    alpha (B, T, 1, H, W) (None allowed when cfg.use_dal is False); fake_score (B,): discriminator logit on the
    generated frames; fake_landmarks (B, T, 136): D_p on the generated frames (None allowed when cfg.use_rd is
    False); landmarks (B, T, 136): the true landmarks (the ones the generator was driven by).
    Returns scalar tensors: "pixel" (already x lambda_pix), "gan", "landmark" (0 without RD) and
    "total" = lambda_gan * gan + pixel + lambda_landmark * landmark.
    """
    pixel = pixel_loss(frames, real_frames, attention, cfg)
    gan = gan_loss(fake_score, real=True, form=cfg.gan_loss)  # G wants D to call its frames real
    if cfg.use_rd:
        if fake_landmarks is None:
            raise ValueError("use_rd needs fake_landmarks (B, T, 136)")
        landmark = landmark_loss(fake_landmarks, landmarks, cfg.mouth_weight)
    else:
        landmark = pixel.new_zeros(())
    total = cfg.lambda_gan * gan + pixel + cfg.lambda_landmark * landmark
    return {"pixel": pixel, "gan": gan, "landmark": landmark, "total": total}


def discriminator_loss(real_score: torch.Tensor, fake_score: torch.Tensor, real_landmarks: torch.Tensor | None,
                       fake_landmarks: torch.Tensor | None, landmarks: torch.Tensor,
                       cfg: VGNetLossConfig = VGNetLossConfig()) -> dict[str, torch.Tensor]:
    """Discriminator loss terms.

    real_score, fake_score: logits (B,) on real and on generated (detached) frames; real_landmarks, fake_landmarks:
    D_p's regressions (B, T, 136) on them (None allowed when cfg.use_rd is False); landmarks: the true (B, T, 136).
    Returns scalar tensors: "real", "fake" (GAN terms), "landmark_real", "landmark_fake" (0 without RD), and
    "total" = real + fake + landmark_real + landmark_fake (public code's weights).
    """
    real = gan_loss(real_score, real=True, form=cfg.gan_loss)
    fake = gan_loss(fake_score, real=False, form=cfg.gan_loss)
    if cfg.use_rd:
        if real_landmarks is None or fake_landmarks is None:
            raise ValueError("use_rd needs real_landmarks and fake_landmarks (B, T, 136)")
        lm_real = landmark_loss(real_landmarks, landmarks, cfg.mouth_weight)
        lm_fake = landmark_loss(fake_landmarks, landmarks, cfg.mouth_weight)
    else:
        lm_real = lm_fake = real.new_zeros(())
    total = real + fake + lm_real + lm_fake
    return {"real": real, "fake": fake, "landmark_real": lm_real, "landmark_fake": lm_fake, "total": total}
