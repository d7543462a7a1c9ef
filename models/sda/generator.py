"""Vougioukas, Petridis, Pantic 2019 temporal generator ("Realistic Speech-Driven Facial Animation with GANs", IJCV,
Sec. 3.1 and Fig. 2), built as the authors' inference library builds it (DinoMan/speech-driven-animation at
d85adfe: `encoder_image.Encoder`, `encoder_audio.Encoder`, `rnn_audio.RNN`, `img_generator.Generator` with U-Net
blocks and sequential noise). Spec: shared/specs/vougioukas2019-sda.md, section 2. Sizes below are the "paper"
preset (128×96 faces, ngf 64, L = log2(128) - 2 = 5 encoder layers, T frames, B clips):

    identity x_1 (B, 3, 128, 96) in [-1, 1]
      5 x [Conv k4 s2 p1, BN, ReLU]  64 (64×48), 128 (32×24), 256 (16×12), 512 (8×6), 1024 (4×3)   -> U-Net skips
      Conv 1024 -> 128 k(4, 3) + tanh                                                        z_id (B, 128)
    audio (B, T, 3200): 0.2 s windows of the int16 / 32767 waveform centred on each frame (`audio_windows`)
      per window: Conv1d 1 -> 16 k80 s16 p32 (200), 16 -> 32 k4 s2 p1 (100), -> 64 (50), -> 128 (25),
                  128 -> 256 k10 s5 p3 (5), each + BN + ReLU; Conv1d 256 -> 256 k5 (1) + tanh      (B·T, 256)
      content GRU 256 -> 256, 2 layers (the released weights; the paper says 1)               z_c (B, T, 256)
    noise (B, T, 10) ~ N(0, noise_std²) -> GRU 10 -> 10 -> tanh                               z_n (B, T, 10)
    latent [z_c, z_n, z_id] (B·T, 394, 1, 1)
      ConvT 394 -> 1024 k(4, 3) + BN + ReLU                                                      (B·T, 1024, 4, 3)
      4 U-Net blocks: concat the skip of that size, ConvT 3×3 s1 p1 2C -> C + BN + ReLU,
                      ConvT k4 s2 p1 C -> C/2 + BN + ReLU             512 (8×6), 256 (16×12), 128 (32×24), 64 (64×48)
      ConvT 64 -> 3 k4 s2 p1 + tanh                                                        (B·T, 3, 128, 96)
    frames (B, T, 3, 128, 96) in [-1, 1]

Every convolution is bias-free except the audio encoder's (the authors' code); frames are decoded independently,
z_id and the skips broadcast over T. Switches of Tab. 5/6 (shared/specs/vougioukas2019-sda.md §7): `unet_skips` False
decodes from the latent alone (no concatenated maps), `noise` "white" feeds the N(0, noise_std²) draw straight into
the latent (no GRU) and "off" leaves it out, `temporal` False drops the content GRU too (z_c is the audio encoder's
per-window code: each frame from its own 0.2 s of audio, the static baseline). Weights: N(0, 0.02) for
convolutions, N(1, 0.02) for BatchNorm scales (DCGAN, the authors' `utils.initialize_weights(·, [0.0, 0.02])`), PyTorch's default for the GRUs and the audio biases.
About 55 M parameters at the paper preset. Pure torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn as nn

from models.config import DictConfig

SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps
WINDOW = 3200  # 0.2 s of audio per frame
PAD = (WINDOW - SAMPLES_PER_FRAME) // 2  # 1280 zeros each side: window t is centred on frame t


def audio_windows(audio: np.ndarray, n_frames: int, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The generator's audio input for n_frames video frames at 25 fps: int16 (S,) at 16 kHz -> float32
    (n_frames, rate / 5) in [-1, 1]. The waveform / 32767 (FFT-resampled to `rate` first when it is not 16 kHz, as
    the authors' `sda.VideoAnimator` does with `scipy.signal.resample`; their GRID model hears 50 kHz) is cut (or
    zero-padded) to rate / 25 · n_frames samples, padded with (window - hop) / 2 zeros each side, and window t =
    padded[hop·t : hop·t + window]: 0.2 s centred on frame t (spec §1). At 16 kHz: hop 640, window 3200, 1280 zeros.
    `frame_windows(waveform(audio, rate, n_frames), n_frames, rate)`.
    Raises ValueError for n_frames < 1 or a rate that is not a multiple of 25 Hz."""
    _check_frames_and_rate(n_frames, rate)
    return frame_windows(waveform(audio, rate, n_frames), n_frames, rate)


