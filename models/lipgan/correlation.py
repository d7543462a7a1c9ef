"""Chen et al. 2018 audio-visual correlation loss: φ_s on the audio features' temporal derivative, φ_v on the motion.

Chen, Li, Maddox, Duan, Xu. "Lip Movements Generation at a Glance", ECCV 2018, Sec. 3.2, Eq. 1, following the
authors' public code (lelechen63/3d_gan at 712dccf^: `corr_encoder.py` classes `AudioDeriEncoder` and `FlowEncoder`
with flow_type "flownet"; `trainer_corr_perceptual_difference.py` for the averaging and the loss). Spec:
shared/specs/chen2018-lipgan.md, section 4. Sizes below are the "paper" preset (T = 16, f_s (B, 256, 16, 16)):

    φ_s  f_s (B, 256, T, F)  --d_t = f_s[:, :, t] - f_s[:, :, t+1]-->     (B, 256, 15, 16)
         4 x [Conv2d k3 s(1, 2) p1 + BN + ReLU] 256->128->64->32->16  -->  (B, 16, 15, 1)   frequency 16->8->4->2->1
         mean over the 16 channels                                    -->  a (B, 15)
    φ_v  flow (B, 2, T-1, 16, 16)
         4 x [Conv3d k3 s(1, 2, 2) p1 + BN + ReLU] 2->4->8->16->16    -->  (B, 16, 15, 1, 1) space 16->8->4->2->1
         mean over the 16 channels                                    -->  b (B, 15)
    loss 1 - cos(a, b), batch mean (`correlation_loss`)

Reading of the spec's "(B, 15, 16), average over the 16 channels": the public code's strided convs bring the
frequency axis (φ_s) and the two spatial axes (φ_v) down to 1, views the result as (B, T-1, 16 channels) and
average-pools those 16 channels (`F.avg_pool1d(x, 16, 16)`). Here the strides do the same, the configs check that
the layers suffice to reach size 1 (2^layers >= size, e.g. 6 φ_v layers for 64 x 64 frame differences, spec option
(3)), and the mean over channels gives a, b of length T - 1.

`non_derivative` (paper Tab. 2 (f)): φ_s runs on f_s itself, without the temporal difference. The public code's
`need_deri=False` keeps all T steps, which cannot meet the T - 1 motion steps in the cosine; here the last step is
dropped (f_s[:, :, :T-1]) so a and b keep length T - 1.

The training loss (spec section 4) is 0.5 ℓ(a, φ_v(F(v))) + 0.5 ℓ(a, φ_v(F(v̂))), f_s not detached. The convs keep
PyTorch's default init and their biases, as the public code's plain nn.Conv2d / nn.Conv3d.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.config import DictConfig


@dataclass(frozen=True)
class CorrelationConfig(DictConfig):
    """φ_s and φ_v sizes; the defaults are the paper's ("paper" preset).

    audio_channels: channels of f_s, the generator's last audio width (256).
    audio_freq: frequency size of f_s, the generator's image_size / 4 (16).
    audio_widths: widths of φ_s's stride-(1, 2) convs (128, 64, 32, 16); 2^len >= audio_freq.
    motion_channels: channels of φ_v's input: 2 for flow, 3 for frame differences.
    motion_size: side of φ_v's input: image_size / 4 for flow (16), image_size for frame differences (64).
    motion_widths: widths of φ_v's stride-(1, 2, 2) convs (4, 8, 16, 16); 2^len >= motion_size (frame differences at
        64: 6 layers, e.g. (4, 8, 16, 16, 16, 16) as the public code's 6-layer FlowEncoder).
    non_derivative: φ_s on f_s[:, :, :T-1] instead of its temporal difference (the Tab. 2 (f) ablation).
    """

    audio_channels: int = 256
    audio_freq: int = 16
    audio_widths: tuple[int, ...] = (128, 64, 32, 16)
    motion_channels: int = 2
    motion_size: int = 16
    motion_widths: tuple[int, ...] = (4, 8, 16, 16)
    non_derivative: bool = False

    def __post_init__(self):
        if not self.audio_widths or not self.motion_widths or min(*self.audio_widths, *self.motion_widths) < 1 \
                or self.audio_channels < 1 or self.motion_channels < 1:
            raise ValueError(f"need non-empty positive widths and positive channel counts, got {self}")
        if 2 ** len(self.audio_widths) < self.audio_freq:
            raise ValueError(f"{len(self.audio_widths)} stride-2 φ_s layers cannot bring audio_freq {self.audio_freq} "
                             f"to 1: give at least {(self.audio_freq - 1).bit_length()} audio_widths")
        if 2 ** len(self.motion_widths) < self.motion_size:
            raise ValueError(f"{len(self.motion_widths)} stride-2 φ_v layers cannot bring motion_size "
                             f"{self.motion_size} to 1: give at least {(self.motion_size - 1).bit_length()} "
                             f"motion_widths")

    @classmethod
    def preset(cls, name: str) -> "CorrelationConfig":
        """"paper": the published sizes (φ_s 0.39 M parameters, φ_v 0.01 M). "small": matches the small generator
        (f_s (64, 8 time, 8 freq)) and flow at 8 x 8, narrow layers. Raises KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(audio_channels=64, audio_freq=8, audio_widths=(32, 16, 8, 8), motion_size=8,
                         motion_widths=(4, 8, 8, 8)),
        }[name]


