"""Frame reconstruction metrics: PSNR and SSIM of generated frames against the identically cropped ground truth.

Two forms of each (DESIGN "Metrics": where the papers' code differs from what they describe, offer both and say which
is which):

- `psnr`, `ssim` (the default, the definitions): computed in float64 on the RGB frames with the uint8 range
  (data_range 255), no resizing. PSNR = 10·log10(255² / MSE) with the MSE over all pixels and channels; SSIM is
  Wang et al. 2004 (11×11 Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03, population covariances), per channel,
  averaged over the three channels — scikit-image's `structural_similarity` with the settings its documentation
  gives for matching Wang et al.
- `psnr_paper_uint8`, `ssim_paper` (paper-compatible): what the public ATVGnet evaluation script
  (lelechen63/ATVGnet, `evaluation_matrix.py`, `compare_ssim` and `psnr_f`; Chen et al. CVPR 2019) computes, so that
  numbers can be compared with the published ones (ATVGnet GRID PSNR 32.15, SSIM 0.83). Both frames are first resized
  to 256×256 with `cv2.INTER_AREA` (the script does; `resize_to=None` skips it). PSNR is then taken on the grey
  frames (`cv2.cvtColor` to grey, as the script's BGR2GRAY on `cv2.imread` images) with the squared error computed
  on uint8 arrays, which wraps modulo 256 twice: d = (generated − real) mod 256, e = d² mod 256, MSE = mean(e);
  an MSE of 0 gives 100 dB. A difference of 16 grey levels thus counts as no error (16² = 256 ≡ 0), and 20 as
  144 (400 mod 256). SSIM uses scikit-image's defaults as the script's `compare_ssim(..., multichannel=True)` did:
  7×7 uniform window, sample covariances (N − 1), per channel, averaged.

All functions take uint8 frames (N, H, W, 3) or one frame (H, W, 3), RGB, generated and real of the same shape,
and return `FrameScores`: the per-frame values float64 (N,) and their mean (PSNR in dB, SSIM unitless in [-1, 1]).
A generated frame equal to its real frame has a default PSNR of +inf (and so has the mean).
They raise ValueError when the arrays are not uint8, not (N, H, W, 3) / (H, W, 3), or differ in shape.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.metrics import structural_similarity

DATA_RANGE = 255.0
PAPER_SIZE = 256  # the ATVGnet script resizes both frames to 256×256 (cv2.INTER_AREA) before PSNR and SSIM
PAPER_IDENTICAL_DB = 100.0  # the script's PSNR when the MSE is 0


@dataclass(frozen=True)
class FrameScores:
    """A metric per frame, float64 (N,), and its mean over the frames."""

    per_frame: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_frame))


def as_frames(generated: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of uint8 RGB frame arrays and return both as (N, H, W, 3).

    Raises ValueError on another dtype, another shape than (N, H, W, 3) or (H, W, 3), or different shapes.
    """
    generated, real = np.asarray(generated), np.asarray(real)
    if generated.dtype != np.uint8 or real.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {generated.dtype} and {real.dtype}")
    if generated.shape != real.shape:
        raise ValueError(f"generated and real frames differ in shape: {generated.shape} vs {real.shape}")
    if generated.ndim == 3:
        generated, real = generated[None], real[None]
    if generated.ndim != 4 or generated.shape[-1] != 3 or generated.shape[0] == 0:
        raise ValueError(f"frames must be (N, H, W, 3) with N >= 1 or (H, W, 3), got {generated.shape}")
    return generated, real


