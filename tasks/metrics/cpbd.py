"""CPBD, the no-reference sharpness metric of Narvekar & Karam: "A No-Reference Image Blur Metric Based on the
Cumulative Probability of Blur Detection (CPBD)", IEEE Trans. Image Processing 20(9), 2011 (first presented at
QoMEX 2009); the edge width is Marziliano et al.'s ("A no-reference perceptual blur metric", ICIP 2002). Used by
Chen et al. 2018 (GRID 0.175) and Vougioukas et al. 2019 (GRID 0.268) to score generated frames. Higher is sharper.

Two variants (`cpbd(image, variant=...)`), written here; neither imports the PyPI `cpbd` package (not freely
licensed; benchmarks/cpbd_agreement.py runs it in a separate environment to record reference values):

- "reference" (default): the algorithm as the `cpbd` package 1.0.x computes it (the Python port of the authors'
  MATLAB code that the published evaluation scripts call; its `cpbd-py312` 1.0.3 fork behaves the same), rule for
  rule, so that the numbers compare with the papers'. On 275 real GRID / CREMA-D / LRW frames, full frames and
  face and mouth crops, it gives the package's value exactly (benchmarks/cpbd_agreement.py;
  tests/tasks/metrics/test_cpbd.py checks 98 recorded ones).
- "talkface_v1": the project's earlier reading of the paper, kept for comparison. It scores real GRID full frames at
  0.53 of the package, face crops at 0.40, mouth crops at 0.17.

Steps and where the variants differ:

1. Grey image (uint8 RGB via cv2.COLOR_RGB2GRAY, BT.601; the evaluation scripts read files with PIL's "L", the same
   weights, which can differ by one grey level), float64 0–255; 64×64 blocks, whole blocks only (both).
2. Edge blocks: more than 0.2 % of the block's pixels (9 of 4096) are Canny edge pixels.
   reference: scikit-image's `canny` with its defaults on the 0–255 image, as the package calls it: σ = 1,
   hysteresis thresholds 0.1 and 0.2 grey levels (10 % / 20 % of a float image's nominal maximum 1), so nearly
   every gradient ridge counts. talkface_v1: MATLAB's `edge(I, 'canny')` defaults (σ = √2, high threshold at the
   70th percentile of the gradient magnitude, low = 0.4 × high).
3. Edge pixels whose width is measured, from the horizontal Sobel gradient gx (vertical edges):
   reference: gx normalised by 1/8 (weights 1, 2, 1 over 8), border replicated; the *squared* strength gx² is set
   to 0 where gx² ≤ 2·RMS(gx) (the package compares the squared strength with a threshold on the unsquared scale,
   where Octave's `edge(I, 'sobel')` compares gx² with 4·mean(gx²): a much lower threshold on real frames); then
   "simple thinning": a pixel is an edge if its (thresholded) gx² is strictly above both horizontal neighbours, or
   strictly above both vertical neighbours, with 0 outside the image. talkface_v1: |gx| > 2·RMS(gx) (MATLAB's
   default) and a local maximum along the row only (not below either neighbour, above one).
4. Gradient direction: reference: angle = atan2(gy, gx) in degrees from `np.gradient` (central differences), taken
   as 0 where gx = 0 (also where gy ≠ 0), quantised to multiples of 45° with round-half-to-even; only pixels
   quantised to 0° (rising left to right) or ±180° (falling) get a width, and only away from the image border
   (rows and columns 1 … H−2, W−2). If every angle of the image is exactly 0 before quantising (no pixel has a
   gradient other than pointing straight right), no width is measured at all and the image scores 0.
   talkface_v1: |gy| ≤ tan 22.5°·|gx|, any pixel with a left and a right neighbour.
5. Edge width w (pixels, Marziliano): reference: width = left + right, where for a rising edge at column c "left"
   is 1 + the number of further strictly falling steps going left *from column c − 1* and "right" 1 + the strictly
   rising steps going right from c + 1 (each capped at 101), mirrored for a falling edge; so w ≥ 2 and the steps
   between c − 1, c and c + 1 count whatever they are (the width origin is the two neighbours, not the edge pixel).
   talkface_v1: the ends of the strictly monotonic run through column c itself; w = 0 (flat) skipped.
6. Just-noticeable-blur width from the block contrast C = max − min (whole grey levels): w_JNB = 5
   if C ≤ 50, else 3 (both); P = 1 − exp(−|w / w_JNB|^β), β = 3.6 (both).
7. CPBD: reference: the histogram of round(100·P) over 101 bins 0…100 (round half to even), normalised by the
   number of edges, summed over bins 0…63, i.e. edges with round(100·P) ≤ 63: an edge of width exactly w_JNB
   (P = 63.2 %) counts as *not* blurred. talkface_v1: P ≤ 0.63, so w = w_JNB counts as blurred.

Measured effect (benchmarks/cpbd_agreement.py, 275 frames), the mean ratio to the package with one step at a time
switched from talkface_v1 to reference: talkface_v1 0.40; step 2 alone 0.40; steps 3–5 alone 0.45; step 7 alone
0.98. The decision rule of step 7 is nearly the whole difference: at integer widths, most edges are exactly w_JNB.

No edge: an image without an edge block (flat, or smaller than 64×64) or without a measured width scores 0.0, as the
package returns (its normalised histogram is all zeros).
"""
from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np
from scipy import ndimage
from skimage.feature import canny