class AudioDerivativeEncoder(nn.Module):
    """φ_s. forward(f_s float32 (B, C_a, T, F), the generator's audio features) -> a float32 (B, T - 1).

    Raises ValueError on an input that does not match the config or has T < 2.
    """

    def __init__(self, cfg: CorrelationConfig = CorrelationConfig()):
        super().__init__()
        self.cfg = cfg
        widths = (cfg.audio_channels, *cfg.audio_widths)
        self.convs = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 3, (1, 2), 1), nn.BatchNorm2d(widths[i + 1]),
                          nn.ReLU(inplace=True))
            for i in range(len(cfg.audio_widths))
        ])  # (B, C_a, T-1, F) -> (B, 16, T-1, 1)

    def forward(self, f_s: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if f_s.ndim != 4 or f_s.shape[1] != cfg.audio_channels or f_s.shape[3] != cfg.audio_freq or f_s.shape[2] < 2:
            raise ValueError(f"f_s must be (B, {cfg.audio_channels}, T >= 2, {cfg.audio_freq}), got {tuple(f_s.shape)}")
        x = f_s[:, :, :-1] if cfg.non_derivative else f_s[:, :, :-1] - f_s[:, :, 1:]  # (B, C_a, T-1, F): d_t
        return self.convs(x).mean(dim=(1, 3))  # (B, 16, T-1, 1) -> (B, T-1)


class MotionEncoder(nn.Module):
    """φ_v. forward(motion float32 (B, C_m, T - 1, M, M)) -> b float32 (B, T - 1).

    motion: flow (B, 2, T-1, S/4, S/4) in quarter-resolution pixels (`MouthFlowNet`, `farneback_flow`), or frame
    differences (B, 3, T-1, S, S) with motion_channels 3, motion_size S and enough layers (config).
    Raises ValueError on an input that does not match the config.
    """

    def __init__(self, cfg: CorrelationConfig = CorrelationConfig()):
        super().__init__()
        self.cfg = cfg
        widths = (cfg.motion_channels, *cfg.motion_widths)
        self.convs = nn.Sequential(*[
            nn.Sequential(nn.Conv3d(widths[i], widths[i + 1], 3, (1, 2, 2), 1), nn.BatchNorm3d(widths[i + 1]),
                          nn.ReLU(inplace=True))
            for i in range(len(cfg.motion_widths))
        ])  # (B, C_m, T-1, M, M) -> (B, 16, T-1, 1, 1)

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        cfg, M = self.cfg, self.cfg.motion_size
        if motion.ndim != 5 or motion.shape[1] != cfg.motion_channels or tuple(motion.shape[3:]) != (M, M):
            raise ValueError(f"motion must be (B, {cfg.motion_channels}, T - 1, {M}, {M}), got {tuple(motion.shape)}")
        return self.convs(motion).mean(dim=(1, 3, 4))  # (B, 16, T-1, 1, 1) -> (B, T-1)


def correlation_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batch mean of 1 - cos(a_i, b_i) for a, b float32 (B, L): a scalar in [0, 2] (0: parallel, 2: opposite).
    The same as nn.CosineEmbeddingLoss with target 1 (the public code)."""
    return (1 - F.cosine_similarity(a, b, dim=1)).mean()
