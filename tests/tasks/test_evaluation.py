"""Scoring a generator on the sample store (`tasks.evaluation`): real frames scored against themselves give the
metrics' ideal values, and a tiny trained cascade gives a complete per-clip table and aggregates."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.registry import get_system
from storage.dataset import ClipReader, ok_clips
from tasks.evaluation import evaluate, mouth_crops, score_clip
from tasks.face import FaceTracker
from tasks.model_dir import export_model, load_generator
from tests.conftest import train_small


@pytest.fixture(scope="module")
def test_clip(grid_store):
    reader = ClipReader(grid_store)
    row = next(ok_clips(grid_store, "test").itertuples(index=False))
    return reader.faces(row), reader.landmarks(row), reader.mfcc(row), reader.mouths(row)


def test_real_frames_against_themselves_score_ideal(test_clip):
    faces, points, mfcc, _ = test_clip
    row, ears = score_clip(faces, faces, points[0], mfcc, FaceTracker())
    assert math.isinf(row["psnr"]) and row["ssim"] == pytest.approx(1.0)
    assert row["lmd"] == 0 and row["lmd_sum"] == 0 and row["lmd_missing"] == 0
    assert row["cpbd"] == row["cpbd_real"] and 0 < row["cpbd"] < 1
    assert row["acd"] < 0.3  # the same person as the still (another speaker is ~0.9)
    assert np.array_equal(ears["ear"], ears["ear_real"]) and len(ears["ear"]) == len(faces)


def test_mouth_crops_match_the_build(test_clip):
    faces, points, _, mouths = test_clip
    cut = mouth_crops(faces, points)  # from the aligned crop, the build cuts from the source frame
    assert cut.shape == mouths.shape
    assert np.abs(cut.astype(int) - mouths.astype(int)).mean() < 12  # the same region, resampled twice


def test_evaluate_a_tiny_cascade(grid_store, tmp_path):
    atnet = train_small(grid_store, tmp_path, "atvgnet", "atnet", steps=2, batch_size=2)
    vgnet = train_small(grid_store, tmp_path, "atvgnet", "vgnet", steps=2, batch_size=1, sample_every=0)
    model_dir = export_model(get_system("atvgnet"), {"atnet": atnet.last_checkpoint, "vgnet": vgnet.last_checkpoint},
                             tmp_path / "model")
    seen = []
    per_clip, aggregate = evaluate(load_generator(model_dir, "cpu"), grid_store, "test",
                                           on_clip=lambda clip_id, gen, real, audio: seen.append(
                                               (clip_id, gen.shape, real.shape, audio.dtype, len(audio))))
    assert list(per_clip["clip_id"]) == ["s2/swwp2s"] and seen[0][:4] == ("s2/swwp2s", (75, 128, 128, 3),
                                                                           (75, 128, 128, 3), np.int16)
    assert abs(seen[0][4] / 16000 - 3.0) < 0.04  # the clip's 16 kHz audio
    for key in ("psnr", "ssim", "psnr_paper", "ssim_paper", "cpbd", "cpbd_real", "acd", "blinks_per_s_real", "fps"):
        assert np.isfinite(aggregate[key]), key
    assert aggregate["n_clips"] == 1 and aggregate["n_frames"] == 75
    assert aggregate["psnr"] < 40 and aggregate["ssim"] < 0.99  # an untrained renderer is far from the real frames
