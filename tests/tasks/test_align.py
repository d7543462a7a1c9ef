"""Alignment: template geometry, similarity fitting, smoothing, crops on a real clip."""
from __future__ import annotations

import numpy as np

from tasks import align, media
from tasks.face import FaceTracker


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 300, (18, 2)).astype(np.float32)
    angle, scale, shift = 0.2, 0.45, np.array([12.0, -7.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = align.similarity(src, src @ rot.T + shift)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-4)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-3)


def test_batched_similarity_equals_scikit_image_per_frame():
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 300, (40, 18, 2))
    src[7] = src[7] * [-1, 1]  # a mirrored frame: the best similarity must still not reflect
    dst = align.TEMPLATE * 128
    batch = align.similarity_batch(src, dst)
    np.testing.assert_allclose(batch, np.stack([align.similarity(p, dst) for p in src]), rtol=1e-4, atol=1e-3)


def test_smoothing_reduces_jitter_and_keeps_the_mean():
    rng = np.random.default_rng(1)
    points = (100 + rng.normal(0, 2, (60, 18, 2))).astype(np.float32)
    smooth = align.smooth(points, 7)
    assert smooth.std(0).mean() < points.std(0).mean() / 2
    np.testing.assert_allclose(smooth.mean(), points.mean(), atol=0.1)


def test_interpolate_missing_fills_gaps_linearly():
    lm = np.zeros((5, 68, 2), np.float32)
    lm[:, :, 0] = np.arange(5)[:, None] * 10
    lm[2] = np.nan
    np.testing.assert_allclose(align.interpolate_missing(lm)[2, :, 0], 20)


def test_crops_of_a_real_clip(sample_clip):
    frames = media.decode(sample_clip).frames[:25]
    lm_src = FaceTracker().track(frames).landmarks
    transform = align.face_transforms(lm_src, 128)
    lm = align.apply(transform, lm_src)
    # the alignment points land on the template (within a few pixels), the whole face inside the crop
    assert np.abs(lm[:, align.ALIGN_POINTS] - align.TEMPLATE * 128).mean() < 3
    assert lm.min() > 0 and lm.max() < 128
    mouth_t = align.mouth_transforms(transform, lm, 64)
    mouth_pts = align.apply(mouth_t, lm_src)[:, align.MOUTH_POINTS]
    # mouth points centred in the 64×64 crop, their larger extent 1/1.3 of its side
    extent = (mouth_pts.max(1) - mouth_pts.min(1)).max(1)
    np.testing.assert_allclose(extent, 64 / 1.3, rtol=1e-3)
    assert (mouth_pts.min(1) >= 0).all() and (mouth_pts.max(1) <= 64).all()
    faces = align.warp(frames, transform, 128)
    assert faces.shape == (25, 128, 128, 3) and faces.dtype == np.uint8
    # skin, not border: the centre of the crop (nose) is bright and not black
    assert faces[:, 54:74, 54:74].mean() > 60


def test_face_sda_crop_of_a_real_clip(sample_clip):
    frames = media.decode(sample_clip).frames[:25]
    lm_src = FaceTracker().track(frames).landmarks
    transform = align.crop_transforms("face_sda", (128, 96), lm_src)
    lm = align.apply(transform, lm_src)
    # the stable points 33, 36, 39, 42, 45 land on the mean face; the face fits the 96-px width; the mouth is in the
    # lower half (rows 64–127), the eyes in the upper (Vougioukas et al.: reconstruction on the lower half)
    assert np.abs(lm[:, list(align.SDA_POINTS)] - align.sda_template((128, 96))).mean() < 3
    assert lm[..., 0].min() > 0 and lm[..., 0].max() < 96 and lm[..., 1].max() < 128
    assert (lm[:, 48:68, 1] > 64).all() and (lm[:, 36:48, 1] < 64).all()
    crops = align.warp(frames, transform, (128, 96))
    assert crops.shape == (25, 128, 96, 3) and crops[:, 60:70, 40:56].mean() > 60  # skin, not border


def test_crop_transforms_of_the_mouth_are_the_builds(sample_clip):
    frames = media.decode(sample_clip).frames[:10]
    lm_src = FaceTracker().track(frames).landmarks
    face = align.face_transforms(lm_src, 128)
    expected = align.mouth_transforms(face, align.apply(face, lm_src), 64)
    np.testing.assert_array_equal(align.crop_transforms("mouth", (64, 64), lm_src), expected)
    np.testing.assert_array_equal(align.crop_transforms("face", (128, 128), lm_src), face)


def test_alignment_smooths_the_points_over_time(sample_clip):
    frames = media.decode(sample_clip).frames[:40]
    lm_src = FaceTracker().track(frames).landmarks
    for name, size in (("face", (128, 128)), ("face_sda", (128, 96))):
        jitter = {w: np.abs(np.diff(align.crop_transforms(name, size, lm_src, window=w)[:, :, 2], 2, axis=0)).mean()
                  for w in (1, 7)}
        assert jitter[7] < 0.5 * jitter[1], (name, jitter)  # frame-to-frame shake of the crop's translation