def psnr(generated: np.ndarray, real: np.ndarray, data_range: float = DATA_RANGE) -> FrameScores:
    """Peak signal-to-noise ratio per frame, dB: 10·log10(data_range² / MSE), MSE over all pixels and channels in
    float64 (no uint8 wrap-around). Identical frames give +inf. Frames: uint8 (N, H, W, 3) or (H, W, 3)."""
    generated, real = as_frames(generated, real)
    diff = generated.astype(np.float64) - real.astype(np.float64)
    mse = np.mean(diff * diff, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return FrameScores(10.0 * np.log10(data_range**2 / mse))


def ssim(generated: np.ndarray, real: np.ndarray, data_range: float = DATA_RANGE) -> FrameScores:
    """Structural similarity per frame (Wang et al., IEEE TIP 2004, eq. 13 with their 11×11 Gaussian window,
    σ = 1.5, K1 = 0.01, K2 = 0.03), computed per RGB channel in float64 and averaged over channels. Frames:
    uint8 (N, H, W, 3) or (H, W, 3), at least 11×11 pixels (ValueError otherwise)."""
    generated, real = as_frames(generated, real)
    if min(generated.shape[1:3]) < 11:
        raise ValueError(f"SSIM's 11x11 window needs frames of at least 11x11 pixels, got {generated.shape[1:3]}")
    return FrameScores(np.array([
        structural_similarity(g, r, data_range=data_range, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for g, r in zip(generated, real)
    ]))


def resize_like_paper(frames: np.ndarray, size: int | None = PAPER_SIZE) -> np.ndarray:
    """uint8 (N, H, W, 3) → uint8 (N, size, size, 3) resized with cv2.INTER_AREA, as the ATVGnet script does;
    `size=None` returns the frames unchanged."""
    if size is None:
        return frames
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def psnr_paper_uint8(generated: np.ndarray, real: np.ndarray, resize_to: int | None = PAPER_SIZE) -> FrameScores:
    """PSNR as the public ATVGnet evaluation script computes it (paper-compatible, NOT the definition; use `psnr`).

    Per frame: both frames resized to `resize_to`² (cv2.INTER_AREA; None skips it), converted to grey
    (cv2.COLOR_RGB2GRAY), then, on uint8 arithmetic as the script's `np.mean((img1 - img2) ** 2)` does,
    e = ((generated − real) mod 256)² mod 256 and MSE = mean(e); PSNR = 20·log10(255 / √MSE), or 100 dB when
    MSE = 0. Frames: uint8 (N, H, W, 3) or (H, W, 3), RGB. Returns dB per frame and their mean.
    """
    generated, real = as_frames(generated, real)
    generated, real = resize_like_paper(generated, resize_to), resize_like_paper(real, resize_to)
    out = np.empty(len(generated))
    for t, (g, r) in enumerate(zip(generated, real)):
        g, r = cv2.cvtColor(g, cv2.COLOR_RGB2GRAY), cv2.cvtColor(r, cv2.COLOR_RGB2GRAY)
        d = (g.astype(np.int64) - r.astype(np.int64)) % 256  # uint8 subtraction wraps
        mse = np.mean((d * d) % 256)  # uint8 squaring wraps too
        out[t] = PAPER_IDENTICAL_DB if mse == 0 else 20.0 * np.log10(DATA_RANGE / np.sqrt(mse))
    return FrameScores(out)


def ssim_paper(generated: np.ndarray, real: np.ndarray, resize_to: int | None = PAPER_SIZE) -> FrameScores:
    """SSIM as the public ATVGnet evaluation script computes it (paper-compatible; the default is `ssim`).

    Per frame: both frames resized to `resize_to`² (cv2.INTER_AREA; None skips it), then scikit-image's SSIM with
    the defaults the script's `compare_ssim(fake, real, multichannel=True)` used: 7×7 uniform window, sample
    covariances, K1 = 0.01, K2 = 0.03, data range 255 (uint8), per channel, averaged. Frames: uint8 (N, H, W, 3) or
    (H, W, 3), at least 7×7 after resizing (ValueError otherwise).
    """
    generated, real = as_frames(generated, real)
    generated, real = resize_like_paper(generated, resize_to), resize_like_paper(real, resize_to)
    if min(generated.shape[1:3]) < 7:
        raise ValueError(f"SSIM's 7x7 window needs frames of at least 7x7 pixels, got {generated.shape[1:3]}")
    return FrameScores(np.array([
        structural_similarity(g, r, data_range=DATA_RANGE, channel_axis=-1, win_size=7, gaussian_weights=False,
                              use_sample_covariance=True)
        for g, r in zip(generated, real)
    ]))
