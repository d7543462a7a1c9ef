"""Motion inputs of Chen et al. 2018: a small distilled flow CNN F, its Farneback training target, frame differences.

Chen, Li, Maddox, Duan, Xu. "Lip Movements Generation at a Glance", ECCV 2018, Sec. 3.2 and 4.2. The paper uses
FlowNetS pretrained on FlyingChairs, whose weights are not reachable offline; spec shared/specs/chen2018-lipgan.md,
section 4, option (1): train a smaller flow CNN on OpenCV Farneback flows of the store's own mouth crops (as the
authors fine-tuned FlowNetS on GRID, lelechen63/3d_gan `flownet/ft_grid_flow.py`), then freeze it. F feeds both
the discriminator's motion stream and φ_v, and being differentiable it passes gradients to the generated video.

    clip (B, 3, T, S, S) in [-1, 1] --consecutive pairs cat[v_t, v_t+1]-->          (B (T-1), 6, S, S)
        conv7 s2 6->c1, conv5 s2 c1->c2 (LeakyReLU 0.1, no BN, as FlowNetS)   -->  (B (T-1), c2, S/4, S/4)
        context: 3x3 convs at c2 with dilations (1, 2, 4, 8, 1), LeakyReLU 0.1 -->  (B (T-1), c2, S/4, S/4)
        predict: conv3 c2->2 (bias)                                           -->  flow (B, 2, T-1, S/4, S/4)

The output is at quarter resolution, like FlowNetS's finest prediction flow2 ((2, 15, 16, 16) for the paper sizes),
in pixels of that quarter-resolution grid, channels (x, y), the flow that carries frame t to frame t+1; its target
is `farneback_flow` (no FlowNetS div_flow scaling). The dilated context convs give the prediction a receptive field
of the whole 16 x 16 grid, so mouth motion of a few pixels is in view at every output position.

`frame_differences` is the third-stream alternative of paper Tab. 2 (i) (spec option (3), a deviation from flow).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn as nn

from models.config import DictConfig

# cv2.calcOpticalFlowFarneback(prev, next, None, *FARNEBACK_PARAMS): pyramid scale 0.5, 3 levels, window 15,
# 3 iterations, polynomial neighbourhood 5, sigma 1.2, no flags (the public code's `gen_clip_derivative`)
FARNEBACK_PARAMS = (0.5, 3, 15, 3, 5, 1.2, 0)


@dataclass(frozen=True)
class FlowNetConfig(DictConfig):
    """Flow CNN sizes; the defaults are the "paper" preset (our sizes: the paper uses FlowNetS).

    image_size: side of the square mouth frames S (64); divisible by 4.
    channels: widths (c1, c2) of the two strided convs (64, 128); the context convs keep c2.
    dilations: dilation of each 3x3 context conv at quarter resolution (1, 2, 4, 8, 1).
    negative_slope: LeakyReLU slope (0.1, as FlowNetS).
    """

    image_size: int = 64
    channels: tuple[int, int] = (64, 128)
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1)
    negative_slope: float = 0.1

    def __post_init__(self):
        if self.image_size % 4 or self.image_size < 4 or min(self.channels) < 1 or any(d < 1 for d in self.dilations):
            raise ValueError(f"need image_size a positive multiple of 4, positive channels and dilations, got {self}")

    @classmethod
    def preset(cls, name: str) -> "FlowNetConfig":
        """"paper": 0.96 M parameters. "small": image 32, channels (16, 32), dilations (1, 2, 1) (0.05 M
        parameters), for CPU demos and tests. Raises KeyError on another name."""
        return {"paper": cls(), "small": cls(image_size=32, channels=(16, 32), dilations=(1, 2, 1))}[name]


class MouthFlowNet(nn.Module):
    """F. forward(clip float32 (B, 3, T, S, S), RGB in [-1, 1]) -> flow float32 (B, 2, T-1, S/4, S/4), in pixels of
    the quarter-resolution grid, channels (x, y). Raises ValueError on an input that does not match the config."""

    def __init__(self, cfg: FlowNetConfig = FlowNetConfig()):
        super().__init__()
        self.cfg = cfg
        c1, c2 = cfg.channels
        act = cfg.negative_slope
        self.encoder = nn.Sequential(
            nn.Conv2d(6, c1, 7, 2, 3), nn.LeakyReLU(act, inplace=True),  # (N, c1, S/2, S/2)
            nn.Conv2d(c1, c2, 5, 2, 2), nn.LeakyReLU(act, inplace=True),  # (N, c2, S/4, S/4)
            *[layer for d in cfg.dilations
              for layer in (nn.Conv2d(c2, c2, 3, 1, d, d), nn.LeakyReLU(act, inplace=True))],  # (N, c2, S/4, S/4)
            nn.Conv2d(c2, 2, 3, 1, 1),  # (N, 2, S/4, S/4)
        )

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        S = self.cfg.image_size
        if clip.ndim != 5 or clip.shape[1] != 3 or tuple(clip.shape[3:]) != (S, S) or clip.shape[2] < 2:
            raise ValueError(f"clip must be (B, 3, T >= 2, {S}, {S}), got {tuple(clip.shape)}")
        B, _, T = clip.shape[:3]
        pairs = torch.cat([clip[:, :, :-1], clip[:, :, 1:]], dim=1)  # (B, 6, T-1, S, S): (v_t, v_t+1)
        pairs = pairs.transpose(1, 2).reshape(B * (T - 1), 6, S, S)  # (B (T-1), 6, S, S)
        flow = self.encoder(pairs)  # (B (T-1), 2, S/4, S/4)
        return flow.view(B, T - 1, 2, S // 4, S // 4).transpose(1, 2)  # (B, 2, T-1, S/4, S/4)


def farneback_flow(frames: np.ndarray) -> np.ndarray:
    """OpenCV Farneback flow between consecutive frames at quarter resolution: `MouthFlowNet`'s training target.

    frames: uint8 (T, H, W, 3) RGB, T >= 2, H and W divisible by 4 (the store's mouth crops: (T, 64, 64, 3)).
    Returns float32 (T-1, 2, H/4, W/4): channels (x, y), the flow that carries frame t to frame t+1, computed on
    grayscale frames at full resolution with `FARNEBACK_PARAMS`, area-averaged to (H/4, W/4) (cv2.INTER_AREA) and
    divided by 4, so in pixels of the quarter-resolution grid. Raises ValueError on another dtype or shape.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[0] < 2 \
            or frames.shape[1] % 4 or frames.shape[2] % 4:
        raise ValueError(f"frames must be uint8 (T >= 2, H, W, 3) with H, W divisible by 4, "
                         f"got {frames.dtype} {frames.shape}")
    T, H, W = frames.shape[:3]
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    out = np.empty((T - 1, 2, H // 4, W // 4), np.float32)
    for t in range(T - 1):
        flow = cv2.calcOpticalFlowFarneback(gray[t], gray[t + 1], None, *FARNEBACK_PARAMS)  # (H, W, 2) px
        out[t] = cv2.resize(flow, (W // 4, H // 4), interpolation=cv2.INTER_AREA).transpose(2, 0, 1) / 4
    return out


def frame_differences(video: torch.Tensor) -> torch.Tensor:
    """Signed frame differences v[:, :, t+1] - v[:, :, t]: float (B, C, T, H, W) -> (B, C, T-1, H, W) (the motion
    input of paper Tab. 2 (i); values in [-2, 2] for frames in [-1, 1]). Raises ValueError unless 5-D with T >= 2."""
    if video.ndim != 5 or video.shape[2] < 2:
        raise ValueError(f"video must be (B, C, T >= 2, H, W), got {tuple(video.shape)}")
    return video[:, :, 1:] - video[:, :, :-1]
