"""Chen et al. 2018 audio-visual discriminators: three-stream (video, motion, audio) and two-stream (video, audio).

Chen, Li, Maddox, Duan, Xu. "Lip Movements Generation at a Glance", ECCV 2018, Sec. 4.2 and Fig. 5, following the
authors' public code (lelechen63/3d_gan at 712dccf^: `model_corr_perceptual_difference.py` class `Discriminator`
for the three-stream D, `model_corr.py` class `Discriminator` for the two-stream one; `pts3d.py` conv3d = Conv3d +
BatchNorm3d + ReLU, bias only without BatchNorm). Spec: shared/specs/chen2018-lipgan.md, section 3. Sizes below are
the "paper" preset (image 64, T = 16, 128 mels):

    audio  (B, 1, 64, 128) --the generator's first 4 audio convs (own weights)--> (B, 256, 16, 32)
           --flatten 131072, Linear (no bias) + BN1d + ReLU--> (B, 256), tiled                  (B, 256, 1, 4, 4)
    video  (B, 3, 16, 64, 64) --Conv3d k4 p1: 3->64 s2 (no BN), 64->128 s2, 128->256 s2,
           256->256 s(1,2,2)-->                                                                (B, 256, 1, 4, 4)
    motion (B, 2, 15, 16, 16) flow --Conv3d k3 p1: 2->64 s2 (no BN), 64->128 s(2,1,1), 128->256 s2,
           256->256 s(2,1,1)-->                                                                (B, 256, 1, 4, 4)
    joint  concat 768 -> Conv3d k3 p1 512 + BN + ReLU -> Conv3d 512->1 k(1,4,4) (bias)          (B,) logits

The two-stream D has no motion stream, its last video layer is 256 -> 512 and its audio Linear has a bias and no
BatchNorm; joint concat 512 + 256.

Sizes derived from the config (the public code hard-codes them):
- video stream: spatial strides 2 everywhere (image_size / 16 at the end); temporal strides `video_time_strides`
  ((2, 2, 2, 1) for T = 16: 16 -> 8 -> 4 -> 2 -> 1); its output (T_v, S/16, S/16) is what every stream is brought
  to, and the joint's last conv has exactly that kernel, so each sample gets one logit.
- motion stream: input (B, motion_channels, T - 1, motion_size, motion_size). Its temporal and spatial strides are
  derived: the fewest stride-2 layers (k3 p1, each maps n to ceil(n / 2)) that bring T - 1 to T_v and motion_size to
  S / 16, spread over the 4 layers by `spread_strides` (h = 2 of 4 -> (2, 1, 2, 1), the public code's spatial
  strides for flow; h = 4 -> (2, 2, 2, 2), its temporal ones). So the spec's motion inputs all work from the config:
  flow (`MouthFlowNet` or `farneback_flow`): motion_channels 2, motion_size S / 4 (the default);
  signed frame differences (`frame_differences`, Tab. 2 (i)): motion_channels 3, motion_size S.
- audio stream: the generator's stride rule (`models.lipgan.generator.audio_strides`), first 4 layers; the Linear's
  input is audio_channels[3] x T x n_mels / (its frequency halvings) (256 x 16 x 32 for the paper).

The scores are raw logits: train with `binary_cross_entropy_with_logits` (the public code ends in a sigmoid and uses
BCELoss; the same function, numerically safer). Weights: kaiming-normal for every conv and Linear, as the public
code's `conv3d`, `conv2d`, `linear` helpers. The three-stream audio Linear has BatchNorm1d: in training mode a batch
needs at least 2 samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models.config import DictConfig
from models.lipgan.generator import MEL_ROWS_PER_FRAME, audio_encoder, audio_strides

N_LAYERS = 4  # convs in the video and motion streams


def spread_strides(n_halve: int, n_layers: int = N_LAYERS) -> tuple[int, ...]:
    """Strides of n_layers layers, n_halve of them 2, spread evenly starting at the first: layer i halves when
    ceil((i + 1) n_halve / n_layers) > ceil(i n_halve / n_layers). (2 of 4 -> (2, 1, 2, 1); 3 -> (2, 2, 2, 1))."""
    return tuple(2 if -(-(i + 1) * n_halve // n_layers) > -(-i * n_halve // n_layers) else 1 for i in range(n_layers))


def halvings_to(n_in: int, n_out: int, max_halvings: int = N_LAYERS) -> int | None:
    """The fewest h <= max_halvings with ceil-halving n_in h times giving n_out (k3 p1 stride-2 convs); None if none."""
    n = n_in
    for h in range(max_halvings + 1):
        if n == n_out:
            return h
        n = -(-n // 2)
    return None


@dataclass(frozen=True)
class DiscriminatorConfig(DictConfig):
    """Sizes of both discriminators; the defaults are the paper's ("paper" preset).

    image_size: side of the square mouth frames S (64); divisible by 16.
    frames: T, frames per clip (16); the motion input has T - 1 steps.
    n_mels: mel bands of the audio window (1, 4T, n_mels) (128); image_size / 4 times a power of two.
    audio_channels: widths of the 4 audio convs (32, 64, 128, 256).
    audio_features: width of the audio Linear (256).
    video_channels: widths of the 4 video convs of the three-stream D (64, 128, 256, 256); the first has no BN.
    video_time_strides: temporal strides of the 4 video convs (2, 2, 2, 1), each 1 or 2; must leave T_v >= 1 frames
        (k4 p1: stride 2 maps n to floor(n / 2), stride 1 to n - 1). T = 8 needs e.g. (2, 1, 1, 1).
    two_stream_video_out: the two-stream D's last video width (512), in place of video_channels[3].
    motion_channels: channels of the motion input: 2 for optical flow (x, y), 3 for RGB frame differences.
    motion_size: side of the motion input: image_size / 4 for flow (16), image_size for frame differences.
    motion_widths: widths of the 4 motion convs (64, 128, 256, 256); the first has no BN. Three-stream only.
    joint_channels: width of the joint conv (512).
    Strides of the motion stream are derived (module docstring); configs they cannot serve raise ValueError.
    """

    image_size: int = 64
    frames: int = 16
    n_mels: int = 128
    audio_channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    audio_features: int = 256
    video_channels: tuple[int, int, int, int] = (64, 128, 256, 256)
    video_time_strides: tuple[int, int, int, int] = (2, 2, 2, 1)
    two_stream_video_out: int = 512
    motion_channels: int = 2
    motion_size: int = 16
    motion_widths: tuple[int, int, int, int] = (64, 128, 256, 256)
    joint_channels: int = 512

    def __post_init__(self):
        if self.image_size % 16 or self.image_size < 16:
            raise ValueError(f"image_size must be a positive multiple of 16 (four stride-2 video convs), "
                             f"got {self.image_size}")
        if self.frames < 2 or self.motion_channels < 1 or self.motion_size < 1 or min(
                *self.audio_channels, *self.video_channels, *self.motion_widths, self.audio_features,
                self.two_stream_video_out, self.joint_channels) < 1:
            raise ValueError(f"need frames >= 2, motion_channels >= 1, motion_size >= 1 and positive widths, "
                             f"got {self}")
        if len(self.video_time_strides) != N_LAYERS or not set(self.video_time_strides) <= {1, 2}:
            raise ValueError(f"video_time_strides must be {N_LAYERS} strides of 1 or 2, got {self.video_time_strides}")
        audio_strides(self.n_mels, self.image_size // 4)
        t_v, s_v = self.video_out
        if t_v < 1:
            raise ValueError(f"video_time_strides {self.video_time_strides} leave no frame of T = {self.frames} "
                             f"(k4 p1: stride 2 maps n to floor(n/2), stride 1 to n - 1)")
        if None in self.motion_halvings:
            raise ValueError(f"the motion stream cannot map (T - 1, side) = ({self.frames - 1}, {self.motion_size}) "
                             f"to the video stream's output ({t_v}, {s_v}) with {N_LAYERS} k3 p1 convs of stride 1 "
                             f"or 2 (flow: motion_size = image_size / 4; frame differences: image_size)")

    @property
    def video_out(self) -> tuple[int, int]:
        """(T_v, S_v): time and side of every stream's output ((1, 4) for the paper); T_v < 1 for bad strides."""
        t = self.frames
        for s in self.video_time_strides:
            t = (t - 2) // s + 1 if t >= 2 else 0
        return t, self.image_size // 16

    @property
    def motion_halvings(self) -> tuple[int | None, int | None]:
        """(temporal, spatial): how many motion convs have stride 2 on that axis, the fewest that bring T - 1 and
        motion_size to `video_out` ((4, 2) for the paper); None where no count of at most 4 does."""
        t_v, s_v = self.video_out
        return halvings_to(self.frames - 1, t_v), halvings_to(self.motion_size, s_v)

    @property
    def motion_strides(self) -> tuple[tuple[int, int, int], ...]:
        """(time, height, width) strides of the 4 motion convs (paper: (2,2,2), (2,1,1), (2,2,2), (2,1,1))."""
        h_t, h_s = self.motion_halvings
        return tuple((t, s, s) for t, s in zip(spread_strides(h_t), spread_strides(h_s)))

    @classmethod
    def preset(cls, name: str) -> "DiscriminatorConfig":
        """"paper": the published sizes (three-stream 54.28 M parameters, the spec's "~55 M"; two-stream 55.59 M;
        the audio Linear is 33.55 M of each). "small": image 32, T 8, 32 mels, narrow layers (three-stream 1.56 M,
        two-stream 1.64 M), for CPU demos and tests. Both take flow as motion input. Raises KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(image_size=32, frames=8, n_mels=32, audio_channels=(8, 16, 32, 64), audio_features=64,
                         video_channels=(16, 32, 64, 64), video_time_strides=(2, 1, 1, 1), two_stream_video_out=128,
                         motion_size=8, motion_widths=(16, 32, 64, 64), joint_channels=128),
        }[name]


def conv3d(c_in: int, c_out: int, kernel: int | tuple[int, int, int], stride: int | tuple[int, int, int],
           padding: int, norm: bool = True) -> nn.Sequential:
    """Conv3d (bias only without BN) [+ BatchNorm3d] + ReLU, kaiming-normal weights (the public code's `conv3d`)."""
    conv = nn.Conv3d(c_in, c_out, kernel, stride, padding, bias=not norm)
    nn.init.kaiming_normal_(conv.weight)
    return nn.Sequential(conv, *([nn.BatchNorm3d(c_out)] if norm else []), nn.ReLU(inplace=True))


def video_stream(cfg: DiscriminatorConfig, channels: tuple[int, ...]) -> nn.Sequential:
    """(B, 3, T, S, S) -> (B, channels[-1], T_v, S/16, S/16): 4 x Conv3d k4 p1, spatial stride 2."""
    widths = (3, *channels)
    return nn.Sequential(*[conv3d(widths[i], widths[i + 1], 4, (t, 2, 2), 1, norm=i > 0)
                           for i, t in enumerate(cfg.video_time_strides)])


def audio_stream(cfg: DiscriminatorConfig, norm: bool) -> tuple[nn.Sequential, nn.Sequential]:
    """(convs, fc): (B, 1, 4T, n_mels) -> (B, C, T, M') -> flatten -> (B, audio_features). `norm`: the Linear has no
    bias and is followed by BatchNorm1d (three-stream); otherwise it has a bias (two-stream). ReLU either way."""
    strides = audio_strides(cfg.n_mels, cfg.image_size // 4)[:4]
    freq = cfg.n_mels
    for _, s in strides:
        freq //= s
    fc = nn.Linear(cfg.audio_channels[-1] * cfg.frames * freq, cfg.audio_features, bias=not norm)  # 131072 -> 256
    nn.init.kaiming_normal_(fc.weight)
    return (audio_encoder(cfg.audio_channels, strides),
            nn.Sequential(fc, *([nn.BatchNorm1d(cfg.audio_features)] if norm else []), nn.ReLU(inplace=True)))


def joint_head(cfg: DiscriminatorConfig, c_in: int) -> nn.Sequential:
    """(B, c_in, T_v, S_v, S_v) -> (B, 1, 1, 1, 1): Conv3d k3 p1 + BN + ReLU, then a conv over the whole map."""
    t_v, s_v = cfg.video_out
    score = nn.Conv3d(cfg.joint_channels, 1, (t_v, s_v, s_v))  # k(1, 4, 4) for the paper, with bias
    nn.init.kaiming_normal_(score.weight)
    return nn.Sequential(conv3d(c_in, cfg.joint_channels, 3, 1, 1), score)


def check_inputs(cfg: DiscriminatorConfig, video: torch.Tensor, audio: torch.Tensor,
                 motion: torch.Tensor | None = None) -> None:
    """Raises ValueError unless video (B, 3, T, S, S), audio (B, 1, 4T, n_mels) and, when given, motion
    (B, motion_channels, T - 1, motion_size, motion_size) match the config and each other."""
    T, S, B = cfg.frames, cfg.image_size, video.shape[0]
    if tuple(video.shape[1:]) != (3, T, S, S):
        raise ValueError(f"video must be (B, 3, {T}, {S}, {S}), got {tuple(video.shape)}")
    if tuple(audio.shape) != (B, 1, MEL_ROWS_PER_FRAME * T, cfg.n_mels):
        raise ValueError(f"audio must be (B={B}, 1, {MEL_ROWS_PER_FRAME * T}, {cfg.n_mels}), got {tuple(audio.shape)}")
    M = cfg.motion_size
    if motion is not None and tuple(motion.shape) != (B, cfg.motion_channels, T - 1, M, M):
        raise ValueError(f"motion must be (B={B}, {cfg.motion_channels}, {T - 1}, {M}, {M}), got {tuple(motion.shape)}")


class ThreeStreamDiscriminator(nn.Module):
    """The paper's full discriminator. forward(video, motion, audio) -> logits float32 (B,) (higher = real and in
    sync with the audio).

    video: float32 (B, 3, T, S, S), RGB in [-1, 1], real v or generated v-hat.
    motion: float32 (B, motion_channels, T - 1, M, M): the video's optical flow (B, 2, T-1, S/4, S/4) in pixels of
        the quarter-resolution grid (`MouthFlowNet`, `farneback_flow`), or its frame differences (B, 3, T-1, S, S)
        (`frame_differences`) with motion_channels 3 and motion_size S.
    audio: float32 (B, 1, 4T, n_mels), the log-mel window (matched, or another clip's for the mismatch negative).
    Raises ValueError on input shapes that do not match the config or each other.
    """

    def __init__(self, cfg: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.cfg = cfg
        self.video = video_stream(cfg, cfg.video_channels)  # (B, 256, T_v, S/16, S/16)
        widths = (cfg.motion_channels, *cfg.motion_widths)
        self.motion = nn.Sequential(*[conv3d(widths[i], widths[i + 1], 3, s, 1, norm=i > 0)
                                      for i, s in enumerate(cfg.motion_strides)])  # (B, 256, T_v, S/16, S/16)
        self.audio, self.audio_fc = audio_stream(cfg, norm=True)  # (B, 256)
        self.joint = joint_head(cfg, cfg.video_channels[-1] + cfg.motion_widths[-1] + cfg.audio_features)

    def forward(self, video: torch.Tensor, motion: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        check_inputs(self.cfg, video, audio, motion)
        v = self.video(video)  # (B, C_v, T_v, S_v, S_v)
        m = self.motion(motion)  # (B, C_m, T_v, S_v, S_v)
        a = self.audio_fc(self.audio(audio).flatten(1))  # (B, C, T, M') -> (B, C_a)
        a = a[:, :, None, None, None].expand(-1, -1, *v.shape[2:])  # tiled: (B, C_a, T_v, S_v, S_v)
        return self.joint(torch.cat([v, m, a], dim=1)).reshape(video.shape[0])  # (B, 1, 1, 1, 1) -> (B,)


class TwoStreamDiscriminator(nn.Module):
    """The two-stream discriminator (paper Tab. 2 (g), (h)). forward(video, audio) -> logits float32 (B,).

    video, audio: as `ThreeStreamDiscriminator`. Uses the config's video and audio fields, with the last video width
    cfg.two_stream_video_out; the motion fields are not used. Raises ValueError on mismatched input shapes.
    """

    def __init__(self, cfg: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.cfg = cfg
        self.video = video_stream(cfg, (*cfg.video_channels[:3], cfg.two_stream_video_out))  # (B, 512, T_v, S_v, S_v)
        self.audio, self.audio_fc = audio_stream(cfg, norm=False)  # (B, 256)
        self.joint = joint_head(cfg, cfg.two_stream_video_out + cfg.audio_features)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        check_inputs(self.cfg, video, audio)
        v = self.video(video)  # (B, C_v, T_v, S_v, S_v)
        a = self.audio_fc(self.audio(audio).flatten(1))  # (B, C_a)
        a = a[:, :, None, None, None].expand(-1, -1, *v.shape[2:])  # (B, C_a, T_v, S_v, S_v)
        return self.joint(torch.cat([v, a], dim=1)).reshape(video.shape[0])  # (B,)
