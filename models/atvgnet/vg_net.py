"""ATVGnet VG-net (MMCRNN): landmarks + one example face -> talking-face frames.

Chen, Maddox, Duan, Xu. "Hierarchical Cross-Modal Talking Face Generation with Dynamic Pixel-Wise Loss", CVPR 2019,
Sec. 3.2 (multi-modal convolutional RNN, MMCRNN) and Sec. 3.3 (dynamically adjustable pixel-wise attention, Eq. 3),
following the layer layout of the authors' public code (lelechen63/ATVGnet, `code/models.py` class `VG_net`). Sizes
below are the "paper" preset (ngf = 64, image 128, f = image / 16 = 8):

    example face  I* (B, 3, 128, 128) --image encoder 1--> (B, 128, 32, 32) = skip s --image encoder 2--> (B, 512, 8, 8)
    landmarks p_t (B, T, 136), example p* (B, 136)
        each --Linear(136, 64) + ReLU, reshape--> (1, 8, 8) --conv 1->256--> l (256, 8, 8) --conv 256->512--> L (512, 8, 8)
    feature difference  L_t - L*                                               (B, T, 512, 8, 8)
    bottleneck          conv(cat[image features, L_t - L*]) 1024 -> 128        (B, T, 128, 8, 8)
    ConvGRU (k 3, dilation 2, 512 hidden) over t                               (B, T, 512, 8, 8)
    residual decoder    9 ResNet blocks (512) + 2 up-convolutions              (B*T, 128, 32, 32) = v_t
    landmark attention  a_t = sigmoid(up-convs(cat[l_t, l*]))                   (B*T, 1, 32, 32)
    skip fusion         s * (1 - a_t) + v_t * a_t                               (B*T, 128, 32, 32)
    2 up-convolutions                                                          (B*T, 32, 128, 128)
    heads (one conv7)   motion m_t = tanh(3 channels), attention alpha_t = sigmoid(1 channel)
    output (Eq. 3)      frame_t = alpha_t * m_t + (1 - alpha_t) * I*            (B, T, 3, 128, 128) in [-1, 1]

Ablation switches (paper Table 3): `use_dma=False` drops the attention channel of the head and outputs m_t directly
(the returned attention is then all ones, the blend weight actually used); `use_mmcrnn=False` replaces the ConvGRU by
a per-frame conv (128 -> 512, same output width) so every frame is decoded on its own, with no temporal recurrence.

Differences from the public code, all deliberate:
- frames are encoded and decoded as one batch of B*T (the original loops over t): same maths, except BatchNorm batch
  statistics in training mode are over B*T frames instead of B (so in training mode frames see each other's
  statistics; in eval mode frame t depends only on landmarks 0..t);
- the two output heads are one conv with 4 channels (3 motion + 1 attention): identical maths, one full-resolution
  pass less;
- the ConvGRU is written out here (zero initial state, one layer) with the authors' gate arithmetic: the
  `convolutional_rnn` package's `Conv2dGRU` (`code/convolutional_rnn/functional.py`, `GRUCell`, built in
  `code/models.py` line 256 with kernel 3, dilation 2, dropout 0.5), whose reset gate multiplies the hidden-side
  convolution's output, bias included, as `torch.nn.GRU` does. Their `Conv2dGRU` is built without
  `batch_first=True` but fed (B, T, ...) tensors, so it recurs over the batch, not over time (at inference, B = 1,
  every frame is one step from a zero state); talkface recurs over time, as the paper's Sec. 3.2 says. Its dropout
  0.5 acts only between layers, so it has no effect with one layer and is omitted;
- the landmark attention's two transposed convolutions keep their bias, as the authors' `lmark_att` (models.py lines
  212-220), so the released `generator_23.pth` maps onto this module key for key (`models.atvgnet.authors_keys`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from models.config import DictConfig

N_LANDMARK_COORDS = 136  # 68 dlib points x (x, y), flattened (x0, y0, x1, y1, ...), normalised to about [-1, 1]


@dataclass(frozen=True)
class VGNetConfig(DictConfig):
    """VG-net sizes and ablation switches; the defaults are the paper's ("paper" preset).

    image_size: side of the square face crop (128); must be divisible by 16 (four stride-2 stages).
    n_landmarks: landmark coordinates per frame (136 = 68 points x 2).
    ngf: base width; encoder widths are (ngf, ngf, 2 ngf, 4 ngf, 8 ngf) = (64, 64, 128, 256, 512), the landmark
        branch has 4 ngf (256) then 8 ngf (512) channels, the ConvGRU 8 ngf hidden channels.
    bottleneck_channels: ConvGRU input channels (128).
    n_res_blocks: ResNet blocks at the start of the decoder (9).
    dropout: dropout inside each ResNet block (0.5, as the public code's `use_dropout=True`).
    gru_dilation: dilation of the ConvGRU's 3x3 convolutions (2).
    head_kernel: kernel of the two full-resolution output convolutions (7); odd.
    use_dma: dynamic pixel-wise attention (Eq. 3). False: frames = motion m, no attention head.
    use_mmcrnn: the ConvGRU over time. False: each frame decoded on its own (per-frame conv instead).
    """

    image_size: int = 128
    n_landmarks: int = N_LANDMARK_COORDS
    ngf: int = 64
    bottleneck_channels: int = 128
    n_res_blocks: int = 9
    dropout: float = 0.5
    gru_dilation: int = 2
    head_kernel: int = 7
    use_dma: bool = True
    use_mmcrnn: bool = True

    def __post_init__(self):
        if self.image_size % 16:
            raise ValueError(f"image_size must be divisible by 16, got {self.image_size}")
        if self.head_kernel % 2 == 0 or self.ngf < 2 or self.ngf % 2:
            raise ValueError(f"head_kernel must be odd and ngf even >= 2, got {self.head_kernel}, {self.ngf}")

    @property
    def feature_size(self) -> int:
        """Side of the deepest feature map (image_size / 16 = 8)."""
        return self.image_size // 16

    @classmethod
    def preset(cls, name: str) -> "VGNetConfig":
        """"paper": the published sizes (58,355,781 parameters, as the authors'
        `VG_net`; decoder ResNet blocks 44.0 M, ConvGRU 8.85 M).
        "small": the same structure, ngf 8, bottleneck 16, 2 ResNet blocks, no dropout, 3x3 heads (0.41 M
        parameters), for CPU demos and tests: one generator + discriminator step (small presets, Adam, batch 2,
        T 16) took 0.35-0.6 s with `torch.set_num_threads(1)` on a shared 2-core machine (3-5 s with 2 threads
        there: the busy cores made the thread pool wait). Both keep the ablation switches on.
        Raises KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(ngf=8, bottleneck_channels=16, n_res_blocks=2, dropout=0.0, head_kernel=3),
        }[name]


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """kernel x kernel conv (no bias: BatchNorm follows), BatchNorm, ReLU; "same" padding, so H, W / stride
    (the public code's `ops.conv2d`)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def up_bn_relu(c_in: int, c_out: int, bias: bool = False) -> nn.Sequential:
    """3x3 transposed conv, stride 2 (H, W -> 2H, 2W), BatchNorm, ReLU; `bias` as the authors' layer has it (their
    landmark attention's keeps one, the decoder's do not)."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1, bias=bias), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class ResnetBlock(nn.Module):
    """x + (conv3 BN ReLU [dropout] conv3 BN)(x); (N, C, H, W) -> (N, C, H, W). Zero padding, no conv bias."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(inplace=True),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), nn.BatchNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ConvGRU(nn.Module):
    """One-layer convolutional GRU (Shi et al. 2015 / Ballas et al. 2016 style), zero initial state, recurring over T.

    forward(x (B, T, C_in, H, W)) -> hidden states (B, T, C_h, H, W). With r, z, n the reset, update, new gates and
    every * a 3x3 convolution with the given dilation and "same" zero padding:
        r = sigmoid(W_xr * x_t + b_xr + W_hr * h + b_hr),  z = sigmoid(W_xz * x_t + b_xz + W_hz * h + b_hz),
        n = tanh(W_xn * x_t + b_xn + r . (W_hn * h + b_hn)),  h' = (1 - z) . n + z . h
    the authors' cell (lelechen63/ATVGnet `code/convolutional_rnn/functional.py`, `GRUCell`: `newgate = tanh(i_n +
    resetgate * h_n)`, `hy = newgate + inputgate * (hidden - newgate)`) and `torch.nn.GRU`'s equations. conv_x and
    conv_h hold their `weight_ih_l0, bias_ih_l0` and `weight_hh_l0, bias_hh_l0`, gates stacked (r, z, n). The
    input-side convolution runs on all T steps at once; only the hidden-side one runs step by step.
    """

    def __init__(self, c_in: int, c_hidden: int, dilation: int = 1):
        super().__init__()
        self.c_hidden = c_hidden
        self.conv_x = nn.Conv2d(c_in, 3 * c_hidden, 3, 1, dilation, dilation)  # x -> (r, z, n) parts, with bias
        self.conv_h = nn.Conv2d(c_hidden, 3 * c_hidden, 3, 1, dilation, dilation)  # h -> (r, z, n) parts, with bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C, H, W = x.shape
        gx = self.conv_x(x.reshape(B * T, C, H, W)).view(B, T, 3 * self.c_hidden, H, W)  # (B, T, 3 C_h, H, W)
        h = x.new_zeros(B, self.c_hidden, H, W)  # (B, C_h, H, W)
        out = []
        for t in range(T):
            x_r, x_z, x_n = gx[:, t].chunk(3, dim=1)  # 3 x (B, C_h, H, W)
            h_r, h_z, h_n = self.conv_h(h).chunk(3, dim=1)  # 3 x (B, C_h, H, W), biases included
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)  # reset after the hidden convolution
            h = (1 - z) * n + z * h
            out.append(h)
        return torch.stack(out, dim=1)  # (B, T, C_h, H, W)


class VGNet(nn.Module):
    """VG-net. forward(example_face, landmarks, example_landmarks) -> (frames, attention).

    example_face: float32 (B, 3, S, S), RGB in [-1, 1] (S = cfg.image_size, 128).
    landmarks: float32 (B, T, 136), the target landmarks per frame, 68 (x, y) points flattened in the normalised
        coordinates of `storage.landmark_pca.normalise` (crop pixels / S * 2 - 1).
    example_landmarks: float32 (B, 136), the example face's landmarks, same coordinates.
    Returns frames float32 (B, T, 3, S, S) in [-1, 1] and attention alpha float32 (B, T, 1, S, S) in [0, 1]
    (all ones when cfg.use_dma is False). T is free (training uses 16). See `forward_all` for the intermediates.
    Raises ValueError on input shapes that do not match the config or each other.
    """

    def __init__(self, cfg: VGNetConfig = VGNetConfig()):
        super().__init__()
        self.cfg = cfg
        g, f = cfg.ngf, cfg.feature_size
        self.image_encoder1 = nn.Sequential(
            nn.ReflectionPad2d(3),  # (B, 3, S+6, S+6)
            nn.Conv2d(3, g, 7, bias=False), nn.BatchNorm2d(g), nn.ReLU(inplace=True),  # (B, g, S, S)
            conv_bn_relu(g, g, stride=2),  # (B, g, S/2, S/2)
            conv_bn_relu(g, 2 * g, stride=2),  # (B, 2g, S/4, S/4) = skip s
        )
        self.image_encoder2 = nn.Sequential(
            conv_bn_relu(2 * g, 4 * g, stride=2),  # (B, 4g, S/8, S/8)
            conv_bn_relu(4 * g, 8 * g, stride=2),  # (B, 8g, f, f)
        )
        self.landmark_fc = nn.Sequential(nn.Linear(cfg.n_landmarks, f * f), nn.ReLU(inplace=True))  # (N, f*f)
        self.landmark_conv1 = conv_bn_relu(1, 4 * g)  # (N, 1, f, f) -> (N, 4g, f, f) = l
        self.landmark_conv2 = conv_bn_relu(4 * g, 8 * g)  # (N, 4g, f, f) -> (N, 8g, f, f) = L
        self.landmark_attention = nn.Sequential(
            up_bn_relu(8 * g, 4 * g, bias=True),  # cat[l_t, l*] (N, 8g, f, f) -> (N, 4g, 2f, 2f)
            up_bn_relu(4 * g, 2 * g, bias=True),  # (N, 2g, 4f, 4f) = (N, 2g, S/4, S/4)
            nn.Conv2d(2 * g, 1, 3, 1, 1),  # (N, 1, S/4, S/4); sigmoid in forward
        )
        self.bottleneck = conv_bn_relu(16 * g, cfg.bottleneck_channels)  # (N, 16g, f, f) -> (N, c_b, f, f)
        if cfg.use_mmcrnn:
            self.temporal = ConvGRU(cfg.bottleneck_channels, 8 * g, cfg.gru_dilation)  # (B, T, 8g, f, f)
        else:
            self.temporal = conv_bn_relu(cfg.bottleneck_channels, 8 * g)  # per frame: (N, c_b, f, f) -> (N, 8g, f, f)
        self.decoder1 = nn.Sequential(
            *[ResnetBlock(8 * g, cfg.dropout) for _ in range(cfg.n_res_blocks)],  # (N, 8g, f, f)
            up_bn_relu(8 * g, 4 * g),  # (N, 4g, 2f, 2f)
            up_bn_relu(4 * g, 2 * g),  # (N, 2g, S/4, S/4) = v
        )
        self.decoder2 = nn.Sequential(
            up_bn_relu(2 * g, g),  # (N, g, S/2, S/2)
            up_bn_relu(g, g // 2),  # (N, g/2, S, S)
        )
        # both heads in one conv (the same maths as two convs, one pass less at full resolution): channels 0-2 are
        # the motion m (tanh), channel 3 the attention alpha (sigmoid), absent without DMA
        k = cfg.head_kernel
        self.head = nn.Conv2d(g // 2, 4 if cfg.use_dma else 3, k, 1, k // 2)  # (N, 4 or 3, S, S)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # as the public code's initialize_weights(init_type="normal", gain=0.02) (vgnet.py applies it to VG_net)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    def _check(self, example_face: torch.Tensor, landmarks: torch.Tensor, example_landmarks: torch.Tensor) -> None:
        cfg, S = self.cfg, self.cfg.image_size
        if example_face.ndim != 4 or tuple(example_face.shape[1:]) != (3, S, S):
            raise ValueError(f"example_face must be (B, 3, {S}, {S}), got {tuple(example_face.shape)}")
        B = example_face.shape[0]
        if landmarks.ndim != 3 or landmarks.shape[0] != B or landmarks.shape[2] != cfg.n_landmarks or landmarks.shape[1] < 1:
            raise ValueError(f"landmarks must be (B={B}, T, {cfg.n_landmarks}), got {tuple(landmarks.shape)}")
        if tuple(example_landmarks.shape) != (B, cfg.n_landmarks):
            raise ValueError(f"example_landmarks must be (B={B}, {cfg.n_landmarks}), got {tuple(example_landmarks.shape)}")

    def _encode_landmarks(self, lmk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 136) -> l (N, 4g, f, f), L (N, 8g, f, f)."""
        f = self.cfg.feature_size
        l1 = self.landmark_conv1(self.landmark_fc(lmk).view(-1, 1, f, f))  # (N, 64) -> (N, 1, 8, 8) -> (N, 4g, 8, 8)
        return l1, self.landmark_conv2(l1)  # (N, 8g, 8, 8)

    def forward_all(self, example_face: torch.Tensor, landmarks: torch.Tensor,
                    example_landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Like `forward`, returning a dict: "frames" (B, T, 3, S, S), "attention" alpha (B, T, 1, S, S),
        "motion" m (B, T, 3, S, S) in [-1, 1], "landmark_attention" a (B, T, 1, S/4, S/4) in [0, 1]."""
        self._check(example_face, landmarks, example_landmarks)
        B, T, _ = landmarks.shape
        S, f = self.cfg.image_size, self.cfg.feature_size

        skip = self.image_encoder1(example_face)  # (B, 2g, S/4, S/4)
        image_feature = self.image_encoder2(skip)  # (B, 8g, f, f)
        ex_l1, ex_L = self._encode_landmarks(example_landmarks)  # (B, 4g, f, f), (B, 8g, f, f)
        l1, L = self._encode_landmarks(landmarks.reshape(B * T, -1))  # (B*T, 4g, f, f), (B*T, 8g, f, f)

        def per_frame(x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B*T, C, H, W), repeated over T
            return x.unsqueeze(1).expand(B, T, *x.shape[1:]).reshape(B * T, *x.shape[1:])

        lmark_att = torch.sigmoid(self.landmark_attention(torch.cat([l1, per_frame(ex_l1)], dim=1)))  # (B*T, 1, S/4, S/4)
        diff = L - per_frame(ex_L)  # (B*T, 8g, f, f): feature difference to the example
        x = self.bottleneck(torch.cat([per_frame(image_feature), diff], dim=1))  # (B*T, c_b, f, f)
        if self.cfg.use_mmcrnn:
            x = self.temporal(x.view(B, T, *x.shape[1:])).flatten(0, 1)  # (B, T, c_b, f, f) -> (B*T, 8g, f, f)
        else:
            x = self.temporal(x)  # (B*T, 8g, f, f)
        v = self.decoder1(x)  # (B*T, 2g, S/4, S/4)
        fused = per_frame(skip) * (1 - lmark_att) + v * lmark_att  # (B*T, 2g, S/4, S/4)
        base = self.decoder2(fused)  # (B*T, g/2, S, S)
        head = self.head(base)  # (B*T, 4 or 3, S, S)
        motion = torch.tanh(head[:, :3]).view(B, T, 3, S, S)  # (B, T, 3, S, S)
        if self.cfg.use_dma:
            attention = torch.sigmoid(head[:, 3:]).view(B, T, 1, S, S)  # (B, T, 1, S, S)
            frames = attention * motion + (1 - attention) * example_face.unsqueeze(1)  # Eq. 3, (B, T, 3, S, S)
        else:
            attention = motion.new_ones(B, T, 1, S, S)  # the blend weight used: frames = motion
            frames = motion
        return {"frames": frames, "attention": attention, "motion": motion,
                "landmark_attention": lmark_att.view(B, T, 1, S // 4, S // 4)}

    def forward(self, example_face: torch.Tensor, landmarks: torch.Tensor,
                example_landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.forward_all(example_face, landmarks, example_landmarks)
        return out["frames"], out["attention"]
