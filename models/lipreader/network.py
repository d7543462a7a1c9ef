"""LipNet: a spatio-temporal CNN, two bidirectional GRUs and a per-frame classifier trained with CTC.

Assael, Shillingford, Whiteson, de Freitas. "LipNet: end-to-end sentence-level lipreading", 2016; the layer sizes of
shared/specs/vougioukas2019-sda.md §8. With the "paper" preset on a 32×64 RGB mouth box (B batch, T frames):

    video (B, T, 3, 32, 64) in [-1, 1] -> (B, 3, T, 32, 64)
      Conv3d 3->32  k(3,5,5) s(1,2,2) p(1,2,2), BN, ReLU, Dropout3d  -> (B, 32, T, 16, 32)  MaxPool(1,2,2) -> 8×16
      Conv3d 32->64 k(3,5,5) s1       p(1,2,2), BN, ReLU, Dropout3d  -> (B, 64, T, 8, 16)   MaxPool(1,2,2) -> 4×8
      Conv3d 64->96 k(3,3,3) s1       p(1,1,1), BN, ReLU, Dropout3d  -> (B, 96, T, 4, 8)    MaxPool(1,2,2) -> 2×4
    per-frame flatten (T, B, 96·2·4 = 768)
      BiGRU 768 -> 2×256, dropout, BiGRU 512 -> 2×256, dropout     -> (T, B, 512)
      Linear 512 -> 28, log_softmax                                 -> (T, B, 28)

Time is never strided or pooled (kernel 3, padding 1 along T): one CTC output per input frame. The 50×100 option
(the box upsampled, LipNet's own input size) gives 96·3·6 = 1728 features per frame. With `lengths`, the GRUs run
on packed sequences, so a clip's backward direction starts at its last real frame, and each conv block's output is
zeroed past the clip's end: a clip reads the same alone or padded in a batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.config import DictConfig
from models.lipreader.text import NUM_CLASSES

KERNELS = ((3, 5, 5), (3, 5, 5), (3, 3, 3))
PADDINGS = ((1, 2, 2), (1, 2, 2), (1, 1, 1))
STRIDES = ((1, 2, 2), (1, 1, 1), (1, 1, 1))


@dataclass(frozen=True)
class LipReaderConfig(DictConfig):
    """LipNet's sizes and input.

    size: (H, W) of the network input in pixels, the mouth box resized to it (`data.mouth_frames`): (32, 64) for the
        paper preset (spec §8: a ~32×64 box of the 128×128 face crop), (50, 100) for LipNet's own input size; each
        side at least 16 (after the stride and the three pools: ceil(H / 2) // 8 × ceil(W / 2) // 8).
    channels: 3 (RGB, LipNet) or 1 (grey).
    conv: output channels of the three Conv3d blocks (32, 64, 96). gru: hidden units per direction (256);
    gru_layers: stacked BiGRUs (2). dropout: after each conv block (Dropout3d) and each GRU (0.5, as LipNet's
        public implementations).
    Presets: "paper" (the above) and "small" [D] (grey 16×32 input, convs 8/16/24, one BiGRU of 128, no dropout: a
    CPU size that memorises the bundled sample clips within a few hundred steps).
    """

    size: tuple[int, int] = (32, 64)
    channels: int = 3
    conv: tuple[int, int, int] = (32, 64, 96)
    gru: int = 256
    gru_layers: int = 2
    dropout: float = 0.5

    def __post_init__(self):
        if min(self.size) < 16 or self.channels not in (1, 3) or len(self.conv) != 3 or self.gru < 1 \
                or self.gru_layers < 1 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LipReaderConfig: need sides >= 16, channels 1 or 3, three conv widths, gru >= 1, "
                             f"gru_layers >= 1, 0 <= dropout < 1; got {self}")

    @property
    def features(self) -> int:
        """Per-frame features entering the first GRU: conv[-1] · (ceil(H / 2) // 8) · (ceil(W / 2) // 8)."""
        h, w = ((side + 1) // 2 // 8 for side in self.size)
        return self.conv[-1] * h * w

    @classmethod
    def preset(cls, name: str) -> "LipReaderConfig":
        """"paper" or "small" (class docstring). Raises KeyError on another name."""
        presets = {"paper": cls(),
                   "small": cls(size=(16, 32), channels=1, conv=(8, 16, 24), gru=128, gru_layers=1, dropout=0.0)}
        if name not in presets:
            raise KeyError(f"unknown preset {name!r}; choose from {', '.join(presets)}")
        return presets[name]


class LipNet(nn.Module):
    """LipNet (module docstring). forward(video, lengths=None) -> log-probabilities (T, B, 28)."""

    def __init__(self, cfg: LipReaderConfig = LipReaderConfig()):
        super().__init__()
        self.cfg = cfg
        blocks, c_in = [], cfg.channels
        for c_out, k, s, p in zip(cfg.conv, KERNELS, STRIDES, PADDINGS):
            blocks += [nn.Conv3d(c_in, c_out, k, s, p, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True),
                       nn.Dropout3d(cfg.dropout), nn.MaxPool3d((1, 2, 2), (1, 2, 2))]
            c_in = c_out
        self.stcnn = nn.Sequential(*blocks)
        self.grus = nn.ModuleList(
            nn.GRU(cfg.features if i == 0 else 2 * cfg.gru, cfg.gru, bidirectional=True) for i in range(cfg.gru_layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(2 * cfg.gru, NUM_CLASSES)

    def forward(self, video: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """video: float (B, T, C, H, W) in [-1, 1], C = cfg.channels, (H, W) = cfg.size; frames past a clip's length
        are ignored when `lengths` (B,) int is given (input and conv features masked, GRUs packed). Returns
        log-probabilities float32 (T, B, 28) over `text.ALPHABET` with blank 0 (what `torch.nn.CTCLoss` takes); rows
        past a clip's length are padding."""
        B, T, C, H, W = video.shape
        if (C, H, W) != (self.cfg.channels, *self.cfg.size):
            raise ValueError(f"video must be (B, T, {self.cfg.channels}, {self.cfg.size[0]}, {self.cfg.size[1]}), "
                             f"got {tuple(video.shape)}")
        lengths = None if lengths is None else lengths.cpu().clamp(1, T)
        pack = lengths is not None and bool((lengths < T).any())  # every clip full length: no masks, no packing
        mask = (torch.arange(T)[None] < lengths[:, None]).to(video)[:, None, :, None, None] if pack else None
        x = video.transpose(1, 2) if mask is None else video.transpose(1, 2) * mask  # (B, C, T, H, W)
        for layer in self.stcnn:
            x = layer(x)
            if mask is not None and isinstance(layer, nn.MaxPool3d):
                x = x * mask  # zero past each clip's end, as the next conv's time padding is
        x = x.permute(2, 0, 1, 3, 4).flatten(2)  # (B, C', T, H', W') -> (T, B, features)
        for gru in self.grus:
            if pack:
                x = pad_packed_sequence(gru(pack_padded_sequence(x, lengths, enforce_sorted=False))[0],
                                        total_length=T)[0]
            else:
                x = gru(x)[0]
            x = self.dropout(x)  # (T, B, 2·gru)
        return F.log_softmax(self.fc(x).float(), dim=-1)  # (T, B, 28)