Variant = Literal["reference", "talkface_v1"]
VARIANTS: tuple[str, ...] = ("reference", "talkface_v1")

BLOCK = 64  # block side, pixels
EDGE_BLOCK_FRACTION = 0.002  # an edge block has more than 0.2 % edge pixels
CONTRAST_SPLIT = 50  # grey levels: w_JNB = 5 at contrast <= 50, else 3
BETA = 3.6
P_JNB = 0.63  # talkface_v1: P <= P_JNB is sharp
HISTOGRAM_BINS = 101  # reference: bins of round(100 P), 0..100
SHARP_BINS = 64  # reference: bins 0..63 are sharp
MAX_STEPS = 100  # reference: a width side counts at most 1 + 100 steps
# talkface_v1
CANNY_SIGMA = math.sqrt(2.0)
CANNY_HIGH_PERCENTILE = 70.0
CANNY_LOW_RATIO = 0.4
TAN_22_5 = math.tan(math.radians(22.5))


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


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


# ---------------------------------------------------------------------------------------------------- edge blocks
def canny_edges(image: np.ndarray, variant: Variant = "reference") -> np.ndarray:
    """Canny edge map bool (H, W) of a float64 grey image (H, W) in 0–255 (step 2).

    reference: `skimage.feature.canny(image)` with its defaults on the 0–255 values (σ = 1, thresholds 0.1 / 0.2),
    as the cpbd package 1.0.x calls it. talkface_v1: MATLAB's default rule (σ = √2, high threshold at the 70th
    percentile of the smoothed gradient magnitude, low = 0.4 × high) on the image scaled to 0–1."""
    _check_variant(variant)
    if variant == "reference":
        return canny(image)
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


# --------------------------------------------------------------------------------------------- width edge pixels
def sobel_edges(image: np.ndarray) -> np.ndarray:
    """reference step 3: vertical-edge map bool (H, W) of a float64 grey image (H, W), as the cpbd package 1.0.x
    computes it (its port of Octave's `edge(I, 'sobel')`): gx = horizontal Sobel / 8 (replicated border), strength
    gx² zeroed where gx² ≤ 2·RMS(gx), then simple thinning (strictly above both horizontal or both vertical
    neighbours, 0 outside the image)."""
    gx = ndimage.sobel(image, axis=1, mode="nearest") / 8.0  # exact: integer sums over a power of two
    strength = gx * gx
    strength[strength <= 2.0 * np.sqrt(np.mean(strength))] = 0.0
    padded = np.pad(strength, 1)
    centre = padded[1:-1, 1:-1]
    horizontal = (centre > padded[1:-1, :-2]) & (centre > padded[1:-1, 2:])
    vertical = (centre > padded[:-2, 1:-1]) & (centre > padded[2:, 1:-1])
    return horizontal | vertical


