"""CPBD, the no-reference sharpness metric of Narvekar & Karam: "A No-Reference Image Blur Metric Based on the
Cumulative Probability of Blur Detection (CPBD)", IEEE Trans. Image Processing 20(9), 2011 (first presented at
QoMEX 2009). Written here from the paper (the PyPI `cpbd` package is broken and not freely licensed); used by
Chen et al. 2018 (GRID 0.175) and Vougioukas et al. 2019 (GRID 0.268) to score generated frames. Higher is sharper.

Steps (the edge width is Marziliano et al.'s, "A no-reference perceptual blur metric", ICIP 2002):

1. Grey image; split into 64×64 blocks (only whole blocks; a remainder at the right or bottom is not used).
2. Edge blocks: blocks in which more than 0.2 % of the pixels are Canny edge pixels (Canny with MATLAB's default
   rule for `edge(I, 'canny')`: σ = √2, high threshold at the 70th percentile of the gradient magnitude, low
   threshold 0.4 × high; the CPBD code in the ATVGnet evaluation script also uses Canny here).
3. Edge pixels for widths: vertical edges found with the horizontal Sobel gradient gx (as Marziliano et al.), kept
   where |gx| exceeds 2·RMS(gx) over the image (the threshold MATLAB's `edge(I, 'sobel')` picks by default) and is
   a local maximum along the row (not below either horizontal neighbour and above at least one), and where the
   gradient points within 22.5° of horizontal (|gy| ≤ tan 22.5°·|gx|), so that measuring along the row follows it.
4. Edge width w (pixels): along the row, from the local extremum on one side of the edge pixel to the local extremum
   on the other — for a rising edge, from where the intensity stops falling to the left to where it stops rising to
   the right (strict monotonic runs); mirrored for a falling edge. Edge pixels whose own row is flat there (w = 0)
   are skipped.
5. Just-noticeable-blur width of the block from its contrast C = max − min grey level: w_JNB = 5 if C ≤ 50, else 3.
6. Probability of detecting blur at each edge: P = 1 − exp(−|w / w_JNB|^β), β = 3.6.
7. CPBD = the share of edges with P ≤ P_JNB = 63 % (the cumulative probability of blur detection at P_JNB). For
   integer widths this is the share of edges narrower than w_JNB: P(w = w_JNB) = 1 − e⁻¹ = 63.2 % is just above it.

An image without any edge block or edge pixel has no measurable edge and scores 0.0 (as the CPBD code in the
ATVGnet evaluation script does).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage
from skimage.feature import canny

BLOCK = 64  # block side, pixels
EDGE_BLOCK_FRACTION = 0.002  # an edge block has more than 0.2 % edge pixels
CONTRAST_SPLIT = 50  # grey levels: w_JNB = 5 at contrast <= 50, else 3
BETA = 3.6
P_JNB = 0.63
CANNY_SIGMA = math.sqrt(2.0)
CANNY_HIGH_PERCENTILE = 70.0
CANNY_LOW_RATIO = 0.4
TAN_22_5 = math.tan(math.radians(22.5))


def grey(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) grey or (H, W, 3) RGB → float64 (H, W) grey levels 0–255 (RGB via cv2.COLOR_RGB2GRAY, BT.601).
    Raises ValueError on another dtype or shape."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    if image.ndim != 2:
        raise ValueError(f"image must be (H, W) or (H, W, 3), got {image.shape}")
    return image.astype(np.float64)


def canny_edges(image: np.ndarray) -> np.ndarray:
    """Canny edge map bool (H, W) of a float grey image (H, W) in 0–255, with MATLAB's default rule: σ = √2,
    high threshold = 70th percentile of the smoothed gradient magnitude, low = 0.4 × high (step 2)."""
    scaled = image / 255.0
    smoothed = ndimage.gaussian_filter(scaled, CANNY_SIGMA, mode="nearest")
    magnitude = np.hypot(ndimage.sobel(smoothed, axis=0), ndimage.sobel(smoothed, axis=1))
    high = float(np.percentile(magnitude, CANNY_HIGH_PERCENTILE))
    if high <= 0.0:  # mostly flat image: any non-zero gradient maximum is an edge
        high = float(magnitude[magnitude > 0].min()) if (magnitude > 0).any() else np.inf
    if not np.isfinite(high):
        return np.zeros(image.shape, bool)
    return canny(scaled, sigma=CANNY_SIGMA, low_threshold=CANNY_LOW_RATIO * high, high_threshold=high,
                 mode="nearest")


def _run_ends(rows: np.ndarray, step: int, rising: bool) -> np.ndarray:
    """For every pixel, the column where the strictly monotonic run through it ends in direction `step` (+1 right,
    -1 left): going right a rising run continues while I[c+1] > I[c]; going left while I[c-1] < I[c]. rows: (H, W)."""
    h, w = rows.shape
    out = np.empty((h, w), np.intp)
    columns = range(w - 1, -1, -1) if step > 0 else range(w)
    for c in columns:
        nxt = c + step
        if not 0 <= nxt < w:
            out[:, c] = c
            continue
        going_on = rows[:, nxt] > rows[:, c] if rising == (step > 0) else rows[:, nxt] < rows[:, c]
        out[:, c] = np.where(going_on, out[:, nxt], c)
    return out


def edge_widths(image: np.ndarray) -> np.ndarray:
    """Marziliano edge widths float64 (H, W) of a float grey image (H, W): the width in pixels at each vertical edge
    pixel (steps 3–4), 0 elsewhere."""
    gx = ndimage.sobel(image, axis=1, mode="nearest")
    gy = ndimage.sobel(image, axis=0, mode="nearest")
    mag = np.abs(gx)
    threshold = 2.0 * math.sqrt(float(np.mean(gx * gx)))
    left, right = mag[:, :-2], mag[:, 2:]
    centre = mag[:, 1:-1]
    local_max = (centre >= left) & (centre >= right) & ((centre > left) | (centre > right))
    edges = np.zeros(image.shape, bool)
    edges[:, 1:-1] = local_max & (centre > threshold)
    edges &= np.abs(gy) <= TAN_22_5 * mag
    rising_width = _run_ends(image, +1, rising=True) - _run_ends(image, -1, rising=True)
    falling_width = _run_ends(image, +1, rising=False) - _run_ends(image, -1, rising=False)
    width = np.where(gx > 0, rising_width, falling_width).astype(np.float64)
    return np.where(edges, width, 0.0)


def jnb_width(contrast: float) -> float:
    """Just-noticeable-blur width, pixels, of a block of contrast `contrast` grey levels (step 5)."""
    return 5.0 if contrast <= CONTRAST_SPLIT else 3.0


def blur_probabilities(image: np.ndarray) -> np.ndarray:
    """P(blur detection) float64 (E,) of every edge pixel in the edge blocks of a uint8 grey or RGB image (steps 1–6).
    Raises ValueError as `grey` does."""
    g = grey(image)
    widths = edge_widths(g)
    canny_map = canny_edges(g)
    probabilities = []
    for top in range(0, g.shape[0] - BLOCK + 1, BLOCK):
        for left in range(0, g.shape[1] - BLOCK + 1, BLOCK):
            block = (slice(top, top + BLOCK), slice(left, left + BLOCK))
            if canny_map[block].sum() <= EDGE_BLOCK_FRACTION * BLOCK * BLOCK:
                continue
            w = widths[block]
            w = w[w > 0]
            w_jnb = jnb_width(float(g[block].max() - g[block].min()))
            probabilities.append(1.0 - np.exp(-np.abs(w / w_jnb) ** BETA))
    return np.concatenate(probabilities) if probabilities else np.zeros(0)


def cpbd(image: np.ndarray) -> float:
    """CPBD sharpness of one image, float in [0, 1] (higher is sharper): the share of edges whose probability of blur
    detection is at most P_JNB = 63 % (Narvekar & Karam 2011). image: uint8 (H, W) grey or (H, W, 3) RGB of
    at least 64×64 pixels for any block to count; 0.0 when it has no edge. Raises ValueError on another dtype/shape."""
    p = blur_probabilities(image)
    return float(np.mean(p <= P_JNB)) if p.size else 0.0
