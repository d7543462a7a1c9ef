"""ATVGnet landmark PCA on real dlib landmarks (the ATVGnet repo's LRW frame, shipped in shared samples).

Shapes are made by moving that real shape along known linear modes (translation, scale, mouth opening), so the
exact answer is known: data in a <= 6-dimensional affine subspace is reconstructed exactly by 6 components.
"""
from pathlib import Path

import numpy as np
import pytest

from storage import landmark_pca as lp

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "samples" / "lrw" / "ABOUT_00001_00001.npy"
CROP = 128


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    if not SAMPLE.exists():
        pytest.skip(f"sample landmarks missing: {SAMPLE}")
    return np.load(SAMPLE).astype(np.float32)  # (68, 2) in a 128-pixel crop


def modes(base: np.ndarray) -> list[np.ndarray]:
    """Linear shape modes in pixels: x shift, y shift, scale about the centroid, lower lip down (mouth opening)."""
    open_mouth = np.zeros_like(base)
    open_mouth[[55, 56, 57, 58, 59, 64, 65, 66, 67], 1] = 1.0
    return [np.tile([1.0, 0.0], (68, 1)), np.tile([0.0, 1.0], (68, 1)), (base - base.mean(0)) / 30.0, open_mouth]


def make_shapes(base: np.ndarray, n: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coef = rng.normal(0.0, [3.0, 2.0, 1.0, 4.0], size=(n, 4))
    return (base[None] + np.einsum("nk,kpd->npd", coef, np.stack(modes(base)))).astype(np.float32)


def test_round_trip_is_exact_for_shapes_in_six_dims(base):
    shapes = make_shapes(base)
    pca = lp.fit_landmark_pca(shapes, CROP)
    coeffs = pca.to_pca(shapes)
    assert coeffs.shape == (300, 6) and coeffs.dtype == np.float32
    back = pca.from_pca(coeffs)
    assert back.shape == (300, 68, 2) and back.dtype == np.float32
    np.testing.assert_allclose(back, shapes, atol=2e-3)
    # a real shape outside the fitted modes is not reconstructed exactly: the PCA does lose something
    other = base.copy()
    other[30] += [5.0, -4.0]
    assert np.abs(pca.from_pca(pca.to_pca(other)) - other).max() > 1.0


def test_fit_conventions(base):
    shapes = make_shapes(base)
    pca = lp.fit_landmark_pca(shapes, CROP)
    assert pca.mean.shape == (136,) and pca.components.shape == (6, 136) and pca.explained_variance.shape == (6,)
    # mean is the data mean in normalised units x / 128 * 2 - 1, flattened (x0, y0, x1, y1, ...)
    np.testing.assert_allclose(pca.mean, (shapes.mean(0) / CROP * 2 - 1).reshape(136), atol=1e-5)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(6), atol=1e-5)
    assert np.all(np.diff(pca.explained_variance) <= 0)
    assert pca.explained_variance[4:].max() < 1e-8  # 4 modes -> components 4, 5 carry nothing
    np.testing.assert_allclose(pca.to_pca(shapes).mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(pca.to_pca(shapes).var(0, ddof=1)[:4], pca.explained_variance[:4], rtol=1e-3)


def test_flattening_order_is_x_then_y_per_point(base):
    shifts = np.random.default_rng(1).normal(0, 3, size=(50, 1))
    shapes = base[None] + shifts[:, :, None] * np.array([1.0, 0.0])  # x translation only
    pca = lp.fit_landmark_pca(shapes.astype(np.float32), CROP)
    first = pca.components[0]
    assert np.abs(first[1::2]).max() < 1e-6  # y entries (odd) are zero
    np.testing.assert_allclose(np.abs(first[0::2]), 1 / np.sqrt(68), atol=1e-5)


def test_fit_is_deterministic(base):
    shapes = make_shapes(base)
    a, b = lp.fit_landmark_pca(shapes, CROP), lp.fit_landmark_pca(shapes.copy(), CROP)
    for k in ("mean", "components", "explained_variance"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


def test_boost_scales_components_1_to_5_only(base):
    pca = lp.fit_landmark_pca(make_shapes(base), CROP)
    c = np.array([0.3, -0.2, 0.1, 0.05, -0.04, 0.02], dtype=np.float32)
    np.testing.assert_allclose(pca.from_pca(c, boost=True), pca.from_pca(c * [1, 2.2, 2.4, 2.6, 2.8, 3.0]), atol=1e-4)
    only0 = np.array([0.3, 0, 0, 0, 0, 0], dtype=np.float32)
    np.testing.assert_allclose(pca.from_pca(only0, boost=True), pca.from_pca(only0), atol=1e-5)
    assert np.abs(pca.from_pca(c, boost=True) - pca.from_pca(c)).max() > 0.1
    np.testing.assert_allclose(pca.from_pca(c, boost=[1, 1, 1, 1, 1, 1]), pca.from_pca(c), atol=1e-5)
    with pytest.raises(ValueError):
        pca.from_pca(c, boost=[2.0, 2.0])


def test_save_load_round_trip(base, tmp_path):
    pca = lp.fit_landmark_pca(make_shapes(base), CROP)
    path = lp.save(pca, tmp_path / "pca.npz")
    with np.load(path) as z:
        assert sorted(z.files) == sorted(lp.PCA_KEYS)
        assert z["mean"].shape == (136,) and z["components"].shape == (6, 136) and int(z["crop_size"]) == CROP
    loaded = lp.load(path)
    for k in ("mean", "components", "explained_variance"):
        np.testing.assert_array_equal(getattr(loaded, k), getattr(pca, k))
    assert loaded.crop_size == CROP
    np.savez(tmp_path / "bad.npz", mean=pca.mean)
    with pytest.raises(KeyError):
        lp.load(tmp_path / "bad.npz")


def test_bad_inputs_raise(base):
    shapes = make_shapes(base, n=20)
    with pytest.raises(ValueError):
        lp.fit_landmark_pca(shapes[:6], CROP)  # 6 shapes cannot give 6 components
    with pytest.raises(ValueError):
        lp.fit_landmark_pca(shapes.reshape(20, 136), CROP)
    bad = shapes.copy()
    bad[3, 10, 0] = np.nan
    with pytest.raises(ValueError):
        lp.fit_landmark_pca(bad, CROP)
    pca = lp.fit_landmark_pca(shapes, CROP)
    with pytest.raises(ValueError):
        pca.to_pca(shapes[:, :67])
    with pytest.raises(ValueError):
        pca.from_pca(np.zeros(5))


def test_store_landmarks_subsample_each_clip_evenly_beyond_max_frames(grid_store):
    full, crop = lp.store_landmarks(grid_store, "train")
    assert crop == 128 and full.shape == (13 * 75, 68, 2)  # the 13 bundled s1 + unknown train clips, 75 frames each
    strided, _ = lp.store_landmarks(grid_store, "train", max_frames=100)  # stride ceil(975 / 100) = 10
    np.testing.assert_array_equal(strided, full.reshape(13, 75, 68, 2)[:, ::10].reshape(-1, 68, 2))
