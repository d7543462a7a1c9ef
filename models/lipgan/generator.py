"""Chen et al. 2018 lip-movement generator: one identity image + a log-mel window -> a 3-D (spatio-temporal) clip.

Chen, Li, Maddox, Duan, Xu. "Lip Movements Generation at a Glance", ECCV 2018, Sec. 3.1 and Fig. 3, following the
authors' public code (lelechen63/3d_gan at 712dccf^, `model_corr.py` class `Generator`; `ops.py` conv2d = Conv
without bias + BatchNorm + ReLU). Spec: shared/specs/chen2018-lipgan.md, section 2. Sizes below are the "paper"
preset (image 64, T = 16, 128 mels, ngf 64; F = image / 4 = 16):

    identity p_r (B, 3, 64, 64) --ReflPad3 + conv7 3->64, conv3 s2 64->128, conv3 s2 128->256--> f_p (B, 256, 16, 16)
        repeated over T                                                                          (B, 256, 16, 16, 16)
    audio (B, 1, 64, 128) = 4T log-mel rows x 128 mels
        --5 convs 1->32 s1, 32->64 s2, 64->128 s1, 128->256 s2, 256->256 s(1, 2)-->  f_s (B, 256, 16 time, 16 freq)
        tiled along W                                                                            (B, 256, 16, 16, 16)
    fusion      concat (512) -> Conv3d k3 -> 256 + BN3d + ReLU                                    (B, 256, 16, 16, 16)
    residual    9 x [Conv3d k(1,3,3), BN, ReLU, Conv3d k(1,3,3), BN] + skip                       (B, 256, 16, 16, 16)
    decoder     2 x [ConvT3d k3 s(1,2,2) p1 op(0,1,1) + BN + ReLU] 256->128->64                  (B, 64, 16, 64, 64)
                Conv3d 64->3 k7 p3 (bias) + tanh                                                  (B, 3, 16, 64, 64)

Axis order of the 3-D tensors: (B, C, T, H, W). f_s's axes are (B, C, time, frequency): its frequency axis is laid
along the image height H and copied along the width W, so every column of the fused map sees the whole spectrum.

Deriving the sizes from the config: the audio encoder must turn 4T rows into T (time) and n_mels into F = H / 4
(frequency). Time: layers 2 and 4 halve it (4T -> 2T -> T), for any T. Frequency: n_mels / F must be 2^k with
0 <= k <= 5; the k halvings go to the layers in the order 2, 4, 5, 3, 1 (the public code halves at 2, 4 and 5:
k = 3 for 128 mels and F = 16); `audio_strides` computes them and the configs validate them.

Weights: PyTorch's default init, except the audio convs, which get `kaiming_normal_` as the public code's
`ops.conv2d` does. The generator is fully convolutional in time: T = rows / 4 is free (training uses 16).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models.config import DictConfig

MEL_ROWS_PER_FRAME = 4  # log-mel rows per video frame (spec section 1: hop 160 at 16 kHz, 640 samples per frame)
_FREQ_HALVING_ORDER = (1, 3, 4, 2, 0)  # 0-based audio layers that halve frequency, in order of preference


def audio_strides(n_mels: int, feature_size: int) -> tuple[tuple[int, int], ...]:
    """(time, frequency) strides of the 5 audio convs, mapping (4T, n_mels) to (T, feature_size).

    Time is halved at layers 2 and 4; the log2(n_mels / feature_size) frequency halvings go to layers 2, 4, 5, 3, 1
    in that order. Paper sizes (128 mels, F 16): ((1, 1), (2, 2), (1, 1), (2, 2), (1, 2)), the public code's.
    Raises ValueError when n_mels / feature_size is not a power of two between 1 and 32.
    """
    ratio, rest = divmod(n_mels, feature_size) if feature_size >= 1 else (0, 1)
    if rest or ratio < 1 or ratio & (ratio - 1) or ratio > 1 << len(_FREQ_HALVING_ORDER):
        raise ValueError(f"n_mels ({n_mels}) must be feature_size ({feature_size} = image_size / 4) times 2^k with "
                         f"0 <= k <= 5, so the audio encoder's frequency axis matches f_p's spatial size")
    k = ratio.bit_length() - 1
    freq = [2 if i in _FREQ_HALVING_ORDER[:k] else 1 for i in range(5)]
    time = (1, 2, 1, 2, 1)
    return tuple(zip(time, freq))


def audio_conv(c_in: int, c_out: int, stride: tuple[int, int]) -> nn.Sequential:
    """3x3 conv, padding 1, the given (time, frequency) stride (no bias: BatchNorm follows), BatchNorm, ReLU;
    kaiming-normal weights (the public code's `ops.conv2d`). (N, c_in, R, M) -> (N, c_out, ceil(R/s_t), ceil(M/s_f))."""
    conv = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
    nn.init.kaiming_normal_(conv.weight)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def audio_encoder(channels: tuple[int, ...], strides: tuple[tuple[int, int], ...]) -> nn.Sequential:
    """The audio convs 1 -> channels[0] -> ... with the given strides (one per layer): (N, 1, 4T, n_mels) ->
    (N, channels[-1], T', M'). The generator uses all five; the discriminator's audio stream the first four."""
    widths = (1, *channels)
    return nn.Sequential(*[audio_conv(widths[i], widths[i + 1], s) for i, s in enumerate(strides)])


@dataclass(frozen=True)
class GeneratorConfig(DictConfig):
    """Generator sizes; the defaults are the paper's ("paper" preset).

    image_size: side of the square mouth crop (64); divisible by 4 (two stride-2 convs give f_p at image_size / 4).
    n_mels: mel bands of the audio window (128); image_size / 4 times a power of two (see `audio_strides`).
    ngf: base width: identity encoder ngf, 2 ngf, 4 ngf (64, 128, 256); fusion and residual blocks 4 ngf;
        decoder 2 ngf, ngf.
    audio_channels: widths of the 5 audio convs (32, 64, 128, 256, 256); the last is f_s's channel count.
    n_res_blocks: residual 3-D blocks (9).
    """

    image_size: int = 64
    n_mels: int = 128
    ngf: int = 64
    audio_channels: tuple[int, int, int, int, int] = (32, 64, 128, 256, 256)
    n_res_blocks: int = 9

    def __post_init__(self):
        if self.image_size % 4 or self.image_size < 4:
            raise ValueError(f"image_size must be a positive multiple of 4, got {self.image_size}")
        if self.ngf < 1 or self.n_res_blocks < 0 or min(self.audio_channels) < 1:
            raise ValueError(f"need ngf >= 1, n_res_blocks >= 0 and positive audio_channels, got {self}")
        audio_strides(self.n_mels, self.feature_size)

    @property
    def feature_size(self) -> int:
        """Side of f_p and frequency size of f_s (image_size / 4 = 16)."""
        return self.image_size // 4

    @classmethod
    def preset(cls, name: str) -> "GeneratorConfig":
        """"paper": the published sizes (16.70 M parameters, the spec's "about 16.6 M"; 10.6 M in the 9 residual
        blocks). "small": image 32, 32 mels, ngf 16, audio widths (8, 16, 32, 64, 64), 2 residual blocks (0.54 M
        parameters), for CPU demos and tests. Raises KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(image_size=32, n_mels=32, ngf=16, audio_channels=(8, 16, 32, 64, 64), n_res_blocks=2),
        }[name]


class ResnetBlock3d(nn.Module):
    """x + (Conv3d k(1,3,3) BN ReLU Conv3d k(1,3,3) BN)(x); (B, C, T, H, W) -> same. Zero padding, no conv bias:
    per-frame spatial convs (the public code's ResnetBlock with padding_type "zero", no dropout)."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv3d(dim, dim, (1, 3, 3), padding=(0, 1, 1), bias=False), nn.BatchNorm3d(dim), nn.ReLU(inplace=True),
            nn.Conv3d(dim, dim, (1, 3, 3), padding=(0, 1, 1), bias=False), nn.BatchNorm3d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def up3d(c_in: int, c_out: int) -> nn.Sequential:
    """ConvTranspose3d k3 s(1,2,2) p1 op(0,1,1) + BN3d + ReLU: (B, c_in, T, H, W) -> (B, c_out, T, 2H, 2W)."""
    return nn.Sequential(nn.ConvTranspose3d(c_in, c_out, 3, (1, 2, 2), 1, output_padding=(0, 1, 1), bias=False),
                         nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))


class LipGANGenerator(nn.Module):
    """forward(identity, audio) -> (video, f_s).

    identity: float32 (B, 3, S, S), the identity mouth crop p_r, RGB in [-1, 1] (S = cfg.image_size, 64).
    audio: float32 (B, 1, 4T, n_mels), the z-scored log-mel (dB) window, rows 4k..4k+3 belonging to frame k.
    Returns video float32 (B, 3, T, S, S) in [-1, 1] (tanh) and the audio features f_s float32 (B, C_a, T, S/4)
    (C_a = cfg.audio_channels[-1], 256), which the correlation loss needs (not detached).
    T is free (training uses 16). Raises ValueError on input shapes that do not match the config or each other.
    """

    def __init__(self, cfg: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.cfg = cfg
        g, c_a = cfg.ngf, cfg.audio_channels[-1]
        self.identity_encoder = nn.Sequential(
            nn.ReflectionPad2d(3),  # (B, 3, S+6, S+6)
            nn.Conv2d(3, g, 7, bias=False), nn.BatchNorm2d(g), nn.ReLU(inplace=True),  # (B, g, S, S)
            nn.Conv2d(g, 2 * g, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * g), nn.ReLU(inplace=True),  # (B, 2g, S/2, S/2)
            nn.Conv2d(2 * g, 4 * g, 3, 2, 1, bias=False), nn.BatchNorm2d(4 * g), nn.ReLU(inplace=True),  # f_p (S/4)
        )
        self.audio_encoder = audio_encoder(cfg.audio_channels, audio_strides(cfg.n_mels, cfg.feature_size))
        self.fusion = nn.Sequential(
            nn.Conv3d(4 * g + c_a, 4 * g, 3, 1, 1, bias=False), nn.BatchNorm3d(4 * g), nn.ReLU(inplace=True),
        )  # (B, 4g + C_a, T, S/4, S/4) -> (B, 4g, T, S/4, S/4)
        self.decoder = nn.Sequential(
            *[ResnetBlock3d(4 * g) for _ in range(cfg.n_res_blocks)],  # (B, 4g, T, S/4, S/4)
            up3d(4 * g, 2 * g),  # (B, 2g, T, S/2, S/2)
            up3d(2 * g, g),  # (B, g, T, S, S)
            nn.Conv3d(g, 3, 7, 1, 3),  # (B, 3, T, S, S); tanh in forward
        )

    def forward(self, identity: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, S = self.cfg, self.cfg.image_size
        if identity.ndim != 4 or tuple(identity.shape[1:]) != (3, S, S):
            raise ValueError(f"identity must be (B, 3, {S}, {S}), got {tuple(identity.shape)}")
        B = identity.shape[0]
        if audio.ndim != 4 or audio.shape[0] != B or audio.shape[1] != 1 or audio.shape[3] != cfg.n_mels \
                or audio.shape[2] < MEL_ROWS_PER_FRAME or audio.shape[2] % MEL_ROWS_PER_FRAME:
            raise ValueError(f"audio must be (B={B}, 1, 4T, {cfg.n_mels}) with T >= 1, got {tuple(audio.shape)}")
        T = audio.shape[2] // MEL_ROWS_PER_FRAME
        f_p = self.identity_encoder(identity)  # (B, 4g, F, F), F = S/4
        f_s = self.audio_encoder(audio)  # (B, C_a, T, F): time x frequency
        F = f_p.shape[-1]
        x = torch.cat([f_p.unsqueeze(2).expand(-1, -1, T, -1, -1),  # (B, 4g, T, F, F), repeated over T
                       f_s.unsqueeze(-1).expand(-1, -1, -1, -1, F)], dim=1)  # (B, C_a, T, F, F), tiled along W
        x = self.fusion(x)  # (B, 4g, T, F, F)
        return torch.tanh(self.decoder(x)), f_s  # (B, 3, T, S, S), (B, C_a, T, F)
