"""CPBD: edges of known width, worked out by hand, then real GRID face crops blurred step by step."""
import math

import cv2
import numpy as np
import pytest

from tasks.metrics.cpbd import blur_probabilities, cpbd, edge_widths, grey


def ramp(width: int, lo: int = 0, hi: int = 255, size: int = 64, at: int = 30) -> np.ndarray:
    """uint8 (size, size) image: `lo` up to column `at`, a linear ramp over `width` pixels, then `hi`: every row has
    one vertical edge of width `width` (local minimum at `at`, maximum at `at + width`)."""
    row = np.full(size, float(hi))
    row[:at] = lo
    row[at:at + width + 1] = lo + (hi - lo) * np.arange(width + 1) / width
    return np.round(np.tile(row, (size, 1))).astype(np.uint8)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 6])
def test_edge_width_of_a_ramp(width):
    widths = edge_widths(grey(ramp(width)))
    assert set(np.unique(widths[widths > 0])) == {width}


def test_sharp_and_blurred_edges_by_contrast():
    # contrast 255 > 50: w_JNB = 3, so widths 1-2 are sharp (P < 63 %) and widths >= 3 blurred
    assert [cpbd(ramp(w)) for w in (1, 2, 3, 4)] == [1.0, 1.0, 0.0, 0.0]
    # contrast 40 <= 50: w_JNB = 5, so width 4 is still sharp, width 5 not
    assert [cpbd(ramp(w, 100, 140)) for w in (4, 5)] == [1.0, 0.0]
    # P at w = 4, w_JNB = 3: 1 - exp(-(4/3)^3.6)
    np.testing.assert_allclose(blur_probabilities(ramp(4)), 1 - math.exp(-((4 / 3) ** 3.6)), rtol=1e-12)


def test_share_of_sharp_edges_over_two_blocks():
    # left block: a rising width-2 ramp gives one edge pixel per row (the gradient peak); right block: a falling
    # width-4 ramp (from 255, so no step where the blocks meet) gives two per row (the ends of its flat-topped
    # gradient, 128 and 127 after rounding). 64 sharp edges of 64 + 128 -> 1/3.
    image = np.concatenate([ramp(2), 255 - ramp(4)], axis=1)
    widths = edge_widths(grey(image))
    assert (widths == 2).sum() == 64 and (widths == 4).sum() == 128
    assert cpbd(image) == pytest.approx(1 / 3, rel=1e-12)
    assert cpbd(np.repeat(image[..., None], 3, axis=2)) == cpbd(image)  # RGB with equal channels = grey


def test_no_edges_scores_zero():
    assert cpbd(np.full((128, 128, 3), 90, np.uint8)) == 0.0
    assert cpbd(ramp(2)[:32, :32]) == 0.0  # smaller than one 64x64 block


def test_blurring_a_real_face_lowers_it(faces):
    frame = faces[0]
    sharp = cpbd(frame)
    blurred = [cpbd(cv2.GaussianBlur(frame, (0, 0), sigma)) for sigma in (0.5, 0.7, 1.0, 2.0, 3.0)]
    assert 0.05 < sharp < 0.5  # MPEG-1 GRID frames at 360x288 are soft: most edges are 3 px or wider
    # strictly lower while edges narrower than w_JNB remain, then it stays at 0 (every edge blurred)
    assert sharp > blurred[0] > blurred[1] > blurred[2] >= blurred[3] >= blurred[4] >= 0.0
    mean_sharp = np.mean([cpbd(f) for f in faces[::15]])
    mean_blurred = np.mean([cpbd(cv2.GaussianBlur(f, (0, 0), 0.5)) for f in faces[::15]])
    assert mean_sharp > mean_blurred


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        cpbd(np.zeros((64, 64), np.float32))
    with pytest.raises(ValueError):
        cpbd(np.zeros((64, 64, 4), np.uint8))