def waveform(audio: np.ndarray, rate: int = SAMPLE_RATE, n_frames: int | None = None) -> np.ndarray:
    """What the windows are cut from: speech int16 (S,) at 16 kHz -> float32 (S',) in [-1, 1] (/ 32767) at `rate`,
    FFT-resampled (`scipy.signal.resample`) when `rate` is not 16 kHz; S' = S · rate / 16000. n_frames: only the
    first 640 · n_frames samples (the frames' span), cut before resampling, as `audio_windows` does; None: all."""
    signal = np.asarray(audio)
    if n_frames is not None:
        signal = signal[: SAMPLES_PER_FRAME * n_frames]
    signal = signal.astype(np.float64)
    if rate != SAMPLE_RATE and len(signal):
        from scipy.signal import resample

        signal = resample(signal, len(signal) * rate // SAMPLE_RATE)
    return (signal / 32767.0).astype(np.float32)


def frame_windows(wave: np.ndarray, n_frames: int, rate: int = SAMPLE_RATE) -> np.ndarray:
    """The 0.2 s windows centred on each of n_frames video frames (`audio_windows`) of a `waveform` float32 (S',) at
    `rate`: float32 (n_frames, rate / 5), zeros where they reach past the waveform's ends. Raises ValueError for
    n_frames < 1 or a rate that is not a multiple of 25 Hz."""
    _check_frames_and_rate(n_frames, rate)
    hop, window = rate // 25, rate // 5
    pad = (window - hop) // 2
    padded = np.zeros(hop * n_frames + 2 * pad, np.float32)
    used = wave[: hop * n_frames]
    padded[pad : pad + len(used)] = used
    starts = hop * np.arange(n_frames)
    return padded[starts[:, None] + np.arange(window)]  # (n_frames, window)


def _check_frames_and_rate(n_frames: int, rate: int) -> None:
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if rate % 25:
        raise ValueError(f"rate must be a multiple of 25 Hz (whole samples per frame), got {rate}")


class FaceGrid:
    """The sizes a config with `image_size` (H, W) derives, shared by the generator's and the discriminators'."""

    image_size: tuple[int, int]

    @property
    def n_layers(self) -> int:
        """Stride-2 layers from H down to 4: log2(H) - 2 (5 at 128 px; the identity encoder's depth)."""
        return int(self.image_size[0]).bit_length() - 3

    @property
    def base_size(self) -> tuple[int, int]:
        """(4, 4·W / H): the encoder's last map and the decoder's first, (4, 3) at 128×96."""
        return 4, 4 * self.image_size[1] // self.image_size[0]


@dataclass(frozen=True)
class SDAGeneratorConfig(FaceGrid, DictConfig):
    """Generator sizes; the defaults are the authors' ("paper" preset).

    image_size: (H, W) of the face crop (128, 96), the store's `face_sda`; H a power of two >= 16 and 4·W / H a
        whole number (the decoder starts at (4, 4·W / H)).
    ngf: width of the identity encoder's first layer (64); it doubles per layer, and the decoder mirrors it.
    id_size, content_size, noise_size: z_id (128), z_c (256, also the audio encoder's code), noise (10).
    audio_channels: width of the audio encoder's first conv (16); it doubles per layer.
    audio_rate: sample rate of the waveform windows, Hz (16000, the store's; the authors' GRID model hears 50000,
        TCD-TIMIT 48000, CREMA-D 16000: `audio_windows` resamples); windows are audio_rate / 5 samples.
    content_layers: layers of the content GRU (2, the released weights).
    noise_std: standard deviation of the per-frame noise (0.33 as the authors' code draws it; the paper's text gives
        a variance of 0.6).
    noise: "gru" (the paper: the draw through a GRU and tanh), "white" (the draw itself, per frame) or "off" (no
        noise part in the latent).
    unet_skips: concatenate the identity encoder's maps in the decoder (True, the paper; False: Tab. 6 ablation).
    temporal: run the content GRU (True); False is the static baseline's generator (no GRU; needs noise != "gru").
    """

    image_size: tuple[int, int] = (128, 96)
    ngf: int = 64
    id_size: int = 128
    content_size: int = 256
    noise_size: int = 10
    audio_channels: int = 16
    audio_rate: int = SAMPLE_RATE
    content_layers: int = 2
    noise_std: float = 0.33
    noise: Literal["gru", "white", "off"] = "gru"
    unet_skips: bool = True
    temporal: bool = True

    def __post_init__(self):
        h, w = self.image_size
        if h < 16 or h & (h - 1) or (4 * w) % h or w < 1:
            raise ValueError(f"image_size must be (H, W) with H a power of two >= 16 and 4·W / H whole, got "
                             f"{self.image_size}")
        if min(self.ngf, self.id_size, self.content_size, self.audio_channels, self.content_layers) < 1 \
                or self.noise_size < 0 or self.noise_std < 0:
            raise ValueError(f"widths and layers must be positive, noise size and std >= 0, got {self}")
        if self.audio_rate < 1000 or self.audio_rate % 1000:
            raise ValueError(f"audio_rate must be a whole number of kHz (1 ms stride), got {self.audio_rate}")
        if self.noise not in ("gru", "white", "off") or (not self.temporal and self.noise == "gru"):
            raise ValueError(f"noise must be gru, white or off, and not gru without the temporal GRUs, got "
                             f"noise={self.noise!r}, temporal={self.temporal}")

    @property
    def noise_dims(self) -> int:
        """Width of z_n in the latent: noise_size, or 0 with noise "off"."""
        return 0 if self.noise == "off" else self.noise_size

    @classmethod
    def preset(cls, name: str) -> "SDAGeneratorConfig":
        """"paper": the released sizes (about 55 M parameters). "small": ngf 8, z_id 32, z_c 64, audio width 4, one
        content GRU layer, for CPU tests (the same 128×96 crop). Raises KeyError on another name."""
        return {"paper": cls(),
                "small": cls(ngf=8, id_size=32, content_size=64, audio_channels=4, content_layers=1)}[name]


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) convolution weights, N(1, 0.02) BatchNorm scales with zero shifts (the authors' initialisation)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class IdentityEncoder(nn.Module):
    """x_1 (N, 3, H, W) -> (z_id (N, id_size), skips: the L maps, largest first: (N, ngf·2^i, H/2^(i+1), W/2^(i+1)))."""

    def __init__(self, cfg: SDAGeneratorConfig):
        super().__init__()
        widths = [3] + [cfg.ngf * 2**i for i in range(cfg.n_layers)]
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1, bias=False), nn.BatchNorm2d(widths[i + 1]),
                          nn.ReLU(inplace=True))
            for i in range(cfg.n_layers))
        self.code = nn.Sequential(nn.Conv2d(widths[-1], cfg.id_size, cfg.base_size, bias=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for layer in self.layers:
            x = layer(x)
            skips.append(x)
        return self.code(x).flatten(1), skips  # (N, id_size), L maps


def first_audio_conv(rate: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) of the audio encoder's first Conv1d for 0.2 s windows at `rate` Hz: 5 ms kernel, 1 ms
    stride, "same" padding to rate / 5 / stride = 200 outputs (the authors' `encoder_audio.Encoder` with
    init_kernel 0.005, init_stride 0.001 and `utils.calculate_padding`): (80, 16, 32) at 16 kHz, (250, 50, 100) at
    50 kHz (their GRID model), (240, 48, 96) at 48 kHz (TCD-TIMIT)."""
    window, kernel, stride = rate // 5, rate // 200, rate // 1000
    total = (math.ceil(window / stride) - 1) * stride + kernel - window
    return kernel, stride, math.ceil(total / 2)


class AudioEncoder(nn.Module):
    """Raw-waveform windows (N, 1, rate / 5) -> (N, code_size): five Conv1d + BN + ReLU, 0.2 s -> 200 -> 100 -> 50 -> 25
    -> 5 samples, then Conv1d k5 -> 1 + tanh (the authors' strides and kernels; `first_audio_conv`). rate: 16000
    (the store's) or the rate an imported model was trained at."""

    def __init__(self, channels: int, code_size: int, rate: int = SAMPLE_RATE):
        super().__init__()
        self.window = rate // 5
        c = [1, channels, 2 * channels, 4 * channels, 8 * channels, 16 * channels]
        shapes = [first_audio_conv(rate), (4, 2, 1), (4, 2, 1), (4, 2, 1), (10, 5, 3)]  # (kernel, stride, padding)
        self.layers = nn.Sequential(*[
            nn.Sequential(nn.Conv1d(c[i], c[i + 1], k, s, p), nn.BatchNorm1d(c[i + 1]), nn.ReLU(inplace=True))
            for i, (k, s, p) in enumerate(shapes)])  # (N, 16 channels, 5)
        self.code = nn.Sequential(nn.Conv1d(c[-1], code_size, 5), nn.Tanh())  # (N, code_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != (1, self.window):
            raise ValueError(f"audio windows must be (N, 1, {self.window}), got {tuple(x.shape)}")
        return self.code(self.layers(x)).flatten(1)


class UNetBlock(nn.Module):
    """(x (N, C, h, w), skip (N, S, h, w); None when S = 0) -> (N, C/2, 2h, 2w): concat, ConvT 3×3 s1 p1 C+S -> C + BN
    + ReLU, ConvT k4 s2 p1 C -> C/2 + BN + ReLU."""

    def __init__(self, channels: int, skip_channels: int):
        super().__init__()
        self.merge = nn.Sequential(nn.ConvTranspose2d(channels + skip_channels, channels, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.up = nn.Sequential(nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                                nn.BatchNorm2d(channels // 2), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        return self.up(self.merge(x if skip is None else torch.cat([x, skip], 1)))


class SDAGenerator(nn.Module):
    """forward(identity, audio, lengths=None, noise=None) -> frames.

    identity: float32 (B, 3, H, W), the still face x_1 in [-1, 1] (the clip's first frame in training).
    audio: float32 (B, T, audio_rate / 5) (3200 at 16 kHz), `audio_windows` of each clip (zero rows past a clip's
        length).
    lengths: int (B,) frames per clip for packed variable-length batches (None: all T); frames past a clip's
        length are decoded from the GRUs' zero outputs and should be ignored.
    noise: float32 (B, T, noise_size) before the noise GRU (None: drawn N(0, noise_std²) from torch's generator).
    Returns frames float32 (B, T, 3, H, W) in [-1, 1] (tanh). Raises ValueError on mismatched shapes.
    """

    def __init__(self, cfg: SDAGeneratorConfig = SDAGeneratorConfig()):
        super().__init__()
        self.cfg = cfg
        L, g = cfg.n_layers, cfg.ngf
        self.identity_encoder = IdentityEncoder(cfg)
        self.audio_encoder = AudioEncoder(cfg.audio_channels, cfg.content_size, cfg.audio_rate)
        self.content_rnn = (nn.GRU(cfg.content_size, cfg.content_size, cfg.content_layers, batch_first=True)
                            if cfg.temporal else None)
        self.noise_rnn = (nn.GRU(cfg.noise_size, cfg.noise_size, batch_first=True)
                          if cfg.noise == "gru" and cfg.noise_size else None)
        top = g * 2 ** (L - 1)  # 1024: the encoder's deepest width
        latent = cfg.content_size + cfg.noise_dims + cfg.id_size
        self.project = nn.Sequential(nn.ConvTranspose2d(latent, top, cfg.base_size, bias=False), nn.BatchNorm2d(top),
                                     nn.ReLU(inplace=True))  # (N, top, 4, 3)
        self.blocks = nn.ModuleList(UNetBlock(top // 2**i, top // 2**i if cfg.unet_skips else 0)
                                    for i in range(L - 1))  # skips deepest first
        self.to_rgb = nn.ConvTranspose2d(g, 3, 4, 2, 1, bias=False)  # (N, 3, H, W); tanh in forward
        dcgan_init(self.identity_encoder)
        dcgan_init(self.audio_encoder)
        dcgan_init(self.project)
        dcgan_init(self.blocks)
        dcgan_init(self.to_rgb)

    def _rnn(self, rnn: nn.GRU, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if lengths is None:
            return rnn(x)[0]
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=x.shape[1])[0]

    def forward(self, identity: torch.Tensor, audio: torch.Tensor, lengths: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """identity (B, 3, H, W) in [-1, 1], audio (B, T, audio_rate / 5) (`audio_windows`), lengths (B,) int64
        frames of each padded sequence (None: all T), noise (B, T, noise_size) (None: drawn N(0, noise_std²)) -> frames
        (B, T, 3, H, W) in [-1, 1]. Raises ValueError for other shapes."""
        B, T = identity.shape[0], audio.shape[1] if audio.ndim == 3 else 0
        latent, skips = self.latents(identity, audio, lengths, noise)  # (B, T, latent), L maps
        frames = self.decode(latent.reshape(B * T, -1), [s.repeat_interleave(T, 0) for s in skips]
                             if self.cfg.unet_skips else skips)
        return frames.view(B, T, 3, *self.cfg.image_size)

    def latents(self, identity: torch.Tensor, audio: torch.Tensor, lengths: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The per-frame latents [z_c, z_n, z_id] (B, T, content + noise + id) and the identity encoder's U-Net maps
        (L tensors (B, C, h, w), shallowest first) of `forward`'s inputs."""
        cfg, (H, W) = self.cfg, self.cfg.image_size
        if identity.ndim != 4 or tuple(identity.shape[1:]) != (3, H, W):
            raise ValueError(f"identity must be (B, 3, {H}, {W}), got {tuple(identity.shape)}")
        B = identity.shape[0]
        window = self.audio_encoder.window
        if audio.ndim != 3 or audio.shape[0] != B or audio.shape[2] != window:
            raise ValueError(f"audio must be (B={B}, T, {window}), got {tuple(audio.shape)}")
        T = audio.shape[1]
        z_id, skips = self.identity_encoder(identity)  # (B, id), L maps
        z_c = self.audio_encoder(audio.reshape(B * T, 1, window)).view(B, T, -1)  # (B, T, content)
        if self.content_rnn is not None:
            z_c = self._rnn(self.content_rnn, z_c, lengths)  # (B, T, content)
        parts = [z_c]
        if cfg.noise_dims:
            if noise is None:
                noise = torch.randn(B, T, cfg.noise_size, device=audio.device, dtype=z_c.dtype) * cfg.noise_std
            if tuple(noise.shape) != (B, T, cfg.noise_size):
                raise ValueError(f"noise must be (B={B}, T={T}, {cfg.noise_size}), got {tuple(noise.shape)}")
            parts.append(torch.tanh(self._rnn(self.noise_rnn, noise, lengths)) if self.noise_rnn is not None
                         else noise)  # (B, T, noise)
        parts.append(z_id.unsqueeze(1).expand(-1, T, -1))  # (B, T, id)
        return torch.cat(parts, 2), skips

    def decode(self, latent: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """Frames decoded independently: latent (N, latent) and each frame's U-Net maps (L tensors (N, C, h, w), or
        (1, C, h, w) broadcast; not read when `unet_skips` is off) -> (N, 3, H, W) in [-1, 1]."""
        x = self.project(latent[:, :, None, None])  # (N, top, 4, 3)
        for block, skip in zip(self.blocks, reversed(skips)):  # skips of 4×3, 8×6, 16×12, 32×24
            x = block(x, skip.expand(len(x), -1, -1, -1) if self.cfg.unet_skips else None)  # (N, C/2, 2h, 2w)
        return torch.tanh(self.to_rgb(x))
