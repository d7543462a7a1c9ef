"""Zheng et al. 2020's word detector Det_w (ICPR, §III-A, Eq. 3–4, Tab. I; shared/specs/zheng2020.md §2): a 25-frame
landmark sequence -> logits over the dataset's words (LRW: 500; GRID [D]: 51, on 25-frame windows centred on each
`.align` word).

The paper says "LSTM and two fully connected layers". [D] sizes:

    landmarks (B, T, 136) --LSTM(136, 256, 2 layers)--> (B, T, 256) --last step--> (B, 256)
        --FC 256→256--> ReLU --FC 256→n_words--> logits (B, n_words)

Det_w is pre-trained with cross-entropy on ground-truth landmarks, then frozen (`freeze_for_loss`) while A2L trains
with L_wd = CE(Det_w(L̂), word): the gradient flows through Det_w into the predicted landmarks L̂, never into Det_w.
[D] init: PyTorch's defaults (the spec's N(0, 0.02) is read as A2L's and L2F's, as in `models.zheng.a2l`). There is
deliberately no BatchNorm, so that a frozen Det_w kept in train mode computes exactly what it computes in eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.dropout import _DropoutNd

from models.config import DictConfig


@dataclass(frozen=True)
class WordDetectorConfig(DictConfig):
    """Det_w sizes ([D]); the defaults are the "paper" preset. The number of words is not here: it is the store's
    vocabulary size, given to `WordDetector(cfg, n_words)`.

    n_landmarks_flat: the flattened landmarks per frame (68 points × (x, y) = 136).
    hidden, layers: the LSTM (256, 2).
    fc: width of the first fully connected layer (256).
    dropout: the LSTM's dropout between its layers (0.0; nn.LSTM applies none after the top layer).
    """

    n_landmarks_flat: int = 136
    hidden: int = 256
    layers: int = 2
    fc: int = 256
    dropout: float = 0.0

    @classmethod
    def preset(cls, name: str) -> "WordDetectorConfig":
        """"paper": the spec's sizes (1.12 M parameters with 500 words). "small": the same structure, narrow (64
        wide; CPU runs and tests). Raises KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(hidden=64, fc=64),
        }[name]


class WordDetector(nn.Module):
    """forward(landmarks (B, T, 136) float32, normalised coordinates) -> logits (B, n_words) float32.

    The logits read the top LSTM layer's output at the last frame (zero initial state). T is free (the paper uses
    T = 25). Raises ValueError on an input that is not (B, T, n_landmarks_flat) with B, T >= 1, and on n_words < 2.
    """

    def __init__(self, cfg: WordDetectorConfig, n_words: int):
        super().__init__()
        if n_words < 2:
            raise ValueError(f"n_words must be >= 2, got {n_words}")
        self.cfg, self.n_words = cfg, n_words
        self.lstm = nn.LSTM(cfg.n_landmarks_flat, cfg.hidden, cfg.layers, batch_first=True,
                            dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.head = nn.Sequential(
            nn.Linear(cfg.hidden, cfg.fc),  # (B, 256) -> (B, 256)
            nn.ReLU(inplace=True),
            nn.Linear(cfg.fc, n_words),  # -> (B, n_words)
        )

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        D = self.cfg.n_landmarks_flat
        if landmarks.ndim != 3 or landmarks.shape[2] != D or landmarks.shape[0] == 0 or landmarks.shape[1] == 0:
            raise ValueError(f"landmarks must be (B, T, {D}) with B, T >= 1, got {tuple(landmarks.shape)}")
        h, _ = self.lstm(landmarks)  # (B, T, hidden), the top layer's output at every step
        return self.head(h[:, -1])  # (B, hidden) -> (B, n_words)


def freeze_for_loss(module: nn.Module) -> nn.Module:
    """Freeze a pre-trained network that a loss backpropagates through (Det_w for L_wd, Est_m for L_tr), in place;
    returns `module`. Spec §2: frozen while A2L trains, kept in train mode with dropout 0 [D].

    - Every parameter gets requires_grad=False: no gradient is computed for it (its `.grad` stays None) and an
      optimizer over it changes nothing, while the gradient still flows through the module to its inputs.
    - Every dropout layer (nn.Dropout, Dropout1d/2d/3d, AlphaDropout, ...) gets p=0, and every recurrent layer
      (nn.RNN/LSTM/GRU) dropout=0. The change is permanent (it is not in the state_dict); rebuild the module to
      fine-tune it again with dropout.
    - The module is put in train mode. Why: on GPU, cuDNN's RNN backward runs only in training mode ("cudnn RNN
      backward can only be called in training mode"), so an nn.LSTM in eval mode refuses the backward pass a loss
      needs, even with frozen weights. With dropout 0 an LSTM's train mode computes the same function as its eval
      mode; so does the whole module if it has no normalisation layer with running statistics.
    - Hence: raises ValueError if the module has a BatchNorm or InstanceNorm layer with track_running_stats=True
      (train mode would normalise with batch statistics and update the running ones, so it would not equal eval).

    A later `.train()`/`.eval()` on a parent module changes the mode again: call this after it, or call
    `.train()` on the frozen module before each backward. On CPU eval mode would also work; train mode is the one
    that works on both.
    """
    for name, m in module.named_modules():
        if isinstance(m, _NormBase) and m.track_running_stats:
            raise ValueError(f"cannot freeze {type(module).__name__} in train mode: {name or 'it'} is a "
                             f"{type(m).__name__} with running statistics, whose train mode differs from eval mode")
    for p in module.parameters():
        p.requires_grad_(False)
    for m in module.modules():
        if isinstance(m, _DropoutNd):
            m.p = 0.0
        elif isinstance(m, nn.RNNBase):
            m.dropout = 0.0
    return module.train()
