"""ATVGnet AT-net: audio -> landmark PCA coefficients.

Chen, Maddox, Duan, Xu. "Hierarchical Cross-Modal Talking Face Generation with Dynamic Pixel-Wise Loss", CVPR 2019,
Sec. 3.1 (audio transformation network), following the authors' public code (lelechen63/ATVGnet, `code/models.py`
class `AT_net`, `code/ops.py` conv2d = Conv 3x3 without bias + BatchNorm + ReLU):

    example landmarks p* (B, 6)  --MLP-->  (B, 512)  -----------------------------.
    MFCC windows      (B, T, 28, 12) --per step: conv net + MLP--> (B, T, 256) --concat--> (B, T, 768)
                                                                     --3-layer LSTM(256)--> (B, T, 256)
                                                                     --Linear--> (B, T, 6) PCA coefficients

Each MFCC window is 28 rows (0.28 s at 100 Hz, centred on the video frame) by 12 coefficients (c1..c12; c0 dropped),
see `models.atvgnet.data.mfcc_windows`. Training loss: MSE on the 6 coefficients (`models.atvgnet.stages`).

One deliberate difference from the public code: the audio encoder runs on all B*T windows at once (the original
loops over t). The maths is the same except for BatchNorm batch statistics in training mode, which are taken over
B*T windows instead of B per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models.config import DictConfig


@dataclass(frozen=True)
class ATNetConfig(DictConfig):
    """AT-net sizes; the defaults are the paper's. Smaller audio widths make fast CPU smoke runs.

    n_pca: PCA coefficients in and out (6).
    mfcc_rows, mfcc_cols: MFCC window per video frame (28 frames at 100 Hz x 12 coefficients).
    landmark_hidden, landmark_features: widths of the 2-layer MLP on the example landmarks (256, 512).
    audio_channels: output channels of the 5 conv layers (64, 128, 256, 256, 512).
    audio_hidden, audio_features: widths of the 2-layer MLP after the conv net (2048, 256).
    lstm_hidden, lstm_layers: the LSTM (256, 3).
    """

    n_pca: int = 6
    mfcc_rows: int = 28
    mfcc_cols: int = 12
    landmark_hidden: int = 256
    landmark_features: int = 512
    audio_channels: tuple[int, int, int, int, int] = (64, 128, 256, 256, 512)
    audio_hidden: int = 2048
    audio_features: int = 256
    lstm_hidden: int = 256
    lstm_layers: int = 3

    @classmethod
    def preset(cls, name: str) -> "ATNetConfig":
        """"paper": the published sizes (30.1 M parameters; ~2.3 s per step at batch 4 on one CPU core here).
        "small": the same structure with narrow layers (0.4 M parameters; 300 steps at batch 16 in ~3 min on one
        core), for CPU demos and benchmarks. Raises KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(audio_channels=(16, 32, 32, 32, 64), audio_hidden=128, audio_features=64,
                         landmark_hidden=64, landmark_features=64, lstm_hidden=64),
        }[name]


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 conv, stride 1, padding 1 (no bias: BatchNorm follows), BatchNorm, ReLU. Keeps H and W."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def pooled_size(rows: int, cols: int) -> tuple[int, int]:
    """Spatial size after the audio encoder's two max-pools (kernel 3; strides (1, 2) then (2, 2)), no padding."""
    rows, cols = (rows - 3) // 1 + 1, (cols - 3) // 2 + 1
    return (rows - 3) // 2 + 1, (cols - 3) // 2 + 1  # (28, 12) -> (26, 5) -> (12, 2)


class AudioEncoder(nn.Module):
    """One MFCC window float32 (N, 28, 12) -> features float32 (N, audio_features)."""

    def __init__(self, cfg: ATNetConfig):
        super().__init__()
        c1, c2, c3, c4, c5 = cfg.audio_channels
        self.conv = nn.Sequential(
            conv_bn_relu(1, c1),  # (N, c1, 28, 12)
            conv_bn_relu(c1, c2),  # (N, c2, 28, 12)
            nn.MaxPool2d(3, stride=(1, 2)),  # (N, c2, 26, 5)
            conv_bn_relu(c2, c3),  # (N, c3, 26, 5)
            conv_bn_relu(c3, c4),  # (N, c4, 26, 5)
            conv_bn_relu(c4, c5),  # (N, c5, 26, 5)
            nn.MaxPool2d(3, stride=(2, 2)),  # (N, c5, 12, 2)
        )
        h, w = pooled_size(cfg.mfcc_rows, cfg.mfcc_cols)
        self.fc = nn.Sequential(
            nn.Linear(c5 * h * w, cfg.audio_hidden),  # 512*12*2 = 12288 -> 2048
            nn.ReLU(inplace=True),
            nn.Linear(cfg.audio_hidden, cfg.audio_features),  # -> 256
            nn.ReLU(inplace=True),
        )

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        x = self.conv(mfcc.unsqueeze(1))  # (N, 1, 28, 12) -> (N, c5, 12, 2)
        return self.fc(x.flatten(1))  # (N, audio_features)


class ATNet(nn.Module):
    """AT-net. forward(example_landmarks (B, 6), mfcc (B, T, 28, 12)) -> PCA coefficients (B, T, 6), all float32.

    T is free at inference (the LSTM runs over any length); training uses T = 16.
    Raises ValueError on input shapes that do not match the config.
    """

    def __init__(self, cfg: ATNetConfig = ATNetConfig()):
        super().__init__()
        self.cfg = cfg
        self.landmark_encoder = nn.Sequential(
            nn.Linear(cfg.n_pca, cfg.landmark_hidden),  # (B, 6) -> (B, 256)
            nn.ReLU(inplace=True),
            nn.Linear(cfg.landmark_hidden, cfg.landmark_features),  # -> (B, 512)
            nn.ReLU(inplace=True),
        )
        self.audio_encoder = AudioEncoder(cfg)
        self.lstm = nn.LSTM(cfg.landmark_features + cfg.audio_features, cfg.lstm_hidden, cfg.lstm_layers, batch_first=True)
        self.decoder = nn.Linear(cfg.lstm_hidden, cfg.n_pca)  # (B, T, 256) -> (B, T, 6)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # as the public code's initialize_weights(init_type="normal", gain=0.02); the LSTM keeps PyTorch's default
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    def forward(self, example_landmarks: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if example_landmarks.ndim != 2 or example_landmarks.shape[1] != cfg.n_pca:
            raise ValueError(f"example_landmarks must be (B, {cfg.n_pca}), got {tuple(example_landmarks.shape)}")
        if mfcc.ndim != 4 or mfcc.shape[2:] != (cfg.mfcc_rows, cfg.mfcc_cols) or mfcc.shape[0] != example_landmarks.shape[0]:
            raise ValueError(f"mfcc must be (B, T, {cfg.mfcc_rows}, {cfg.mfcc_cols}), got {tuple(mfcc.shape)}")
        B, T = mfcc.shape[:2]
        lmark = self.landmark_encoder(example_landmarks)  # (B, 512)
        audio = self.audio_encoder(mfcc.reshape(B * T, cfg.mfcc_rows, cfg.mfcc_cols)).view(B, T, -1)  # (B, T, 256)
        x = torch.cat([lmark.unsqueeze(1).expand(B, T, -1), audio], dim=2)  # (B, T, 768)
        h, _ = self.lstm(x)  # (B, T, 256); zero initial state
        return self.decoder(h)  # (B, T, 6)
