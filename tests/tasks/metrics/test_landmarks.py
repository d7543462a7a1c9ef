"""LMD on the real landmarks of a GRID clip, against displacements whose distance is known by hand."""
import numpy as np
import pytest

from tasks.landmark_eval import landmark_distance
from tasks.metrics.landmarks import MOUTH, lmd, lmd_per_frame


@pytest.fixture(scope="module")
def real(grid_clips):
    return grid_clips["s1/bbaf2n"].landmarks.astype(np.float64)  # (75, 68, 2) crop pixels


def test_a_global_shift_costs_nothing(real):
    assert lmd(real + [3.0, -7.0], real) == pytest.approx(0.0, abs=1e-9)
    assert lmd(real + [3.0, -7.0], real, reduce="sum") == pytest.approx(0.0, abs=1e-9)


def test_one_moved_mouth_point(real):
    pred = real.copy()
    pred[:, 60] += [4.0, 0.0]  # one of 20 points moves 4 px: centring moves the others by 4/20 the other way
    # distances: 4 * 19/20 for the moved point, 4/20 for each of the 19 others -> sum 7.6, mean 0.38
    np.testing.assert_allclose(lmd_per_frame(pred, real), 0.38, rtol=1e-9)
    np.testing.assert_allclose(lmd_per_frame(pred, real, reduce="sum"), 7.6, rtol=1e-9)
    assert lmd(pred, real) == pytest.approx(0.38, rel=1e-9)


def test_lower_lip_drop(real):
    pred = real.copy()
    lower = [55, 56, 57, 58, 59]  # k = 5 outer lower-lip points move 2 px down
    pred[:, lower] += [0.0, 2.0]
    # moved points are off by 2(1 - k/20), the 15 others by 2k/20: mean = k(20 - k)/100 = 0.75
    assert lmd(pred, real) == pytest.approx(0.75, rel=1e-9)
    assert lmd(pred, real, reduce="sum") == pytest.approx(15.0, rel=1e-9)
    assert lmd(pred, real, points=slice(48, 68)) == lmd(pred, real, points=MOUTH)
    # on all 68 points the 5 moved points are a smaller share: 2 * 5 * 63 / 68^2 per point on average
    assert lmd(pred, real, points=range(68)) == pytest.approx(2 * 2 * 5 * 63 / 68**2, rel=1e-9)


def test_landmark_eval_uses_the_same_function(real):
    pred = real[::-1].copy()  # a different frame's mouth for every frame
    np.testing.assert_allclose(landmark_distance(pred, real), lmd_per_frame(pred, real), rtol=1e-12)
    np.testing.assert_allclose(lmd(pred, real, reduce="sum"), 20 * lmd(pred, real), rtol=1e-12)
    assert 0 < lmd(pred, real) < 10  # a few pixels on 128-pixel crops


def test_rejects_bad_input(real):
    with pytest.raises(ValueError):
        lmd(real[:, :60], real[:, :60])
    with pytest.raises(ValueError):
        lmd(real, real[:-1])
    with pytest.raises(ValueError):
        lmd(real, real, reduce="median")
    with pytest.raises(ValueError):
        lmd(real, real, points=[48, 68])
