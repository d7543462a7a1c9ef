"""Zheng et al. 2020's landmark generator A2L (ICPR, §III-A, Eq. 1–2; shared/specs/zheng2020.md §1):
L̂ = D_l(E_a(A), E_l(l_ref)), audio and the identity's reference landmarks -> 68 landmarks per video frame.

The paper says only "LSTM based" and that it takes ATVGnet's audio input. [D] ATVGnet's AT-net (Chen et al. CVPR
2019) without its PCA, since Eq. 2 and Tab. V regress raw points:

    reference l_ref (B, 136) --E_l: MLP 136→256→512--> (B, 512) ------------------------.
    MFCC windows (B, T, 28, 12) --E_a: AT-net's audio CNN + MLP, per frame--> (B, T, 256) --concat--> (B, T, 768)
        --D_l: LSTM(768, 256, 3 layers)--> (B, T, 256) --FC 256→136--> × residual_scale + l_ref --> (B, T, 136)

E_a is `models.atvgnet.at_net.AudioEncoder` itself (conv 1→64→128, MaxPool(3, s(1,2)), conv 128→256→256→512,
MaxPool(3, s2) -> 512×12×2 -> FC 12288→2048→256). Coordinates normalised as x / 64 − 1 in 128-px crops
(`models.zheng.landmarks`). Init N(0, 0.02) (spec §5), the LSTM PyTorch's default, as AT-net.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.atvgnet.at_net import ATNetConfig, AudioEncoder
from models.config import DictConfig
from models.init import normal_init


@dataclass(frozen=True)
class A2LConfig(DictConfig):
    """A2L sizes; the defaults are the spec's.

    mfcc_rows, mfcc_cols: the MFCC window per video frame (28 at 100 Hz × 12 coefficients, c0 dropped).
    audio_channels, audio_hidden, audio_features: E_a, AT-net's audio encoder (64, 128, 256, 256, 512; 2048; 256).
    landmark_hidden, landmark_features: E_l, the MLP on the reference landmarks (256, 512).
    lstm_hidden, lstm_layers: D_l's LSTM (256, 3).
    residual_scale: the decoder's output times this is added to l_ref (0.01 [D]: the motion of a mouth is about
        0.01 of the normalised coordinates, so the decoder predicts values about 1, and starts at l_ref instead of
        ±0.3 away from it).
    """

    mfcc_rows: int = 28
    mfcc_cols: int = 12
    audio_channels: tuple[int, int, int, int, int] = (64, 128, 256, 256, 512)
    audio_hidden: int = 2048
    audio_features: int = 256
    landmark_hidden: int = 256
    landmark_features: int = 512
    lstm_hidden: int = 256
    lstm_layers: int = 3
    residual_scale: float = 0.01

    @classmethod
    def preset(cls, name: str) -> "A2LConfig":
        """"paper": the spec's sizes (30.1 M parameters). "small": the same structure, narrow (CPU runs). Raises
        KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(audio_channels=(16, 32, 32, 32, 64), audio_hidden=128, audio_features=64,
                         landmark_hidden=64, landmark_features=64, lstm_hidden=64),
        }[name]

    def audio_config(self) -> ATNetConfig:
        """The AT-net config whose audio encoder is E_a."""
        return ATNetConfig(mfcc_rows=self.mfcc_rows, mfcc_cols=self.mfcc_cols, audio_channels=self.audio_channels,
                           audio_hidden=self.audio_hidden, audio_features=self.audio_features)


class A2L(nn.Module):
    """forward(reference (B, 136), mfcc (B, T, 28, 12)) -> landmarks (B, T, 136), float32, normalised coordinates.

    T is free (the LSTM runs over any length; training uses T = 25, the word detector's input). Raises ValueError on
    input shapes that do not match the config.
    """

    def __init__(self, cfg: A2LConfig = A2LConfig()):
        super().__init__()
        self.cfg = cfg
        self.landmark_encoder = nn.Sequential(
            nn.Linear(136, cfg.landmark_hidden), nn.ReLU(inplace=True),  # (B, 136) -> (B, 256)
            nn.Linear(cfg.landmark_hidden, cfg.landmark_features), nn.ReLU(inplace=True),  # -> (B, 512)
        )
        self.audio_encoder = AudioEncoder(cfg.audio_config())  # (N, 28, 12) -> (N, 256)
        self.lstm = nn.LSTM(cfg.landmark_features + cfg.audio_features, cfg.lstm_hidden, cfg.lstm_layers,
                            batch_first=True)
        self.decoder = nn.Linear(cfg.lstm_hidden, 136)  # (B, T, 256) -> (B, T, 136), added to l_ref
        normal_init(self)  # N(0, 0.02) (spec §5); the LSTM keeps PyTorch's default

    def forward(self, reference: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if reference.ndim != 2 or reference.shape[1] != 136:
            raise ValueError(f"reference must be (B, 136), got {tuple(reference.shape)}")
        if mfcc.ndim != 4 or mfcc.shape[2:] != (cfg.mfcc_rows, cfg.mfcc_cols) or len(mfcc) != len(reference):
            raise ValueError(f"mfcc must be (B, T, {cfg.mfcc_rows}, {cfg.mfcc_cols}), got {tuple(mfcc.shape)}")
        B, T = mfcc.shape[:2]
        ref = self.landmark_encoder(reference)  # (B, 512)
        audio = self.audio_encoder(mfcc.reshape(B * T, cfg.mfcc_rows, cfg.mfcc_cols)).view(B, T, -1)  # (B, T, 256)
        h, _ = self.lstm(torch.cat([ref.unsqueeze(1).expand(B, T, -1), audio], dim=2))  # (B, T, 256)
        return reference.unsqueeze(1) + self.cfg.residual_scale * self.decoder(h)  # (B, T, 136)

