"""Zheng et al. L2F: landmarks -> face, per frame.

Zheng, Zhu, Wang, Liu. "Talking Face Generation via Learning Semantic and Temporal Synchronous Landmarks", ICPR 2020,
Sec. III-B, Eq. 7-9. The paper publishes no code and few details; what it leaves open is ours ([D], see
../shared/specs/zheng2020.md Sec. 4), built from pix2pix (Isola et al. CVPR 2017; junyanz/pytorch-CycleGAN-and-pix2pix,
`models/networks.py`):

    identity face (B, 3, 128, 128) in [-1, 1]  -.
    target landmarks (B, 68, 2) --heatmaps--> (B, 68, 128, 128) in [0, 1]  --cat--> (B, 71, 128, 128)
        --UNetGenerator (pix2pix unet_128: 7 stride-2 convs to 1x1, 7 transposed convs up, skips)--> (B, 3, 128, 128)
    PatchDiscriminator(cat(frame, heatmaps)) -> (B, 1, 14, 14) logits, one per 70x70 patch

Losses (the training stage combines them as L_adv + 10 L_rec + 10 L_lip): Eq. 7 the L1 reconstruction
|f - f_hat|_1 (`F.l1_loss`), Eq. 8 the "adaptive" lip loss `lip_loss`, an L1 on a 32x64 crop that follows each frame's
lip landmarks (`crop_lips`), Eq. 9 the GAN loss [D: non-saturating BCE on the PatchGAN logits].

Coordinates: landmarks are (x, y) in pixels of the crop, pixel (i, j) (row i, column j) has its centre at
(x=j, y=i), so a pixel covers [j - 0.5, j + 0.5] x [i - 0.5, i + 0.5] (the store's dlib landmarks in crop pixels).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.config import DictConfig
from models.init import normal_init

LIPS = slice(48, 68)  # points 48-67 of the 68-point (iBUG 300-W) scheme: outer lip 48-59, inner lip 60-67


@dataclass(frozen=True)
class L2FConfig(DictConfig):
    """L2F sizes; the defaults are pix2pix's unet_128 and 70x70 PatchGAN [D], on 128x128 faces.

    image_size: side of the square face crops, pixels (the store's 128; the paper generates 256).
    n_landmarks: heatmap channels, one per landmark (68); the generator takes 3 + n_landmarks channels.
    base_filters: the U-Net's first-layer width, ngf (64); widths double per level up to 8 * ngf.
    n_down: stride-2 down-samplings of the U-Net, num_downs (7 = pix2pix unet_128: 128 -> 1); at least 5 (pix2pix's
        fixed outer four levels plus the innermost), and 2**n_down must divide image_size.
    sigma: heatmap Gaussian standard deviation, pixels at image_size (2.0) [D].
    use_dropout: pix2pix's Dropout(0.5) after the norm of the decoder blocks between the four outer levels and the
        innermost (n_down - 5 blocks: 2 in unet_128). pix2pix's training script turns it on by default (its
        `--no_dropout` flag turns it off); off here [D], the identity image and landmarks fix the output.
    d_filters: the discriminator's first-layer width, ndf (64).
    d_layers: stride-2 conv layers of the PatchGAN after the first, n_layers (3: 70x70 receptive field).
    """

    image_size: int = 128
    n_landmarks: int = 68
    base_filters: int = 64
    n_down: int = 7
    sigma: float = 2.0
    use_dropout: bool = False
    d_filters: int = 64
    d_layers: int = 3

    def __post_init__(self):
        if self.n_down < 5:
            raise ValueError(f"n_down must be >= 5 (pix2pix's UnetGenerator), got {self.n_down}")
        if self.image_size % 2 ** self.n_down:
            raise ValueError(f"image_size {self.image_size} is not divisible by 2**n_down = {2 ** self.n_down}")
        if self.image_size < 2 ** (self.d_layers + 2):
            raise ValueError(f"image_size {self.image_size} is too small for a PatchGAN of {self.d_layers} layers")

    @classmethod
    def preset(cls, name: str) -> "L2FConfig":
        """"paper": pix2pix's unet_128 and 70x70 PatchGAN (generator 41,898,627 parameters, discriminator 2,835,265;
        pix2pix's 3-channel unet_128 is 41,828,995 and its 6-channel D 2,768,705: the 68 heatmap channels add
        68 * 64 * 4 * 4 weights to the first conv of each). "small": the same structure, 8 filters at the base
        (664,147 + 53,353 parameters; a G + D training step at batch 2, 128x128, ~0.13 s on one CPU core), for CPU
        demos and tests. Raises KeyError on another name."""
        return {
            "paper": cls(),
            "small": cls(base_filters=8, d_filters=8),
        }[name]


# ----------------------------------------------------------------------------------------------------------------------
# landmark heatmaps


def landmark_heatmaps(landmarks: torch.Tensor, size: int, sigma: float,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """One Gaussian heatmap per landmark [D]: H_k(x, y) = exp(-((x - x_k)^2 + (y - y_k)^2) / (2 sigma^2)).

    landmarks: float (B, K, 2), (x, y) in pixels of the size x size map (pixel (i, j) is centred at x=j, y=i). The
        function does no rescaling: for a map at another scale than the landmarks, scale both landmarks and sigma by
        size / image_size first (L2F uses size = image_size and sigma = cfg.sigma).
    size: side of the square maps, pixels. sigma: standard deviation, pixels of the map.
    mask: bool (K,) or None; False channels are all zero (the Tab. V reference-landmark subsets), whatever their
        landmarks hold (NaN included).
    Returns float32 (B, K, size, size) in [0, 1]; the Gaussian is 1 at the landmark, so a channel's largest sampled
    value is 1 only when the landmark sits on a pixel centre. Computed separably, as the outer product of a row and
    a column Gaussian: no (B, K, size, size, 2) intermediate.
    Raises ValueError on a landmarks tensor not (B, K, 2), a mask not (K,) bool, or a sigma <= 0.
    """
    if landmarks.ndim != 3 or landmarks.shape[2] != 2:
        raise ValueError(f"landmarks must be (B, K, 2), got {tuple(landmarks.shape)}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    K = landmarks.shape[1]
    p = landmarks.float()
    grid = torch.arange(size, dtype=torch.float32, device=landmarks.device)  # (size,) pixel centres
    gx = torch.exp(-(grid - p[..., 0:1]) ** 2 / (2 * sigma ** 2))  # (B, K, W)
    gy = torch.exp(-(grid - p[..., 1:2]) ** 2 / (2 * sigma ** 2))  # (B, K, H)
    heat = gy.unsqueeze(3) * gx.unsqueeze(2)  # (B, K, H, 1) * (B, K, 1, W) -> (B, K, H, W)
    if mask is not None:
        if mask.shape != (K,) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool ({K},), got {mask.dtype} {tuple(mask.shape)}")
        heat = torch.where(mask.to(heat.device).view(1, K, 1, 1), heat, torch.zeros((), device=heat.device))
    return heat


# ----------------------------------------------------------------------------------------------------------------------
# generator: pix2pix UnetGenerator


class UNetGenerator(nn.Module):
    """pix2pix `UnetGenerator(3 + K, 3, num_downs=n_down, ngf=base_filters, norm_layer=BatchNorm2d)`, written out as
    an encoder list and a decoder list instead of pix2pix's nested `UnetSkipConnectionBlock`s: the same layers and
    order of the skip concatenation, so the parameters correspond one to one (under other names) and, given the same
    weights, the outputs are equal. With c_d = min(2**d, 8) * ngf and N = n_down:

        encoder d = 0:          Conv4x4 s2 (3+K -> c_0)                                    (no norm, no bias)
        encoder d = 1 .. N-2:   LeakyReLU(0.2), Conv4x4 s2 (c_{d-1} -> c_d), BatchNorm      (no bias)
        encoder d = N-1:        LeakyReLU(0.2), Conv4x4 s2 (c_{N-2} -> c_{N-1})              (innermost, 1x1: no norm)
        decoder d = N-1:        ReLU, ConvT4x4 s2 (c_{N-1} -> c_{N-2}), BatchNorm            (on e_{N-1})
        decoder d = N-2 .. 1:   ReLU, ConvT4x4 s2 (2 c_d -> c_{d-1}), BatchNorm [, Dropout]  (on cat(e_d, u_{d+1}))
        decoder d = 0:          ReLU, ConvT4x4 s2 (2 c_0 -> 3), Tanh                         (on cat(e_0, u_1))

    e_d, u_d: the outputs of encoder and decoder d. pix2pix's in-place LeakyReLU also rewrites the skip e_d it
    concatenates; the decoder's ReLU makes that invisible (ReLU(LeakyReLU(e)) = ReLU(e)), so the skips here are e_d.

    forward(identity float (B, 3, H, W) in [-1, 1], heatmaps float (B, K, H, W) in [0, 1]) -> float (B, 3, H, W) in
    [-1, 1], with H = W = image_size. Raises ValueError on other shapes.
    """

    def __init__(self, cfg: L2FConfig = L2FConfig()):
        super().__init__()
        self.cfg = cfg
        N, ngf = cfg.n_down, cfg.base_filters
        c = [min(2 ** d, 8) * ngf for d in range(N)]  # unet_128: 64, 128, 256, 512, 512, 512, 512

        def down(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
            layers = [nn.LeakyReLU(0.2), nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)]
            return nn.Sequential(*layers, nn.BatchNorm2d(c_out)) if norm else nn.Sequential(*layers)

        def up(c_in: int, c_out: int, dropout: bool) -> nn.Sequential:
            layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out)]
            return nn.Sequential(*layers, nn.Dropout(0.5)) if dropout else nn.Sequential(*layers)

        self.down = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3 + cfg.n_landmarks, c[0], 4, 2, 1, bias=False))]  # (B, 71, 128, 128) -> 64 x 64
            + [down(c[d - 1], c[d], norm=True) for d in range(1, N - 1)]  # -> 32, 16, 8, 4, 2 (unet_128 at 128)
            + [down(c[N - 2], c[N - 1], norm=False)]  # -> (B, 512, 1, 1)
        )
        self.up = nn.ModuleList(  # indexed by level d like `down`; applied from d = N-1 to 0
            [nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * c[0], 3, 4, 2, 1), nn.Tanh())]  # -> (B, 3, 128, 128)
            + [up(2 * c[d], c[d - 1], dropout=cfg.use_dropout and 4 <= d) for d in range(1, N - 1)]  # 2, 4, .., 64
            + [up(c[N - 1], c[N - 2], dropout=False)]  # (B, 512, 1, 1) -> (B, 512, 2, 2)
        )
        normal_init(self)  # N(0, 0.02), pix2pix's init_weights

    def forward(self, identity: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        S, K = self.cfg.image_size, self.cfg.n_landmarks
        if identity.ndim != 4 or identity.shape[1:] != (3, S, S):
            raise ValueError(f"identity must be (B, 3, {S}, {S}), got {tuple(identity.shape)}")
        if heatmaps.shape != (identity.shape[0], K, S, S):
            raise ValueError(f"heatmaps must be ({identity.shape[0]}, {K}, {S}, {S}), got {tuple(heatmaps.shape)}")
        x = torch.cat([identity, heatmaps.to(identity.dtype)], dim=1)  # (B, 3+K, S, S)
        skips = []
        for layer in self.down:  # e_d: (B, c_d, S / 2**(d+1), S / 2**(d+1)) for d = 0 .. N-1
            x = layer(x)
            skips.append(x)
        x = self.up[-1](skips.pop())  # u_{N-1}: (B, c_{N-1}, s, s) -> (B, c_{N-2}, 2s, 2s), s = S / 2**N
        for layer in reversed(self.up[:-1]):  # u_d for d = N-2 .. 0: cat(e_d, u_{d+1}) (B, 2 c_d, s, s) -> 2s x 2s
            x = layer(torch.cat([skips.pop(), x], dim=1))
        return x  # (B, 3, S, S) in [-1, 1]


# ----------------------------------------------------------------------------------------------------------------------
# discriminator: pix2pix NLayerDiscriminator, conditioned on the target landmarks


class PatchDiscriminator(nn.Module):
    """pix2pix `NLayerDiscriminator(3 + K, ndf=d_filters, n_layers=d_layers, norm_layer=BatchNorm2d)`: with
    c_n = min(2**n, 8) * ndf,

        Conv4x4 s2 (3+K -> c_0), LeakyReLU(0.2)                                   (bias, no norm)
        n = 1 .. L-1:  Conv4x4 s2 (c_{n-1} -> c_n), BatchNorm, LeakyReLU(0.2)      (no bias)
        Conv4x4 s1 (c_{L-1} -> c_L), BatchNorm, LeakyReLU(0.2)                     (no bias)
        Conv4x4 s1 (c_L -> 1)                                                      (bias): one logit per patch

    L = 3 gives 70x70 pixel patches and 14x14 logits at 128x128 (30x30 at 256). Conditional [D]: pix2pix's D reads
    cat(input, output); here it reads cat(frame, heatmaps of the target landmarks), so it judges both realism and
    whether the face follows the landmarks (the identity image is not given to D).

    forward(frame float (B, 3, H, W) in [-1, 1], heatmaps float (B, K, H, W) in [0, 1]) -> logits float (B, 1, h, w)
    (real: high), with H = W = image_size. Raises ValueError on other shapes.
    """

    def __init__(self, cfg: L2FConfig = L2FConfig()):
        super().__init__()
        self.cfg = cfg
        L, ndf = cfg.d_layers, cfg.d_filters
        c = [min(2 ** n, 8) * ndf for n in range(L + 1)]  # 64, 128, 256, 512

        def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 4, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]

        self.net = nn.Sequential(
            nn.Conv2d(3 + cfg.n_landmarks, c[0], 4, 2, 1), nn.LeakyReLU(0.2),  # (B, 71, 128, 128) -> (B, 64, 64, 64)
            *[m for n in range(1, L) for m in block(c[n - 1], c[n], stride=2)],  # -> (B, 128, 32, 32), (B, 256, 16, 16)
            *block(c[L - 1], c[L], stride=1),  # -> (B, 512, 15, 15)
            nn.Conv2d(c[L], 1, 4, 1, 1),  # -> (B, 1, 14, 14)
        )
        normal_init(self)  # N(0, 0.02), pix2pix's init_weights

    def forward(self, frame: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        S, K = self.cfg.image_size, self.cfg.n_landmarks
        if frame.ndim != 4 or frame.shape[1:] != (3, S, S):
            raise ValueError(f"frame must be (B, 3, {S}, {S}), got {tuple(frame.shape)}")
        if heatmaps.shape != (frame.shape[0], K, S, S):
            raise ValueError(f"heatmaps must be ({frame.shape[0]}, {K}, {S}, {S}), got {tuple(heatmaps.shape)}")
        return self.net(torch.cat([frame, heatmaps.to(frame.dtype)], dim=1))


# ----------------------------------------------------------------------------------------------------------------------
# Eq. 8: the adaptive lip loss


def lip_boxes(landmarks: torch.Tensor, margin: float = 0.25, aspect: float = 2.0) -> torch.Tensor:
    """The crop box of each face's lips [D]: the bounding box of points 48-67, grown on each side by `margin` times
    its own width (left and right) and height (top and bottom), so 25 % makes it 1.5x as wide and tall; then the
    shorter side is lengthened about the box centre until width / height = aspect (the 64 / 32 crop's, so resampling
    keeps the mouth's proportions). Height is at least 1 pixel, for degenerate (all-equal) lip points.

    landmarks: float (B, 68, 2), (x, y) crop pixels (pixel centres at integers). margin: fraction per side, >= 0.
    Returns float (B, 4), (x0, y0, x1, y1) in the same continuous pixel coordinates: the crop spans
    [x0, x1] x [y0, y1] edge to edge. Raises ValueError on a landmarks tensor not (B, 68, 2). Differentiable (the
    callers here detach the landmarks).
    """
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (B, 68, 2), got {tuple(landmarks.shape)}")
    lips = landmarks[:, LIPS]  # (B, 20, 2)
    lo, hi = lips.amin(dim=1), lips.amax(dim=1)  # (B, 2) each: (x_min, y_min), (x_max, y_max)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * (1 + 2 * margin)  # (B, 2)
    half_h = torch.maximum(half[:, 1], half[:, 0] / aspect).clamp(min=0.5)  # (B,)
    half = torch.stack([half_h * aspect, half_h], dim=1)  # (B, 2): (half width, half height), width / height = aspect
    return torch.cat([centre - half, centre + half], dim=1)  # (B, 4)


def crop_boxes(images: torch.Tensor, boxes: torch.Tensor, out_size: tuple[int, int] = (32, 64)) -> torch.Tensor:
    """Bilinear crop-and-resize of one box per image, differentiable w.r.t. images (and boxes).

    images: float (B, C, H, W). boxes: (B, 4), (x0, y0, x1, y1) in continuous pixel coordinates (pixel (i, j) centred
    at x=j, y=i; its edges at +-0.5). out_size: (h, w) of the crops. Output pixel (r, s) samples the image at
    x = x0 + (s + 0.5) (x1 - x0) / w, y = y0 + (r + 0.5) (y1 - y0) / h: the box's edges are the crop's edges, so a box
    of w x h pixels on pixel edges crops exactly those pixels. Samples outside the image repeat its border pixels.
    Returns (B, C, h, w), the dtype of images (sampled in float32). Raises ValueError on mismatched shapes.

    The mapping: with align_corners=False, `affine_grid` puts output pixel s at u = (2s + 1) / w - 1 and
    `grid_sample` reads normalised x_n at pixel coordinate ((x_n + 1) W - 1) / 2, i.e. x_n = (2x + 1) / W - 1. Box
    edges at u = -1, +1 means x = cx + u bw / 2, so x_n = u bw / W + (2 cx + 1) / W - 1 (cx, bw: box centre, width).
    """
    if images.ndim != 4 or boxes.shape != (images.shape[0], 4):
        raise ValueError(f"need images (B, C, H, W) and boxes (B, 4), got {tuple(images.shape)}, {tuple(boxes.shape)}")
    B, C, H, W = images.shape
    boxes = boxes.to(device=images.device, dtype=torch.float32)  # coordinates in float32 even for half images
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2  # (B,)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]  # (B,)
    zero = torch.zeros_like(cx)
    theta = torch.stack([
        torch.stack([bw / W, zero, (2 * cx + 1) / W - 1], dim=1),
        torch.stack([zero, bh / H, (2 * cy + 1) / H - 1], dim=1),
    ], dim=1)  # (B, 2, 3): output (u, v) in [-1, 1]^2 -> input normalised (x_n, y_n)
    grid = F.affine_grid(theta, [B, C, *out_size], align_corners=False)  # (B, h, w, 2)
    crops = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return crops.to(images.dtype)  # (B, C, h, w)


def crop_lips(images: torch.Tensor, landmarks: torch.Tensor, out_size: tuple[int, int] = (32, 64),
              margin: float = 0.25) -> torch.Tensor:
    """Eq. 8's Crop: the `lip_boxes` box of each image's landmarks, resampled to out_size by `crop_boxes`.

    images: float (B, C, H, W) (faces in [-1, 1]). landmarks: float (B, 68, 2), (x, y) pixels of images.
    out_size: (h, w) of the crops (32, 64). margin: see `lip_boxes`; the box's aspect is w / h.
    Returns (B, C, h, w). Gradients flow to images only: the landmarks are detached, the box says where to look and
    is not something the loss should move. Raises ValueError on bad shapes.
    """
    boxes = lip_boxes(landmarks.detach().float(), margin=margin, aspect=out_size[1] / out_size[0])  # (B, 4)
    return crop_boxes(images, boxes, out_size)


def lip_loss(fake: torch.Tensor, real: torch.Tensor, landmarks: torch.Tensor, out_size: tuple[int, int] = (32, 64),
             margin: float = 0.25) -> torch.Tensor:
    """Eq. 8, the adaptive lip loss: mean |Crop(real) - Crop(fake)| over batch, channels and crop pixels, both
    cropped at the same box from each frame's landmarks (the predicted ones the frame was generated from).

    fake, real: float (B, 3, H, W). landmarks: float (B, 68, 2) pixels of the frames (detached, see `crop_lips`).
    Returns a 0-dim float tensor (image units: 2 is the range of [-1, 1] images). Raises ValueError on shapes that
    differ between fake and real, or bad landmarks.
    """
    if fake.shape != real.shape:
        raise ValueError(f"fake and real must have one shape, got {tuple(fake.shape)}, {tuple(real.shape)}")
    return F.l1_loss(crop_lips(fake, landmarks, out_size, margin), crop_lips(real, landmarks, out_size, margin))
