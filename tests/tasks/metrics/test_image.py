"""PSNR and SSIM on a 16×16 crop of a real GRID face, against values worked out by hand, in both the default form and
the paper-compatible (ATVGnet script) form."""
import math

import numpy as np
import pytest

from tasks.metrics.image import psnr, psnr_paper_uint8, ssim, ssim_paper


@pytest.fixture(scope="module")
def crop(faces):
    c = faces[0, 56:72, 56:72]  # 16x16 RGB around the nose
    assert 1 <= c.min() and c.max() <= 235  # room for the offsets below (-1 .. +20) without clipping
    return c


def shifted(frame, k):
    return (frame.astype(np.int16) + k).astype(np.uint8)


def test_psnr_of_a_one_level_error(crop):
    # MSE = 1 in every form: 20 log10(255) dB; a difference of -1 wraps to 255 in uint8, and 255^2 = 1 mod 256
    expected = 20 * math.log10(255)
    assert psnr(shifted(crop, 1), crop).mean == pytest.approx(48.1308036, abs=1e-6)
    assert psnr(shifted(crop, 1), crop).mean == pytest.approx(expected, rel=1e-12)
    assert psnr_paper_uint8(shifted(crop, 1), crop).mean == pytest.approx(expected, rel=1e-12)
    assert psnr_paper_uint8(shifted(crop, -1), crop).mean == pytest.approx(expected, rel=1e-12)


def test_paper_mode_wraps_modulo_256(crop):
    # 16 levels: MSE 256 -> 24.05 dB; the script's uint8 square wraps 256 to 0 -> its "identical" 100 dB
    assert psnr(shifted(crop, 16), crop).mean == pytest.approx(20 * math.log10(255 / 16), rel=1e-12)
    assert psnr_paper_uint8(shifted(crop, 16), crop).mean == 100.0
    # 20 levels: 400 = 144 mod 256 -> sqrt = 12
    assert psnr(shifted(crop, 20), crop).mean == pytest.approx(20 * math.log10(255 / 20), rel=1e-12)
    assert psnr_paper_uint8(shifted(crop, 20), crop).mean == pytest.approx(20 * math.log10(255 / 12), rel=1e-12)
    assert psnr_paper_uint8(shifted(crop, 20), crop, resize_to=None).mean == pytest.approx(
        20 * math.log10(255 / 12), rel=1e-12)


def test_per_frame_values_and_mean(crop):
    generated = np.stack([shifted(crop, 1), shifted(crop, 2), crop])
    real = np.stack([crop, crop, crop])
    scores = psnr(generated, real)
    expected = [20 * math.log10(255), 20 * math.log10(255 / 2), math.inf]
    np.testing.assert_allclose(scores.per_frame, expected, rtol=1e-12)
    assert scores.mean == math.inf  # an identical frame has infinite PSNR
    np.testing.assert_allclose(psnr(generated[:2], real[:2]).mean, np.mean(expected[:2]), rtol=1e-12)
    np.testing.assert_allclose(psnr_paper_uint8(generated, real).per_frame, [*expected[:2], 100.0], rtol=1e-12)
    # half the pixels off by 2 in every channel, the rest exact: MSE = 2
    half = crop.copy()
    half[:8] = shifted(crop[:8], 2)
    assert psnr(half, crop).mean == pytest.approx(10 * math.log10(255**2 / 2), rel=1e-12)


def test_ssim_of_identical_and_of_uniform_frames(crop):
    assert ssim(crop, crop).mean == pytest.approx(1.0, abs=1e-12)
    assert ssim_paper(crop, crop).mean == pytest.approx(1.0, abs=1e-12)
    # two uniform frames a, b: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 255)^2
    a, b = np.full_like(crop, 100), np.full_like(crop, 110)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(b, a).mean == pytest.approx(expected, rel=1e-9)
    assert ssim_paper(b, a).mean == pytest.approx(expected, rel=1e-9)


def test_forms_differ_on_real_frames(faces):
    generated, real = faces[1:6], faces[:5]  # the next frame as a "prediction"
    for default, paper in ((psnr, psnr_paper_uint8), (ssim, ssim_paper)):
        d, p = default(generated, real), paper(generated, real)
        assert d.per_frame.shape == p.per_frame.shape == (5,)
        assert np.isfinite(d.per_frame).all() and d.mean != p.mean
    assert 0.9 < ssim(generated, real).mean < 1.0 and 0.9 < ssim_paper(generated, real).mean < 1.0
    assert 30 < psnr(generated, real).mean < 60


def test_rejects_malformed_frames(crop):
    with pytest.raises(ValueError):
        psnr(crop.astype(np.float32), crop.astype(np.float32))
    with pytest.raises(ValueError):
        ssim(crop, crop[:-1])
    with pytest.raises(ValueError):
        psnr_paper_uint8(crop[..., 0], crop[..., 0])
    with pytest.raises(ValueError):
        ssim(crop[:8, :8], crop[:8, :8])  # smaller than the 11x11 window