def gradient_angles(image: np.ndarray) -> np.ndarray:
    """reference step 4: gradient angle float64 (H, W) in degrees, in [-180, 180], of a float64 grey image (H, W), as
    the cpbd package 1.0.x computes it: atan2(gy, gx) from `np.gradient` (central differences), 0 where gx = 0."""
    gy, gx = np.gradient(image)
    return np.where(gx != 0, np.arctan2(gy, gx) * (180.0 / math.pi), 0.0)


def quantised_angles(angles: np.ndarray) -> np.ndarray:
    """Angles float64 (H, W) in degrees → the nearest multiple of 45° (half to even), as the cpbd package does."""
    return 45.0 * np.round(angles / 45.0)


def _run_lengths(rows: np.ndarray, step: int, rising: bool) -> np.ndarray:
    """int (H, W): for every column c of rows float (H, W), how many strictly monotonic steps follow it in direction
    `step` (+1 right, -1 left): rising = each next value above the last, else each below."""
    h, w = rows.shape
    out = np.zeros((h, w), np.intp)
    columns = range(w - 2, -1, -1) if step > 0 else range(1, w)
    for c in columns:
        nxt = rows[:, c + step]
        going_on = nxt > rows[:, c] if rising else nxt < rows[:, c]
        out[:, c] = np.where(going_on, out[:, c + step] + 1, 0)
    return out


def reference_widths(image: np.ndarray) -> np.ndarray:
    """reference steps 3–5: Marziliano edge widths float64 (H, W) in pixels of a float64 grey image (H, W), 0 where
    no width is measured, as the cpbd package 1.0.x computes them: at the Sobel edge pixels (`sobel_edges`) off the
    border whose angle is 0° (rising: 1 + falling steps left of c − 1, + 1 + rising steps right of c + 1) or ±180°
    (mirrored), each side capped at 1 + 100; none at all when every angle is 0."""
    h, w = image.shape
    widths = np.zeros((h, w))
    raw = gradient_angles(image)
    if not raw.any() or h < 3 or w < 3:  # the package tests the angles before quantising them
        return widths
    angles = quantised_angles(raw)
    inner = np.zeros((h, w), bool)
    inner[1:-1, 1:-1] = True
    edges = sobel_edges(image) & inner
    # side lengths at column c: left counts from c - 1, right from c + 1
    falling_left = _run_lengths(image, -1, rising=False)  # going left, values keep falling (rising edge)
    rising_right = _run_lengths(image, +1, rising=True)
    rising_left = _run_lengths(image, -1, rising=True)  # going left, values keep rising (falling edge)
    falling_right = _run_lengths(image, +1, rising=False)

    def sides(left_runs: np.ndarray, right_runs: np.ndarray) -> np.ndarray:
        out = np.zeros((h, w))
        out[:, 1:-1] = (np.minimum(left_runs[:, :-2], MAX_STEPS) + 1) + (np.minimum(right_runs[:, 2:], MAX_STEPS) + 1)
        return out

    rising = edges & (angles == 0)
    falling = edges & (np.abs(angles) == 180)
    widths[rising] = sides(falling_left, rising_right)[rising]
    widths[falling] = sides(rising_left, falling_right)[falling]
    return widths


def talkface_v1_widths(image: np.ndarray) -> np.ndarray:
    """talkface_v1 steps 3–5: Marziliano edge widths float64 (H, W) of a float64 grey image (H, W): at pixels with
    |gx| > 2·RMS(gx), a row-wise local maximum of |gx|, gradient within 22.5° of horizontal, the length of the
    strictly monotonic run through the pixel; 0 elsewhere."""
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
    # the run through column c: a rising edge keeps rising to the right and falling to the left, a falling one mirrored
    rising_width = _run_lengths(image, +1, rising=True) + _run_lengths(image, -1, rising=False)
    falling_width = _run_lengths(image, +1, rising=False) + _run_lengths(image, -1, rising=True)
    width = np.where(gx > 0, rising_width, falling_width).astype(np.float64)
    return np.where(edges, width, 0.0)


