"""Scoring a generator on the sample store (`tasks.evaluation`): real frames scored against themselves give the
metrics' ideal values, a tiny trained cascade gives a complete per-clip table and aggregates, and a mouth generator
(the lip GAN) is scored on its mouths and, for dlib, on them pasted back into the still face."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.registry import get_system
from storage.dataset import ClipReader, ok_clips
from tasks import align
from tasks.evaluation import evaluate, face_views, mouth_crops, score_clip
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


def test_a_mouth_crop_pasted_into_the_still_face_reproduces_the_face(grid_store, test_clip):
    faces, points, _, mouths = test_clip
    reader = ClipReader(grid_store)
    row = next(ok_clips(grid_store, "test").itertuples(index=False))
    src = reader.landmarks_src(row)
    face_to_mouth = align.relative(align.crop_transforms("face", (128, 128), src)[:1],
                                   align.crop_transforms("mouth", (64, 64), src))[0]
    np.testing.assert_allclose(align.apply(face_to_mouth[None], points[:1]),  # stored face landmarks -> mouth pixels
                               align.apply(align.crop_transforms("mouth", (64, 64), src)[:1], src[:1]), atol=1e-3)
    generated, real = face_views(mouths[:1], mouths, faces[0], face_to_mouth)
    assert generated.shape == (1, 128, 128, 3) and real.shape == (75, 128, 128, 3)
    box = np.s_[int(points[0, 48:68, 1].min()) : int(points[0, 48:68, 1].max()),
                int(points[0, 48:68, 0].min()) : int(points[0, 48:68, 0].max())]
    assert np.abs(generated[0].astype(int) - faces[0].astype(int))[box].mean() < 2  # frame 0's mouth, back in place
    assert np.abs(real[40].astype(int) - faces[0].astype(int))[box].mean() > 4  # another frame's mouth...
    outside = np.ones((128, 128), bool)
    outside[30:, 20:108] = False
    assert np.abs(real[40].astype(int) - faces[0].astype(int))[outside].mean() < 1  # ...in the same still face


def test_evaluate_a_tiny_lip_gan_on_mouths_and_face_views(grid_store, tmp_path):
    flownet = train_small(grid_store, tmp_path, "lipgan", "flownet", steps=1, batch_size=2).last_checkpoint
    perceptual = train_small(grid_store, tmp_path, "lipgan", "perceptual", steps=1, batch_size=2).last_checkpoint
    gan = train_small(grid_store, tmp_path, "lipgan", "lipgan", steps=1, batch_size=2,
                      inputs={"flownet": flownet, "perceptual": perceptual}).last_checkpoint
    system = get_system("lipgan")
    model_dir = export_model(system, {"lipgan": gan}, tmp_path / "model")
    seen = []
    per_clip, aggregate = evaluate(load_generator(model_dir, "cpu"), grid_store, "test", metrics=system.metrics,
                                   on_clip=lambda clip_id, gen, real, audio: seen.append((gen.shape, real.shape)))
    assert seen == [((75, 128, 128, 3), (75, 128, 128, 3))]  # the face views: mouths pasted into the still face
    for key in ("psnr", "ssim", "psnr_paper", "ssim_paper", "lmd", "lmd_sum", "cpbd", "cpbd_real", "fps"):
        assert np.isfinite(aggregate[key]), key
    assert aggregate["lmd_missing"] == 0  # dlib finds every pasted-back face
    assert not {"acd", "blinks_per_s", "blink_duration_s"} & set(aggregate)  # the still's eyes: not the system's
    mouth_psnr = per_clip["psnr"].iloc[0]
    assert mouth_psnr < 30  # scored on the 64×64 mouths: an untrained GAN is far from them


def test_wer_of_generated_and_real_views_with_one_reader(grid_store, test_clip):
    """A real (untrained) lip reader reads the generated and the real face views; each clip's transcripts and WER
    are in its row, and the aggregate WER is jiwer's over the corpus, not a mean of per-clip rates."""
    import torch

    from models.lipreader import LipNet, LipReader, LipReaderConfig, mouth_box
    from tasks.evaluation import corpus_wer, read_clip
    from tasks.metrics.wer import wer

    torch.manual_seed(0)
    reader = LipReader(LipNet(LipReaderConfig.preset("small")), mouth_box(grid_store, "train"))

    def read(faces):
        t = reader.read(faces)
        return t.greedy, t.snapped

    faces = test_clip[0]
    reference = next(ok_clips(grid_store, "test").itertuples(index=False)).text
    row = read_clip(read, (faces[::-1].copy(), faces), reference)
    assert set(row) == {"transcript", "transcript_snapped", "transcript_real", "transcript_snapped_real", "wer",
                        "wer_snapped", "wer_real", "wer_snapped_real"}
    assert row["wer_real"] == wer([reference], [row["transcript_real"]])
    assert len(row["transcript_snapped"].split()) <= 6  # at most GRID's six slots
    import pandas as pd

    table = pd.DataFrame([row, {**row, "transcript": reference, "transcript_real": reference}])
    pooled = corpus_wer(table, [reference, "bin blue at f two now please"])
    assert pooled["wer"] == wer([reference, "bin blue at f two now please"], [row["transcript"], reference])
