"""The three discriminators of Vougioukas, Petridis, Pantic 2019 (IJCV, Sec. 3.2, Fig. 4-6). The authors never
released training code, so every layer here is our design ([D] in shared/specs/vougioukas2019-sda.md, section 3),
built from the paper's description. Each returns raw logits (BCE-with-logits losses). Sizes below are the "paper"
preset (128×96 faces, ndf 64; B clips of T frames):

Frame D (P §3.2.1): is this frame real, given the still?
    [still x_1, frame] (B, 6, 128, 96)
      Conv k4 s2 p1 -> 64 (64×48) LeakyReLU 0.2; 128, 256, 512, 1024 (4×3) each + BN + LeakyReLU
      Conv 1024 -> 1 k(4, 3)                                                                    logit (B,)
Sequence D (P §3.2.2): is this sequence of faces real, given its audio?
    frames (B, T, 3, 128, 96) -> (B, 3, T, 128, 96)
      Conv3d 3 -> 64 k(3,4,4) s(1,2,2) p1 (64×48), 64 -> 128 (32×24), each + LeakyReLU (BN on the second)
      per frame: Conv k4 s2 p1 -> 256 (16×12), 512 (8×6), 512 (4×3) + BN + LeakyReLU; Conv k(4,3) -> 256   (B, T, 256)
    audio (B, T, 3200) -> its own raw-waveform encoder (`generator.AudioEncoder`)                 (B, T, 256)
    concat (B, T, 512) -> GRU 512 -> 256, the state at each clip's last frame -> Linear -> 1       logit (B,)
Sync D (P §3.2.3, Eq. 3): are these 0.2 s of mouth and 0.2 s of audio in sync?
    lower half of 5 frames (B, 3, 5, 64, 96)
      Conv3d 3 -> 64 k(3,4,4) s(1,2,2) p1 (32×48), 128 (16×24) + LeakyReLU (BN on the second), Conv3d 128 -> 256
      k(5,4,4) s(1,2,2) p(0,1,1) (1 frame, 8×12) + BN + LeakyReLU, Conv k4 s2 p1 -> 512 (4×6) + BN + LeakyReLU,
      Conv 512 -> 256 k(4, 6)                                                               video code (B, 256)
    audio (B, 3200) -> its own raw-waveform encoder                                         audio code (B, 256)
    d = ||video - audio||_2 (B, 1) -> Linear(1 -> 1)                                          logit (B,)
    (The paper: the embeddings' Euclidean distance through a 1 -> 1 layer and a sigmoid; the sigmoid is the loss's.)
Weights: DCGAN initialisation (`generator.dcgan_init`). Pure torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models.config import DictConfig
from models.sda.generator import WINDOW, AudioEncoder, FaceGrid, dcgan_init

SYNC_FRAMES = 5  # 0.2 s of video at 25 fps


def conv_block(c_in: int, c_out: int, norm: bool = True) -> nn.Sequential:
    """Conv k4 s2 p1 (no bias) [+ BN] + LeakyReLU 0.2: (N, c_in, h, w) -> (N, c_out, h/2, w/2)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True))


def conv3d_block(c_in: int, c_out: int, kernel_t: int = 3, pad_t: int = 1, norm: bool = True) -> nn.Sequential:
    """Conv3d k(kt,4,4) s(1,2,2) p(pt,1,1) (no bias) [+ BN] + LeakyReLU 0.2: halves H and W."""
    layers: list[nn.Module] = [nn.Conv3d(c_in, c_out, (kernel_t, 4, 4), (1, 2, 2), (pad_t, 1, 1), bias=False)]
    if norm:
        layers.append(nn.BatchNorm3d(c_out))
    return nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True))


