"""ATVGnet regression-based discriminator: a clip realism score D_s and per-frame landmark regression D_p.

Chen, Maddox, Duan, Xu. "Hierarchical Cross-Modal Talking Face Generation with Dynamic Pixel-Wise Loss", CVPR 2019,
Sec. 3.4 (regression-based discriminator), following the authors' public code (lelechen63/ATVGnet,
`code/models.py` class `GL_Discriminator`). Sizes are the "paper" preset:

    frames x_t (B, T, 3, 128, 128) --4 stride-2 convs (64, 128, 256, 512)--> (B*T, 512, 8, 8)
                                   --Linear(32768, 512) + ReLU-->            (B, T, 512)
    example landmarks p* (B, 136)  --MLP 136 -> 256 -> 512 (ReLU)-->          (B, 512), repeated over T
    concat [landmarks, image] (the authors' order, models.py line 164)       (B, T, 1024)
    3-layer LSTM(256)                                                        (B, T, 256) = h_t
    D_p: landmarks_t = tanh(Linear(256, 136)(h_t)) + p*                      (B, T, 136)  (a residual on p*)
    D_s: score = mean_t Linear(256, 1)(h_t)                                  (B,)  a logit

The score is a logit: the public code averages the per-frame decisions over T and then applies a sigmoid before
`nn.BCELoss`; returning the averaged logit and using `binary_cross_entropy_with_logits` (`losses.py`) is the same
function, numerically safer, and also lets the loss use an LSGAN form on the raw score.

Differences from the public code, all deliberate: frames are encoded as one batch of B*T (the original loops over t;
same maths except BatchNorm batch statistics in training mode); the discriminator keeps PyTorch's default init, as
the public code (`vgnet.py` re-initialises only the generator); the authors' unused `decoder` (an MLP their forward
never calls) is left out.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models.atvgnet.vg_net import N_LANDMARK_COORDS
from models.config import DictConfig


@dataclass(frozen=True)
class DiscriminatorConfig(DictConfig):
    """Regression discriminator sizes; the defaults are the paper's ("paper" preset).

    image_size: side of the square frames (128), divisible by 16.
    n_landmarks: landmark coordinates per frame (136).
    channels: widths of the 4 stride-2 3x3 convs (64, 128, 256, 512); the first has no BatchNorm.
    image_features: width of the Linear after the convs (512).
    landmark_hidden, landmark_features: the example-landmark MLP (256, 512).
    lstm_hidden, lstm_layers: the LSTM over time (256, 3).
    """

    image_size: int = 128
    n_landmarks: int = N_LANDMARK_COORDS
    channels: tuple[int, int, int, int] = (64, 128, 256, 512)
    image_features: int = 512
    landmark_hidden: int = 256
    landmark_features: int = 512
    lstm_hidden: int = 256
    lstm_layers: int = 3

    def __post_init__(self):
        if self.image_size % 16:
            raise ValueError(f"image_size must be divisible by 16, got {self.image_size}")

    @classmethod
    def preset(cls, name: str) -> "DiscriminatorConfig":
        """"paper": the published sizes (20.90 M parameters, 16.8 M of them the Linear after the convs).
        "small": narrow layers, 2 LSTM layers (0.25 M parameters), for CPU demos and tests. Raises KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(channels=(8, 16, 32, 32), image_features=64, landmark_hidden=64, landmark_features=64,
                         lstm_hidden=64, lstm_layers=2),
        }[name]


def down(c_in: int, c_out: int, norm: bool = True) -> nn.Sequential:
    """3x3 conv, stride 2, padding 1 (H, W -> H/2, W/2), optional BatchNorm, ReLU (the public code's `ops.conv2d`)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*layers, nn.ReLU(inplace=True))


class RegressionDiscriminator(nn.Module):
    """forward(frames, example_landmarks) -> (score, landmarks).

    frames: float32 (B, T, 3, S, S), RGB in [-1, 1], real or generated (S = cfg.image_size).
    example_landmarks: float32 (B, 136), the example face's landmarks, normalised coordinates (see `vg_net`).
    Returns score float32 (B,), a realism logit per clip (higher = more real; sigmoid gives the public code's
    probability), and landmarks float32 (B, T, 136), the regressed landmarks per frame in the same coordinates.
    T is free. Raises ValueError on input shapes that do not match the config or each other.
    """

    def __init__(self, cfg: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3, c4 = cfg.channels
        f = cfg.image_size // 16
        self.image_encoder = nn.Sequential(
            down(3, c1, norm=False),  # (N, c1, S/2, S/2)
            down(c1, c2),  # (N, c2, S/4, S/4)
            down(c2, c3),  # (N, c3, S/8, S/8)
            down(c3, c4),  # (N, c4, f, f)
        )
        self.image_fc = nn.Sequential(nn.Linear(c4 * f * f, cfg.image_features), nn.ReLU(inplace=True))  # 32768 -> 512
        self.landmark_encoder = nn.Sequential(
            nn.Linear(cfg.n_landmarks, cfg.landmark_hidden), nn.ReLU(inplace=True),  # (B, 136) -> (B, 256)
            nn.Linear(cfg.landmark_hidden, cfg.landmark_features), nn.ReLU(inplace=True),  # -> (B, 512)
        )
        self.lstm = nn.LSTM(cfg.image_features + cfg.landmark_features, cfg.lstm_hidden, cfg.lstm_layers,
                            batch_first=True)
        self.landmark_head = nn.Linear(cfg.lstm_hidden, cfg.n_landmarks)  # D_p: (B, T, 256) -> (B, T, 136)
        self.score_head = nn.Linear(cfg.lstm_hidden, 1)  # D_s: (B, T, 256) -> (B, T, 1)

    def forward(self, frames: torch.Tensor, example_landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, S = self.cfg, self.cfg.image_size
        if frames.ndim != 5 or tuple(frames.shape[2:]) != (3, S, S) or frames.shape[1] < 1:
            raise ValueError(f"frames must be (B, T, 3, {S}, {S}), got {tuple(frames.shape)}")
        B, T = frames.shape[:2]
        if tuple(example_landmarks.shape) != (B, cfg.n_landmarks):
            raise ValueError(f"example_landmarks must be (B={B}, {cfg.n_landmarks}), got {tuple(example_landmarks.shape)}")
        x = self.image_encoder(frames.reshape(B * T, 3, S, S))  # (B*T, c4, f, f)
        x = self.image_fc(x.flatten(1)).view(B, T, -1)  # (B, T, image_features)
        lmk = self.landmark_encoder(example_landmarks)  # (B, landmark_features)
        h, _ = self.lstm(torch.cat([lmk.unsqueeze(1).expand(B, T, -1), x], dim=2))  # [landmarks, image]: (B, T, h)
        landmarks = torch.tanh(self.landmark_head(h)) + example_landmarks.unsqueeze(1)  # (B, T, 136)
        score = self.score_head(h).squeeze(2).mean(dim=1)  # (B, T, 1) -> (B, T) -> (B,)
        return score, landmarks
