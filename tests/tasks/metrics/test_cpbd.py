"""CPBD: the default ("reference") variant against values the `cpbd` package computed on real GRID frames; edges of
known width worked out by hand for both variants; real GRID face crops blurred step by step."""
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.metrics.cpbd import VARIANTS, blur_probabilities, cpbd, edge_widths, grey

RECORDED = Path(__file__).with_name("cpbd_reference")


@pytest.fixture(scope="module")
def recorded() -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The frames and values of benchmarks/cpbd_agreement.py --record: key -> uint8 (H, W) grey, key -> package."""
    with np.load(RECORDED.with_suffix(".npz")) as f:
        frames = {k.replace("|", "/"): f[k] for k in f.files}
    return frames, json.loads(RECORDED.with_suffix(".json").read_text())["values"]


def test_reference_gives_the_packages_value_on_real_frames(recorded):
    frames, package = recorded
    assert sorted(frames) == sorted(package) and len(frames) == 98
    # full 360x288 frames and the store's three crops of the 14 bundled GRID clips
    assert {(k.split("/")[1], frames[k].shape) for k in frames} == {
        ("full", (288, 360)), ("face", (128, 128)), ("mouth", (64, 64)), ("face_sda", (128, 96))}
    ours = {k: cpbd(v) for k, v in frames.items()}
    assert max(abs(ours[k] - package[k]) for k in frames) < 1e-12
    assert len({round(v, 6) for v in package.values()}) > 80  # the frames really differ


def test_talkface_v1_stays_the_earlier_lower_rule(recorded):
    frames, package = recorded
    keys = [k for k in frames if "/full/" in k]
    ratio = np.mean([cpbd(frames[k], variant="talkface_v1") for k in keys]) / np.mean([package[k] for k in keys])
    assert 0.4 < ratio < 0.7  # full GRID frames: about 0.53 of the package (benchmarks/cpbd_agreement.py)


def rows(values: list[int], size: int = 64, at: int = 30) -> np.ndarray:
    """uint8 (size, size): every row 0 up to column `at`, then `values`, then the last value; one pixel of the
    corner set to 1, since the package measures no width at all when every gradient angle is exactly 0."""
    row = np.zeros(size)
    row[at:at + len(values)] = values
    row[at + len(values):] = values[-1]
    image = np.tile(row, (size, 1)).astype(np.uint8)
    image[0, 0] = 1
    return image


def test_reference_widths_by_hand():
    # 0, 128, 255: Sobel gx ∝ I[c+1] - I[c-1] peaks strictly at the 128 (col 31); the width counts from its two
    # neighbours outwards: left of col 30 the row is flat (1), right of col 32 too (1): w = 2, off the border rows
    widths = edge_widths(grey(rows([0, 128, 255])))
    assert set(np.unique(widths)) == {0, 2} and (widths[:, 31] == 2).sum() == 62 and (widths == 2).sum() == 62
    assert cpbd(rows([0, 128, 255])) == 1.0
    # a one-pixel step has two equal Sobel maxima, and the package's thinning keeps only strict maxima: no edge
    assert not edge_widths(grey(rows([0, 255]))).any() and cpbd(rows([0, 255])) == 0.0
    # and without the corner pixel every angle is 0: no width anywhere
    flat_angles = rows([0, 128, 255])
    flat_angles[0, 0] = 0
    assert cpbd(flat_angles) == 0.0


def test_an_edge_of_exactly_the_jnb_width_counts_as_sharp_only_in_reference():
    # 0, 40, 200, 255: gx peaks at the 200 (col 32); left of col 31 one more falling step, right of col 33 flat:
    # w = 3 = w_JNB (contrast 255 > 50), P = 1 - 1/e = 63.2 %; the package bins round(100 P) = 63 as sharp
    image = rows([0, 40, 200, 255])
    np.testing.assert_allclose(blur_probabilities(image), 1 - math.exp(-1), rtol=1e-12)
    assert cpbd(image) == 1.0
    assert cpbd(image, variant="talkface_v1") == 0.0  # P <= 0.63 is sharp: 63.2 % is not


def ramp(width: int, lo: int = 0, hi: int = 255, size: int = 64, at: int = 30) -> np.ndarray:
    """uint8 (size, size) image: `lo` up to column `at`, a linear ramp over `width` pixels, then `hi`: every row has
    one vertical edge of width `width` (local minimum at `at`, maximum at `at + width`)."""
    row = np.full(size, float(hi))
    row[:at] = lo
    row[at:at + width + 1] = lo + (hi - lo) * np.arange(width + 1) / width
    return np.round(np.tile(row, (size, 1))).astype(np.uint8)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 6])
def test_talkface_v1_edge_width_of_a_ramp(width):
    widths = edge_widths(grey(ramp(width)), "talkface_v1")
    assert set(np.unique(widths[widths > 0])) == {width}


def test_talkface_v1_sharp_and_blurred_edges_by_contrast():
    v1 = lambda image: cpbd(image, variant="talkface_v1")  # noqa: E731
    # contrast 255 > 50: w_JNB = 3, so widths 1-2 are sharp (P < 63 %) and widths >= 3 blurred
    assert [v1(ramp(w)) for w in (1, 2, 3, 4)] == [1.0, 1.0, 0.0, 0.0]
    # contrast 40 <= 50: w_JNB = 5, so width 4 is still sharp, width 5 not
    assert [v1(ramp(w, 100, 140)) for w in (4, 5)] == [1.0, 0.0]
    # P at w = 4, w_JNB = 3: 1 - exp(-(4/3)^3.6)
    np.testing.assert_allclose(blur_probabilities(ramp(4), "talkface_v1"), 1 - math.exp(-((4 / 3) ** 3.6)),
                               rtol=1e-12)


def test_talkface_v1_share_of_sharp_edges_over_two_blocks():
    # left block: a rising width-2 ramp gives one edge pixel per row (the gradient peak); right block: a falling
    # width-4 ramp (from 255, so no step where the blocks meet) gives two per row (the ends of its flat-topped
    # gradient, 128 and 127 after rounding). 64 sharp edges of 64 + 128 -> 1/3.
    image = np.concatenate([ramp(2), 255 - ramp(4)], axis=1)
    widths = edge_widths(grey(image), "talkface_v1")
    assert (widths == 2).sum() == 64 and (widths == 4).sum() == 128
    assert cpbd(image, variant="talkface_v1") == pytest.approx(1 / 3, rel=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rgb_with_equal_channels_is_grey(variant):
    image = np.concatenate([ramp(2), 255 - ramp(4)], axis=1)
    image[0, 0] = 1
    assert cpbd(np.repeat(image[..., None], 3, axis=2), variant) == cpbd(image, variant)


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_edges_scores_zero(variant):
    assert cpbd(np.full((128, 128, 3), 90, np.uint8), variant) == 0.0
    assert cpbd(ramp(2)[:32, :32], variant) == 0.0  # smaller than one 64x64 block


def test_blurring_a_real_face_lowers_it(faces):
    frame = faces[0]
    sharp = cpbd(frame)
    blurred = [cpbd(cv2.GaussianBlur(frame, (0, 0), sigma)) for sigma in (0.5, 0.7, 1.0, 2.0, 3.0)]
    assert 0.15 < sharp < 0.45  # MPEG-1 GRID face crops: the package gives 0.28 on average (recorded frames)
    # strictly lower while edges narrower than w_JNB remain, then it stays near 0 (every edge blurred)
    assert sharp > blurred[0] > blurred[1] > blurred[2] > blurred[3] >= blurred[4] >= 0.0
    assert blurred[3] < 0.01
    mean_sharp = np.mean([cpbd(f) for f in faces[::15]])
    mean_blurred = np.mean([cpbd(cv2.GaussianBlur(f, (0, 0), 0.5)) for f in faces[::15]])
    assert mean_sharp > mean_blurred


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        cpbd(np.zeros((64, 64), np.float32))
    with pytest.raises(ValueError):
        cpbd(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(ValueError, match="variant"):
        cpbd(np.zeros((64, 64), np.uint8), variant="matlab")
