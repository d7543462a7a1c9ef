"""SyncNet: an audio-visual synchronisation expert (two streams embedding 0.2 s of video and of audio in one space).

Chung & Zisserman, "Out of time: automated lip sync in the wild", ACCV workshops 2016. Each stream maps a 0.2 s
window to an embedding; the Euclidean distance between the two embeddings is small when audio and video are in sync:

    video: 5 consecutive frames (25 fps)  --lip net-->   (B, embedding)
    audio: MFCC (B, 1, 13, 20): 13 coefficients x 20 frames at 100 Hz  --audio net-->  (B, embedding)

Two visual designs, chosen by `SyncNetConfig.visual`:

  "conv3d" -- the official public model `syncnet_v2` (joonson/syncnet_python `SyncNetModel.py`, class `S`): frames as
     the depth of a 3-D conv net, input (B, 3, 5, 224, 224), BGR, pixel values 0..255 (cv2 frames, no scaling), a
     224x224 crop of the face (`crop="face"`); the first conv (kernel 5x7x7) consumes the 5 frames at once:

       (B, 3, 5, 224, 224) conv3d 96 (5,7,7)/(1,2,2)   -> (B, 96, 1, 109, 109)  maxpool (1,3,3)/(1,2,2) -> 54
                           conv3d 256 (1,5,5)/(1,2,2) p1 -> 26               maxpool (1,3,3)/(1,2,2) p1 -> 13
                           conv3d 256, 256, 256 (1,3,3) p1 -> 13             maxpool (1,3,3)/(1,2,2) -> 6
                           conv3d 512 (1,6,6)           -> (B, 512, 1, 1, 1)
                           fc 512 -> 512 (BatchNorm, ReLU) -> 1024

  "conv2d" -- the paper's design: the 5 frames stacked as channels (B, 5 grey or 15 colour, H, W) into a 2-D conv net.
     Used by the project's "small" preset on the store's 64x64 mouth crops (`crop="mouth"`):

       (B, T*C, S, S) conv 5x5/2 -> S/2, conv 3x3/2 -> S/4, conv 3x3 -> S/4, conv 3x3/2 -> S/8, conv 3x3/2 -> S/16,
                      conv (S/16 x S/16) -> (B, c6, 1, 1); fc c6 -> hidden (BatchNorm, ReLU) -> embedding

The audio net is the official one for both (widths configurable):

    (B, 1, 13, 20) conv 3x3 p1 64, conv 3x3 p1 192 -> maxpool 3/(1,2) -> (11, 9)
                   conv 3x3 p1 384, 256, 256       -> maxpool 3/(2,2) -> (5, 4)
                   conv (5,4) 512                  -> (B, 512, 1, 1); fc 512 -> 512 (BatchNorm, ReLU) -> 1024

Every conv is followed by BatchNorm and ReLU. The submodules carry the official names (`netcnnaud`, `netfcaud`,
`netcnnlip`, `netfclip`) with the official layer indices, so `load_syncnet_v2` maps the published state dict onto
the "paper" preset one to one. The official weights file is a plain state dict of tensors with keys `netcnnaud.0.weight`
... (syncnet_python's `SyncNetInstance.loadParameters` copies its entries into `S.state_dict()` by name); a state dict
saved from a `SyncNetInstance` (`__S__.` prefix) or a DataParallel wrapper (`module.`) is accepted too. Its
serialisation (PyTorch's pre-1.6 format, by its age, or the zip one) is read by `torch.load(weights_only=True)`.

Inputs: `embed_video(frames)` takes uint8 RGB frames (B, T, H, W, 3) as the store holds them and converts them as
the config says (`prepare_video`: resize to `image_size`, grey / RGB / BGR, 0..255 or [-1, 1]); `embed_audio(mfcc)`
takes MFCC windows as the store holds them (B, 13, 20) (coefficients x time, c0 = log-energy of a waveform in
[-1, 1]) and adds `c0_offset` to c0: syncnet_python computes MFCC on int16 sample values, which shifts the log-energy
by 2 ln 32768 and leaves c1..c12 unchanged (the cepstra of a scaled signal differ only in the DC term, which
python_speech_features replaces with the log-energy).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.config import DictConfig

INT16_C0_OFFSET = 2.0 * math.log(32768.0)  # log-energy of int16 samples minus that of the same signal in [-1, 1]
VISUALS = ("conv3d", "conv2d")
COLORS = {"grey": 1, "rgb": 3, "bgr": 3}
PIXEL_SCALES = ("uint8", "unit")
CROPS = ("face", "mouth")


@dataclass(frozen=True)
class SyncNetConfig(DictConfig):
    """SyncNet sizes and input conventions; the defaults are the official syncnet_v2 model's ("paper" preset).

    visual: "conv3d" (syncnet_v2: frames as the depth of 3-D convs) or "conv2d" (the paper's frames-as-channels).
    color: "bgr" (syncnet_v2, cv2 frames), "rgb" or "grey" (the paper's grey mouths): channels C = 3, 3, 1.
    pixel_scale: "uint8" (float pixel values 0..255, as syncnet_v2 sees them) or "unit" ([-1, 1]).
    crop: which crop the model was trained on: "face" (syncnet_v2: the face, 224x224; the store's `face`) or
        "mouth" (the store's `mouth`). Advisory, for callers that choose the frames.
    image_size: side the frames are resized to (224). The last lip conv's kernel is the map left by the strides
        before it (6x6 at 224 for "conv3d", image_size / 16 for "conv2d", which needs a multiple of 16).
    frames: video frames per window (5). n_mfcc, mfcc_frames: the MFCC window (13 coefficients x 20 frames, 0.2 s).
    c0_offset: added to MFCC c0 before the audio net (2 ln 32768 for syncnet_v2; 0 for models trained on the store).
    audio_norm: BatchNorm over the 13 coefficients of the input (the project's models; syncnet_v2 has none).
    audio_channels: widths of the audio net's 6 convs (64, 192, 384, 256, 256, 512).
    lip_channels: widths of the lip net's 6 convs (96, 256, 256, 256, 256, 512).
    fc_hidden, embedding: the two fc layers after each conv net (512, 1024).
    """

    visual: str = "conv3d"
    color: str = "bgr"
    pixel_scale: str = "uint8"
    crop: str = "face"
    image_size: int = 224
    frames: int = 5
    n_mfcc: int = 13
    mfcc_frames: int = 20
    c0_offset: float = INT16_C0_OFFSET
    audio_norm: bool = False
    audio_channels: tuple[int, int, int, int, int, int] = (64, 192, 384, 256, 256, 512)
    lip_channels: tuple[int, int, int, int, int, int] = (96, 256, 256, 256, 256, 512)
    fc_hidden: int = 512
    embedding: int = 1024

    def __post_init__(self):
        if self.visual not in VISUALS or self.color not in COLORS or self.pixel_scale not in PIXEL_SCALES \
                or self.crop not in CROPS:
            raise ValueError(f"bad SyncNetConfig choice: visual={self.visual!r} (one of {VISUALS}), color="
                             f"{self.color!r} ({tuple(COLORS)}), pixel_scale={self.pixel_scale!r} ({PIXEL_SCALES}), "
                             f"crop={self.crop!r} ({CROPS})")
        if len(self.audio_channels) != 6 or len(self.lip_channels) != 6:
            raise ValueError("audio_channels and lip_channels need 6 widths each")
        lip_map_size(self)  # raises on an image size the lip net cannot take
        audio_map_size(self.n_mfcc, self.mfcc_frames)

    @property
    def channels(self) -> int:
        """Colour channels per frame (1 grey, 3 colour)."""
        return COLORS[self.color]

    @classmethod
    def preset(cls, name: str) -> "SyncNetConfig":
        """"paper" (alias "syncnet_v2"): the official public model (13.6 M parameters; face crops 224x224, BGR
        0..255, int16-scale MFCC), the one `load_syncnet_v2` fills.
        "small": the paper's frames-as-channels design sized for the store's 64x64 mouth crops, grey, [-1, 1],
        store-scale MFCC normalised per coefficient by BatchNorm (0.65 M parameters; ~0.12 s a step at batch 32 on
        one CPU core here).
        Raises KeyError on another name."""
        paper = cls()
        return {
            "paper": paper,
            "syncnet_v2": paper,
            "small": cls(visual="conv2d", color="grey", pixel_scale="unit", crop="mouth", image_size=64,
                         c0_offset=0.0, audio_norm=True, audio_channels=(16, 32, 64, 64, 64, 128),
                         lip_channels=(32, 48, 64, 64, 96, 128), fc_hidden=128, embedding=64),
        }[name]


def audio_map_size(n_mfcc: int, mfcc_frames: int) -> tuple[int, int]:
    """Map size before the audio net's last conv: two max-pools (3/(1,2), then 3/(2,2)) on the padded-conv maps.
    (13, 20) -> (11, 9) -> (5, 4). Raises ValueError when the window is too small."""
    h, w = (n_mfcc - 3) // 1 + 1, (mfcc_frames - 3) // 2 + 1
    h, w = (h - 3) // 2 + 1, (w - 3) // 2 + 1
    if h < 1 or w < 1:
        raise ValueError(f"MFCC window {n_mfcc}x{mfcc_frames} is too small for the audio net")
    return h, w


def lip_map_size(cfg: SyncNetConfig) -> int:
    """Map side before the lip net's last conv (its kernel): 6 for syncnet_v2 at 224, image_size / 16 for "conv2d".
    Raises ValueError when the image size does not fit the net."""
    s = cfg.image_size
    if cfg.visual == "conv2d":
        if s % 16 or s < 16:
            raise ValueError(f"conv2d lip net needs image_size a multiple of 16, got {s}")
        return s // 16
    s = (s - 7) // 2 + 1  # conv (5,7,7)/(1,2,2)
    s = (s - 3) // 2 + 1  # maxpool (1,3,3)/(1,2,2)
    s = (s + 2 - 5) // 2 + 1  # conv (1,5,5)/(1,2,2) p(0,1,1)
    s = (s + 2 - 3) // 2 + 1  # maxpool (1,3,3)/(1,2,2) p(0,1,1)
    s = (s - 3) // 2 + 1  # three 3x3 p1 convs keep s; maxpool (1,3,3)/(1,2,2)
    if s < 1:
        raise ValueError(f"conv3d lip net cannot take image_size {cfg.image_size}")
    return s


def _conv(conv: nn.Module, bn: nn.Module) -> list[nn.Module]:
    return [conv, bn, nn.ReLU(inplace=True)]


def audio_net(cfg: SyncNetConfig) -> nn.Sequential:
    """The official audio conv net (indices as `SyncNetModel.S.netcnnaud`): (B, 1, 13, 20) -> (B, c6, 1, 1)."""
    c1, c2, c3, c4, c5, c6 = cfg.audio_channels
    bn = nn.BatchNorm2d
    return nn.Sequential(
        *_conv(nn.Conv2d(1, c1, 3, 1, 1), bn(c1)),  # 0-2: (B, c1, 13, 20)
        nn.MaxPool2d(1, 1),  # 3: identity, kept for the official indices
        *_conv(nn.Conv2d(c1, c2, 3, 1, 1), bn(c2)),  # 4-6
        nn.MaxPool2d(3, (1, 2)),  # 7: (B, c2, 11, 9)
        *_conv(nn.Conv2d(c2, c3, 3, 1, 1), bn(c3)),  # 8-10
        *_conv(nn.Conv2d(c3, c4, 3, 1, 1), bn(c4)),  # 11-13
        *_conv(nn.Conv2d(c4, c5, 3, 1, 1), bn(c5)),  # 14-16
        nn.MaxPool2d(3, 2),  # 17: (B, c5, 5, 4)
        *_conv(nn.Conv2d(c5, c6, audio_map_size(cfg.n_mfcc, cfg.mfcc_frames)), bn(c6)),  # 18-20: (B, c6, 1, 1)
    )


def lip_net_3d(cfg: SyncNetConfig) -> nn.Sequential:
    """The official lip conv net (indices as `SyncNetModel.S.netcnnlip`): (B, C, 5, 224, 224) -> (B, c6, 1, 1, 1)."""
    c1, c2, c3, c4, c5, c6 = cfg.lip_channels
    bn = nn.BatchNorm3d
    return nn.Sequential(
        *_conv(nn.Conv3d(cfg.channels, c1, (cfg.frames, 7, 7), (1, 2, 2), 0), bn(c1)),  # 0-2: (B, c1, 1, 109, 109)
        nn.MaxPool3d((1, 3, 3), (1, 2, 2)),  # 3: 54
        *_conv(nn.Conv3d(c1, c2, (1, 5, 5), (1, 2, 2), (0, 1, 1)), bn(c2)),  # 4-6: 26
        nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),  # 7: 13
        *_conv(nn.Conv3d(c2, c3, (1, 3, 3), 1, (0, 1, 1)), bn(c3)),  # 8-10
        *_conv(nn.Conv3d(c3, c4, (1, 3, 3), 1, (0, 1, 1)), bn(c4)),  # 11-13
        *_conv(nn.Conv3d(c4, c5, (1, 3, 3), 1, (0, 1, 1)), bn(c5)),  # 14-16
        nn.MaxPool3d((1, 3, 3), (1, 2, 2)),  # 17: 6
        *_conv(nn.Conv3d(c5, c6, (1, lip_map_size(cfg), lip_map_size(cfg))), bn(c6)),  # 18-20: (B, c6, 1, 1, 1)
    )


def lip_net_2d(cfg: SyncNetConfig) -> nn.Sequential:
    """The paper-style lip net, frames stacked as channels: (B, T*C, S, S) -> (B, c6, 1, 1)."""
    c1, c2, c3, c4, c5, c6 = cfg.lip_channels
    bn = nn.BatchNorm2d
    return nn.Sequential(
        *_conv(nn.Conv2d(cfg.frames * cfg.channels, c1, 5, 2, 2), bn(c1)),  # (B, c1, S/2, S/2)
        *_conv(nn.Conv2d(c1, c2, 3, 2, 1), bn(c2)),  # S/4
        *_conv(nn.Conv2d(c2, c3, 3, 1, 1), bn(c3)),  # S/4
        *_conv(nn.Conv2d(c3, c4, 3, 2, 1), bn(c4)),  # S/8
        *_conv(nn.Conv2d(c4, c5, 3, 2, 1), bn(c5)),  # S/16
        *_conv(nn.Conv2d(c5, c6, lip_map_size(cfg)), bn(c6)),  # (B, c6, 1, 1)
    )


def fc_head(cfg: SyncNetConfig, width: int) -> nn.Sequential:
    """fc -> BatchNorm -> ReLU -> fc (indices as the official `netfcaud` / `netfclip`): (B, width) -> (B, embedding)."""
    return nn.Sequential(nn.Linear(width, cfg.fc_hidden), nn.BatchNorm1d(cfg.fc_hidden), nn.ReLU(),
                         nn.Linear(cfg.fc_hidden, cfg.embedding))


class SyncNet(nn.Module):
    """SyncNet (module docstring). Main entry points:

    embed_video(frames uint8 (B, T=5, H, W, 3) RGB) -> float32 (B, embedding)
    embed_audio(mfcc float32 (B, 13, 20), the store's MFCC rows transposed) -> float32 (B, embedding)
    forward(frames, mfcc) -> (video embeddings, audio embeddings); their Euclidean distance measures sync.

    Lower level, on prepared tensors as the official code feeds them: `forward_lip` ((B, C, T, S, S) float) and
    `forward_aud` ((B, 1, 13, 20) float, c0 already offset). Raises ValueError on shapes that do not fit the config.
    """

    def __init__(self, cfg: SyncNetConfig = SyncNetConfig()):
        super().__init__()
        self.cfg = cfg
        if cfg.audio_norm:
            self.audionorm = nn.BatchNorm1d(cfg.n_mfcc)  # per-coefficient normalisation of the raw MFCC
        self.netcnnaud = audio_net(cfg)
        self.netfcaud = fc_head(cfg, cfg.audio_channels[-1])
        self.netcnnlip = lip_net_3d(cfg) if cfg.visual == "conv3d" else lip_net_2d(cfg)
        self.netfclip = fc_head(cfg, cfg.lip_channels[-1])

    # -- prepared tensors ---------------------------------------------------------------------------------------
    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, n_mfcc, mfcc_frames) -> (B, embedding)."""
        cfg = self.cfg
        if x.ndim != 4 or x.shape[1:] != (1, cfg.n_mfcc, cfg.mfcc_frames):
            raise ValueError(f"audio must be (B, 1, {cfg.n_mfcc}, {cfg.mfcc_frames}), got {tuple(x.shape)}")
        if cfg.audio_norm:
            x = self.audionorm(x.squeeze(1)).unsqueeze(1)
        return self.netfcaud(self.netcnnaud(x).flatten(1))  # (B, c6, 1, 1) -> (B, c6) -> (B, embedding)

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, S, S) -> (B, embedding); the "conv2d" net stacks the T frames as channels, frame-major."""
        cfg = self.cfg
        want = (cfg.channels, cfg.frames, cfg.image_size, cfg.image_size)
        if x.ndim != 5 or x.shape[1:] != want:
            raise ValueError(f"video must be (B, {', '.join(map(str, want))}), got {tuple(x.shape)}")
        if cfg.visual == "conv2d":
            x = x.transpose(1, 2).flatten(1, 2)  # (B, T*C, S, S): frame 0's channels, then frame 1's, ...
        return self.netfclip(self.netcnnlip(x).flatten(1))

    # -- store-format inputs ------------------------------------------------------------------------------------
    def prepare_video(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 RGB (B, T, H, W, 3) -> float32 (B, C, T, S, S) as the config says (resize with antialiasing,
        colour order / grey (ITU-R 601 luma), 0..255 or [-1, 1]). Runs on the frames' device."""
        cfg = self.cfg
        if frames.ndim != 5 or frames.shape[-1] != 3 or frames.shape[1] != cfg.frames:
            raise ValueError(f"frames must be uint8 (B, {cfg.frames}, H, W, 3), got {tuple(frames.shape)}")
        B, T, H, W, _ = frames.shape
        x = frames.to(torch.float32).permute(0, 1, 4, 2, 3).reshape(B * T, 3, H, W)  # 0..255
        if (H, W) != (cfg.image_size, cfg.image_size):
            x = F.interpolate(x, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False,
                              antialias=True)
        if cfg.color == "bgr":
            x = x.flip(1)
        elif cfg.color == "grey":
            x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if cfg.pixel_scale == "unit":
            x = x / 127.5 - 1.0
        S = cfg.image_size
        return x.view(B, T, cfg.channels, S, S).transpose(1, 2).contiguous()  # (B, C, T, S, S)

    def prepare_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """float (B, 13, 20) (coefficients x time, store scale) -> (B, 1, 13, 20) with c0 offset by `c0_offset`."""
        cfg = self.cfg
        if mfcc.ndim != 3 or mfcc.shape[1:] != (cfg.n_mfcc, cfg.mfcc_frames):
            raise ValueError(f"mfcc must be (B, {cfg.n_mfcc}, {cfg.mfcc_frames}), got {tuple(mfcc.shape)}")
        x = mfcc.to(torch.float32).unsqueeze(1)
        if cfg.c0_offset:
            x = x.clone()
            x[:, :, 0] += cfg.c0_offset
        return x

    def embed_video(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 RGB (B, 5, H, W, 3) -> (B, embedding)."""
        return self.forward_lip(self.prepare_video(frames))

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """float32 (B, 13, 20) -> (B, embedding)."""
        return self.forward_aud(self.prepare_audio(mfcc))

    def forward(self, frames: torch.Tensor, mfcc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_video(frames), self.embed_audio(mfcc)


OFFICIAL_PREFIXES = ("__S__.", "module.")


def official_key(key: str) -> str:
    """An official syncnet_v2 state-dict key without the wrappers some copies carry (`__S__.`, `module.`)."""
    changed = True
    while changed:
        changed = False
        for prefix in OFFICIAL_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def load_syncnet_v2(path: Path | str, device: str | torch.device = "cpu") -> SyncNet:
    """The official syncnet_v2 weights (`syncnet_v2.model` from the syncnet_python download script) in a "paper"
    preset SyncNet, eval mode, on `device`.

    The file is read with `torch.load(weights_only=True)` (a state dict of tensors; both PyTorch's old and zip
    serialisations load). Raises ValueError when it is not loadable that way or not syncnet_v2's state dict
    (`syncnet_v2_from_state_dict`).
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:  # e.g. a pickled module or another object weights_only refuses
        raise ValueError(f"{path}: not loadable as a weights-only state dict ({e})") from e
    return syncnet_v2_from_state_dict(state, str(path)).to(device)


def syncnet_v2_from_state_dict(state: dict, source: str = "state dict") -> SyncNet:
    """A "paper" preset SyncNet (eval mode, CPU) holding syncnet_v2 weights given as a state dict.

    Keys may carry `__S__.` / `module.` prefixes, or the whole dict may sit under "state_dict"; BatchNorm
    `num_batches_tracked` entries may be missing (pre-0.4 files) and keep their defaults. Raises ValueError when
    `state` is not a dict of tensors, has keys the model lacks, lacks a parameter or running statistic, or a shape
    differs; `source` names it in the message.
    """
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source}: not a state dict of tensors")
    model = SyncNet(SyncNetConfig.preset("paper"))
    own = model.state_dict()
    mapped = OrderedDict((official_key(k), v) for k, v in state.items())
    unknown = sorted(set(mapped) - set(own))
    missing = sorted(k for k in set(own) - set(mapped) if not k.endswith("num_batches_tracked"))
    shapes = sorted(f"{k}: {tuple(v.shape)} != {tuple(own[k].shape)}" for k, v in mapped.items()
                    if k in own and v.shape != own[k].shape)
    if unknown or missing or shapes:
        raise ValueError(f"{source}: not syncnet_v2 weights (unknown keys {unknown[:5]}, missing {missing[:5]}, "
                         f"shape mismatches {shapes[:5]})")
    model.load_state_dict(mapped, strict=False)  # strict but for num_batches_tracked, checked above
    return model.eval()
