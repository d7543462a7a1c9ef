"""The lip GAN's losses (Chen et al. ECCV 2018, Eq. 1–4; `../shared/specs/chen2018-lipgan.md` §4, §6) with the
switches of the paper's Table 2 ablations.

    G:  λ_gan·BCE(D(s, v̂), 1) + λ_corr·ℓ_corr + λ_perc·MSE(φ(v̂), φ(v)) + λ_pix·L1(v̂, v)
        ℓ_corr = ½·(1 − cos(a, φ_v(F(v)))) + ½·(1 − cos(a, φ_v(F(v̂))))   a = φ_s(f_s), batch means   (Eq. 1)
    D:  BCE(D(s, v), 1) + ½·BCE(D(s, v̂), 0) + ½·BCE(D(s_k, v), 0)   s_k: another window's audio        (Eq. 4)

BCE on logits (`binary_cross_entropy_with_logits`: the same function as the authors' sigmoid + BCELoss, stable).
λ_gan = λ_corr = λ_perc = 1, λ_pix = 0.5 (the paper; the authors' code uses 0.2). Switches (Tab. 2):
`use_gan` (a: no GAN), `use_pixel` (b), `use_perceptual` (c), `corr` "derivative" | "non_derivative" (f) | "none"
(d), `fake_corr` (the generated-motion half of ℓ_corr; without it the real half has weight 1), `mismatch_negatives`
(the mismatched-audio negatives of Eq. 4; without them the fake term has weight 1). The discriminator's streams
(`discriminator`, two- or three-stream, rows g, h) and the motion input (`motion`, row i) are the stage config's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from models.config import DictConfig
from models.lipgan.correlation import correlation_loss


@dataclass(frozen=True)
class LipGANLossConfig(DictConfig):
    """Loss weights and the ablation switches of Tab. 2 (module docstring); the defaults are the full model (e).

    lambda_gan, lambda_corr, lambda_perceptual, lambda_pixel: the weights of G's four terms (1, 1, 1, 0.5).
    use_gan, use_pixel, use_perceptual: keep the adversarial, L1 and perceptual terms (Tab. 2 a, b, c).
    corr: "derivative" (full), "non_derivative" (Tab. 2 f: φ_s on f_s itself) or "none" (Tab. 2 d).
    fake_corr: include ½·ℓ(a, φ_v(F(v̂))) in ℓ_corr (the authors' code does).
    mismatch_negatives: D also learns (s_k, v) as fake, s_k another window's audio (Eq. 4).
    """

    lambda_gan: float = 1.0
    lambda_corr: float = 1.0
    lambda_perceptual: float = 1.0
    lambda_pixel: float = 0.5
    use_gan: bool = True
    use_pixel: bool = True
    use_perceptual: bool = True
    corr: Literal["derivative", "non_derivative", "none"] = "derivative"
    fake_corr: bool = True
    mismatch_negatives: bool = True

    def __post_init__(self):
        if self.corr not in ("derivative", "non_derivative", "none"):
            raise ValueError(f"corr must be derivative, non_derivative or none, got {self.corr!r}")
        if not (self.use_gan or self.use_pixel or self.use_perceptual or self.corr != "none"):
            raise ValueError("every generator loss term is switched off")


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, mismatch: torch.Tensor | None,
                       cfg: LipGANLossConfig) -> dict[str, torch.Tensor]:
    """Eq. 4 on logits (B,) of D(s, v), D(s, v̂) (v̂ detached) and D(s_k, v) (None without mismatched negatives).
    Returns {"real", "fake", "mismatch" (when used), "total"}, 0-dim tensors."""
    out = {"real": _bce(real, 1.0), "fake": _bce(fake, 0.0)}
    if cfg.mismatch_negatives:
        if mismatch is None:
            raise ValueError("mismatch_negatives needs the mismatched pair's logits")
        out["mismatch"] = _bce(mismatch, 0.0)
        out["total"] = out["real"] + 0.5 * out["fake"] + 0.5 * out["mismatch"]
    else:
        out["total"] = out["real"] + out["fake"]
    return out


def corr_loss(a: torch.Tensor, b_real: torch.Tensor, b_fake: torch.Tensor | None, cfg: LipGANLossConfig
              ) -> torch.Tensor:
    """ℓ_corr (Eq. 1) from a = φ_s(f_s) and b = φ_v(motion) of the real (and generated) clip, each (B, T-1)."""
    if not cfg.fake_corr:
        return correlation_loss(a, b_real)
    if b_fake is None:
        raise ValueError("fake_corr needs φ_v of the generated clip's motion")
    return 0.5 * correlation_loss(a, b_real) + 0.5 * correlation_loss(a, b_fake)


def generator_loss(fake: torch.Tensor, real: torch.Tensor, *, fake_logit: torch.Tensor | None = None,
                   corr: torch.Tensor | None = None, perceptual_fake: torch.Tensor | None = None,
                   perceptual_real: torch.Tensor | None = None, cfg: LipGANLossConfig) -> dict[str, torch.Tensor]:
    """G's loss (module docstring). fake, real: clips (B, 3, T, S, S) in [-1, 1]; fake_logit: D(s, v̂) (B,) through
    the frozen D (needed with use_gan); corr: `corr_loss` (needed unless corr is "none"); perceptual_fake/real:
    φ(v̂), φ(v) (needed with use_perceptual; φ(v) without gradient). Returns the terms that are on ("gan", "corr",
    "perceptual", "pixel") and "total", their weighted sum, as 0-dim tensors. Raises ValueError when a term that is
    on lacks its input."""
    out: dict[str, torch.Tensor] = {}
    if cfg.use_gan:
        if fake_logit is None:
            raise ValueError("use_gan needs the discriminator's logits of the generated clip")
        out["gan"] = _bce(fake_logit, 1.0)
    if cfg.corr != "none":
        if corr is None:
            raise ValueError(f"corr={cfg.corr!r} needs the correlation loss")
        out["corr"] = corr
    if cfg.use_perceptual:
        if perceptual_fake is None or perceptual_real is None:
            raise ValueError("use_perceptual needs φ of the generated and the real clip")
        out["perceptual"] = F.mse_loss(perceptual_fake, perceptual_real)
    if cfg.use_pixel:
        out["pixel"] = F.l1_loss(fake, real)
    weights = {"gan": cfg.lambda_gan, "corr": cfg.lambda_corr, "perceptual": cfg.lambda_perceptual,
               "pixel": cfg.lambda_pixel}
    out["total"] = sum(weights[k] * v for k, v in out.items())
    return out
