"""Landmark error (LMD) of AT-net: the distance itself on known displacements, then a real store end to end."""
import numpy as np
import pytest

from models.atvgnet import ATNetConfig
from storage.dataset import ok_clips
from tasks.landmark_eval import evaluate_atnet, landmark_distance
from tests.conftest import train_small

TINY = ATNetConfig(audio_channels=(8, 8, 16, 16, 16), audio_hidden=64, audio_features=32,
                   landmark_hidden=32, landmark_features=32, lstm_hidden=32)

rng = np.random.default_rng(0)
TRUE = rng.uniform(20, 110, size=(5, 68, 2))


def test_lmd_ignores_a_global_shift():
    np.testing.assert_allclose(landmark_distance(TRUE + [3.0, -7.0], TRUE), 0, atol=1e-9)


def test_lmd_of_a_scaled_mouth():
    pred = TRUE.copy()
    centre = TRUE[:, 48:68].mean(axis=1, keepdims=True)
    pred[:, 48:68] = centre + 1.5 * (TRUE[:, 48:68] - centre)  # each point moves 0.5 x its distance to the centre
    expected = 0.5 * np.linalg.norm(TRUE[:, 48:68] - centre, axis=-1).mean(axis=1)
    np.testing.assert_allclose(landmark_distance(pred, TRUE), expected, rtol=1e-9)
    # all-68 form: points outside the mouth did not move, but centring on all 68 shifts them all a little
    assert 0 < landmark_distance(pred, TRUE, slice(0, 68)).mean() < expected.mean()


def test_lmd_of_one_moved_point():
    pred = TRUE.copy()
    pred[:, 60] += [4.0, 0.0]  # one of 20 mouth points moves 4 px: centring spreads 4/20 over all of them
    per_point = np.full(20, 4.0 / 20)
    per_point[12] = 4.0 * 19 / 20
    np.testing.assert_allclose(landmark_distance(pred, TRUE), per_point.mean(), rtol=1e-9)
    with pytest.raises(ValueError):
        landmark_distance(pred[:, :60], TRUE[:, :60])


@pytest.fixture(scope="module")
def evaluation(grid_store, tmp_path_factory):
    result = train_small(grid_store, tmp_path_factory.mktemp("atnet-eval"), "atvgnet", "atnet", steps=20, batch_size=8,
                         lr=3e-3, checkpoint_every=0, model=TINY)
    return evaluate_atnet(result.last_checkpoint, grid_store, "test", device="cpu")


def test_evaluate_reports_every_test_clip(grid_store, evaluation):
    per_clip, agg = evaluation
    clips = ok_clips(grid_store, "test")
    assert list(per_clip["clip_id"]) == list(clips["clip_id"])
    assert agg["n_clips"] == len(clips) and agg["n_frames"] == clips["n_frames"].sum() and agg["step"] == 20
    metrics = [c for c in per_clip.columns if c.startswith("lmd_")]
    assert {"lmd_mouth", "lmd_mouth_boost", "lmd_mouth_sum20", "lmd_all68", "lmd_mouth_pca_ceiling",
            "lmd_mouth_static"} <= set(metrics)
    assert np.isfinite(per_clip[metrics].to_numpy()).all()
    np.testing.assert_allclose(agg["lmd_mouth_sum20"], 20 * agg["lmd_mouth"], rtol=1e-9)
    assert agg["lmd_mouth_boost"] != agg["lmd_mouth"]


def test_pca_ceiling_is_a_plausible_floor(evaluation):
    _, agg = evaluation
    # 6 components keep most of the mouth shape: their error is sub-pixel to a few pixels on 128-pixel crops
    assert 0 < agg["lmd_mouth_pca_ceiling"] < 3.0
    assert agg["lmd_mouth_pca_ceiling"] < agg["lmd_mouth"]
    assert agg["lmd_all68_pca_ceiling"] < agg["lmd_all68"]