@dataclass(frozen=True)
class DiscriminatorsConfig(FaceGrid, DictConfig):
    """Sizes of the three discriminators ([D]); the defaults are the "paper" preset.

    image_size: (H, W) of the face crop (128, 96); H a power of two >= 32, and H / 2 and W multiples of 16 (the sync
        D's lower half goes down to (H / 32, W / 16)).
    ndf: first width of every stream (64); widths double per layer, capped at 8·ndf in the sequence D's per-frame
        layers (512).
    code_size: the sequence D's per-frame video and audio codes, and the sync D's embeddings (256).
    audio_channels: first width of their raw-waveform encoders (16).
    """

    image_size: tuple[int, int] = (128, 96)
    ndf: int = 64
    code_size: int = 256
    audio_channels: int = 16

    def __post_init__(self):
        h, w = self.image_size
        if h < 32 or h & (h - 1) or (4 * w) % h or (h // 2) % 16 or w % 16:
            raise ValueError(f"image_size must be (H, W) with H a power of two >= 32, 4·W / H whole and H / 2, W "
                             f"multiples of 16, got {self.image_size}")
        if min(self.ndf, self.code_size, self.audio_channels) < 1:
            raise ValueError(f"widths must be positive, got {self}")

    @classmethod
    def preset(cls, name: str) -> "DiscriminatorsConfig":
        """"paper" ([D] sizes above) or "small" (ndf 8, codes 32, audio width 4; the same crop). Raises KeyError."""
        return {"paper": cls(), "small": cls(ndf=8, code_size=32, audio_channels=4)}[name]


class FrameDiscriminator(nn.Module):
    """forward(still (N, 3, H, W), frame (N, 3, H, W)) -> logit (N,): real frame of that person, or generated."""

    def __init__(self, cfg: DiscriminatorsConfig = DiscriminatorsConfig()):
        super().__init__()
        widths = [6] + [cfg.ndf * 2**i for i in range(cfg.n_layers)]
        self.layers = nn.Sequential(*[conv_block(widths[i], widths[i + 1], norm=i > 0) for i in range(cfg.n_layers)],
                                    nn.Conv2d(widths[-1], 1, cfg.base_size, bias=False))  # (N, 1, 1, 1)
        dcgan_init(self)

    def forward(self, still: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([still, frame], 1)).flatten()


class SequenceDiscriminator(nn.Module):
    """forward(frames (B, T, 3, H, W), audio (B, T, 3200), lengths (B,) or None) -> logit (B,): a real sequence with
    its audio, or not. The GRU's state at each clip's last frame (lengths; None: T) is classified; in a padded batch
    each clip's logit is the one it gets alone (frames past its end are masked before the temporal convs)."""

    def __init__(self, cfg: DiscriminatorsConfig = DiscriminatorsConfig()):
        super().__init__()
        d, L = cfg.ndf, cfg.n_layers
        self.video3d = nn.ModuleList([conv3d_block(3, d, norm=False), conv3d_block(d, 2 * d)])  # (B, 2d, T, H/4, W/4)
        widths = [2 * d] + [min(4 * d * 2**i, 8 * d) for i in range(L - 2)]  # 256, 512, 512
        self.frames = nn.Sequential(*[conv_block(widths[i], widths[i + 1]) for i in range(L - 2)],
                                    nn.Conv2d(widths[-1], cfg.code_size, cfg.base_size, bias=False))  # (N, code, 1, 1)
        self.audio = AudioEncoder(cfg.audio_channels, cfg.code_size)
        self.rnn = nn.GRU(2 * cfg.code_size, cfg.code_size, batch_first=True)
        self.classify = nn.Linear(cfg.code_size, 1)
        dcgan_init(self.video3d)
        dcgan_init(self.frames)
        dcgan_init(self.audio)

    def forward(self, frames: torch.Tensor, audio: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        B, T = frames.shape[:2]
        if audio.shape != (B, T, WINDOW):
            raise ValueError(f"audio must be (B={B}, T={T}, {WINDOW}), got {tuple(audio.shape)}")
        x = frames.transpose(1, 2)  # (B, 3, T, H, W)
        # frames past a clip's end are zeroed before each temporal conv, so none reaches its last valid frame
        mask = None
        if lengths is not None:
            valid = torch.arange(T, device=frames.device) < lengths.to(frames.device)[:, None]  # (B, T)
            mask = valid.to(x.dtype)[:, None, :, None, None]  # (B, 1, T, 1, 1)
        for layer in self.video3d:
            x = layer(x if mask is None else x * mask)  # (B, 2d, T, H/4, W/4) after both
        x = x.transpose(1, 2).reshape(B * T, *x.shape[1:2], *x.shape[3:])  # (B·T, 2d, H/4, W/4)
        video = self.frames(x).view(B, T, -1)  # (B, T, code)
        sound = self.audio(audio.reshape(B * T, 1, WINDOW)).view(B, T, -1)  # (B, T, code)
        # the GRU is causal: frames past a clip's end do not reach the state at its last frame
        states = self.rnn(torch.cat([video, sound], 2))[0]  # (B, T, code)
        if lengths is None:
            last = torch.full((B,), T - 1, device=frames.device)
        else:
            last = lengths.to(frames.device).long() - 1
        return self.classify(states[torch.arange(B, device=frames.device), last]).flatten()


class SyncDiscriminator(nn.Module):
    """forward(mouths (B, 3, 5, H/2, W), audio (B, 3200)) -> logit (B,): are the 5 frames' lower halves and the 0.2 s
    of audio in sync? Also `distance(mouths, audio)` (B,), the embeddings' Euclidean distance."""

    def __init__(self, cfg: DiscriminatorsConfig = DiscriminatorsConfig()):
        super().__init__()
        d = cfg.ndf
        h, w = cfg.image_size[0] // 2, cfg.image_size[1]
        self.video = nn.Sequential(
            conv3d_block(3, d, norm=False), conv3d_block(d, 2 * d),  # (B, 2d, 5, h/4, w/4)
            conv3d_block(2 * d, 4 * d, kernel_t=SYNC_FRAMES, pad_t=0))  # (B, 4d, 1, h/8, w/8)
        self.video2d = nn.Sequential(conv_block(4 * d, 8 * d),  # (B, 8d, h/16, w/16)
                                     nn.Conv2d(8 * d, cfg.code_size, (h // 16, w // 16), bias=False))  # (B, code, 1, 1)
        self.audio = AudioEncoder(cfg.audio_channels, cfg.code_size)
        self.classify = nn.Linear(1, 1)
        dcgan_init(self.video)
        dcgan_init(self.video2d)
        dcgan_init(self.audio)

    def distance(self, mouths: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        if mouths.ndim != 5 or mouths.shape[1:3] != (3, SYNC_FRAMES) or audio.shape != (mouths.shape[0], WINDOW):
            raise ValueError(f"need mouths (B, 3, {SYNC_FRAMES}, H/2, W) and audio (B, {WINDOW}), got "
                             f"{tuple(mouths.shape)} and {tuple(audio.shape)}")
        v = self.video2d(self.video(mouths).squeeze(2)).flatten(1)  # (B, code)
        a = self.audio(audio.unsqueeze(1))  # (B, code)
        return torch.linalg.vector_norm(v - a, dim=1)  # (B,)

    def forward(self, mouths: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.classify(self.distance(mouths, audio).unsqueeze(1)).flatten()
