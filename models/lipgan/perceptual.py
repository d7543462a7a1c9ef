"""Chen et al. 2018 perceptual loss network: a per-frame mouth autoencoder whose encoder gives the feature φ.

Chen, Li, Maddox, Duan, Xu. "Lip Movements Generation at a Glance", ECCV 2018, Sec. 4.1, Eq. 3, following the
authors' public code (lelechen63/3d_gan at 712dccf^, `embedding.py` class `Encoder`, norm BatchNorm2d, reflect
padding, no dropout). Spec: shared/specs/chen2018-lipgan.md, section 5. Sizes below are the "paper" preset
(image 64, ngf 64):

    frame x (N, 3, 64, 64) --ReflPad3 + conv7 3->64, conv3 s2 64->128, conv3 s2 128->256 (each BN + ReLU)-->
                           --6 residual blocks (ReflPad1 conv3 BN ReLU ReflPad1 conv3 BN, + skip)--> φ (N, 256, 16, 16)
    decoder  ConvT 256->128 k3 s2 p1 op1 + BN + ReLU, ConvT 128->64 (same), ReflPad3 + conv7 64->3 (bias) + tanh
                                                                                      -> reconstruction (N, 3, 64, 64)

Trained first on the store's train-split mouth crops (MSE reconstruction), then frozen in eval mode for the GAN:
ℓ_perc = MSE(φ(v̂), φ(v)), frames of a clip (B, 3, T, S, S) encoded as N = B T frames. Convs before BatchNorm have no
bias; PyTorch's default init, as the public code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models.config import DictConfig


@dataclass(frozen=True)
class PerceptualConfig(DictConfig):
    """Autoencoder sizes; the defaults are the paper's ("paper" preset).

    image_size: side of the square mouth frames (64); divisible by 4 (φ is image_size / 4 on a side).
    ngf: base width: encoder ngf, 2 ngf, 4 ngf (64, 128, 256); φ has 4 ngf channels; decoder 2 ngf, ngf.
    n_res_blocks: residual blocks at the end of the encoder (6).
    """

    image_size: int = 64
    ngf: int = 64
    n_res_blocks: int = 6

    def __post_init__(self):
        if self.image_size % 4 or self.image_size < 4 or self.ngf < 1 or self.n_res_blocks < 0:
            raise ValueError(f"need image_size a positive multiple of 4, ngf >= 1, n_res_blocks >= 0, got {self}")

    @classmethod
    def preset(cls, name: str) -> "PerceptualConfig":
        """"paper": the published sizes (7.84 M parameters, 7.1 M of them the 6 residual blocks).
        "small": image 32, ngf 16, 2 residual blocks (0.20 M parameters). Raises KeyError on another name."""
        return {"paper": cls(), "small": cls(image_size=32, ngf=16, n_res_blocks=2)}[name]


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    """Conv2d (no bias) + BatchNorm2d + ReLU, as a list of layers."""
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ResnetBlock(nn.Module):
    """x + (ReflPad1 conv3 BN ReLU ReflPad1 conv3 BN)(x); (N, C, H, W) -> same."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), *conv_bn_relu(dim, dim, 3),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.BatchNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class MouthAutoencoder(nn.Module):
    """encode(x) -> φ, forward(x) -> reconstruction; per frame.

    x: float32 (N, 3, S, S), RGB mouth crops in [-1, 1] (S = cfg.image_size, 64).
    encode returns φ float32 (N, 4 ngf, S/4, S/4) ((N, 256, 16, 16) for the paper); forward returns the
    reconstruction float32 (N, 3, S, S) in [-1, 1]. Raises ValueError on an input that does not match the config.
    """

    def __init__(self, cfg: PerceptualConfig = PerceptualConfig()):
        super().__init__()
        self.cfg = cfg
        g = cfg.ngf
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3), *conv_bn_relu(3, g, 7),  # (N, g, S, S)
            *conv_bn_relu(g, 2 * g, 3, 2, 1),  # (N, 2g, S/2, S/2)
            *conv_bn_relu(2 * g, 4 * g, 3, 2, 1),  # (N, 4g, S/4, S/4)
            *[ResnetBlock(4 * g) for _ in range(cfg.n_res_blocks)],  # φ (N, 4g, S/4, S/4)
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * g, 2 * g, 3, 2, 1, output_padding=1, bias=False), nn.BatchNorm2d(2 * g),
            nn.ReLU(inplace=True),  # (N, 2g, S/2, S/2)
            nn.ConvTranspose2d(2 * g, g, 3, 2, 1, output_padding=1, bias=False), nn.BatchNorm2d(g),
            nn.ReLU(inplace=True),  # (N, g, S, S)
            nn.ReflectionPad2d(3), nn.Conv2d(g, 3, 7), nn.Tanh(),  # (N, 3, S, S)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        S = self.cfg.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, S, S):
            raise ValueError(f"x must be (N, 3, {S}, {S}), got {tuple(x.shape)}")
        return self.encoder(x)  # (N, 4g, S/4, S/4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))  # (N, 3, S, S)