def edge_widths(image: np.ndarray, variant: Variant = "reference") -> np.ndarray:
    """Edge widths float64 (H, W) in pixels of a float64 grey image (H, W) in 0–255, 0 where no width is measured
    (steps 3–5 of the variant). Raises ValueError on an unknown variant."""
    _check_variant(variant)
    return reference_widths(image) if variant == "reference" else talkface_v1_widths(image)


# ---------------------------------------------------------------------------------------------------- the score
def jnb_width(contrast: float) -> float:
    """Just-noticeable-blur width, pixels, of a block of contrast `contrast` grey levels (step 6)."""
    return 5.0 if contrast <= CONTRAST_SPLIT else 3.0


def block_probabilities(image: np.ndarray, widths: np.ndarray, canny_map: np.ndarray) -> np.ndarray:
    """Step 6 for either variant: P(blur detection) float64 (E,) of the measured edges (`widths` > 0, pixels) in the
    edge blocks (more than 0.2 % of `canny_map` set) of a float64 grey image (H, W) 0–255, block by block in
    row-major order; w_JNB from each block's contrast, truncated to whole grey levels (the grey levels are
    integers, so both variants' contrast is)."""
    probabilities = []
    for top in range(0, image.shape[0] - BLOCK + 1, BLOCK):
        for left in range(0, image.shape[1] - BLOCK + 1, BLOCK):
            block = (slice(top, top + BLOCK), slice(left, left + BLOCK))
            if np.count_nonzero(canny_map[block]) <= EDGE_BLOCK_FRACTION * BLOCK * BLOCK:
                continue
            w = widths[block][widths[block] > 0]
            w_jnb = jnb_width(float(int(image[block].max() - image[block].min())))
            probabilities.append(1.0 - np.exp(-np.abs(w / w_jnb) ** BETA))
    return np.concatenate(probabilities) if probabilities else np.zeros(0)


def blur_probabilities(image: np.ndarray, variant: Variant = "reference") -> np.ndarray:
    """P(blur detection) float64 (E,) of every measured edge pixel in the edge blocks of a uint8 grey or RGB image
    (steps 1–6), block by block in row-major block order. Raises ValueError as `grey` does, or on an unknown
    variant."""
    _check_variant(variant)
    g = grey(image)
    return block_probabilities(g, edge_widths(g, variant), canny_edges(g, variant))


def sharp_share(probabilities: np.ndarray, variant: Variant = "reference") -> float:
    """CPBD float in [0, 1] from the blur probabilities float64 (E,) of step 6 (step 7): reference, the histogram of
    round(100·P) (half to even) over bins 0–100 normalised by E, summed over bins 0–63; talkface_v1, the share with
    P ≤ 0.63. 0.0 for no edge."""
    _check_variant(variant)
    if probabilities.size == 0:
        return 0.0
    if variant == "talkface_v1":
        return float(np.mean(probabilities <= P_JNB))
    buckets = np.round(probabilities * 100.0).astype(np.intp)
    histogram = np.bincount(buckets, minlength=HISTOGRAM_BINS) / probabilities.size
    return float(np.sum(histogram[:SHARP_BINS]))


def cpbd(image: np.ndarray, variant: Variant = "reference") -> float:
    """CPBD sharpness of one image, float in [0, 1] (higher is sharper): the share of edges not detected as blurred
    (Narvekar & Karam 2011). image: uint8 (H, W) grey or (H, W, 3) RGB; only whole 64×64 blocks are used, so an
    image smaller than that, or without edges, scores 0.0. variant: "reference" (the cpbd package 1.0.x's rules,
    what the published numbers use) or "talkface_v1" (the project's earlier reading of the paper); see the module
    docstring. Raises ValueError on another dtype/shape or an unknown variant."""
    _check_variant(variant)
    return sharp_share(blur_probabilities(image, variant), variant)
