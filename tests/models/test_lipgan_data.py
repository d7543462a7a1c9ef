"""The lip GAN's samples from the real sample store (`models.lipgan.data`): shapes and ranges, log-mel windows on
the video frames' rows, train-split normalisation, a mismatched audio window that really is another window, and
Farneback targets of the store's own mouth crops."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.lipgan.data import (LipGANDataset, MouthFlowDataset, MouthFrameDataset, mel_statistics, mel_window,
                                normalise_mel)
from storage import audio


@pytest.fixture(scope="module")
def stats(grid_store):
    return mel_statistics(grid_store, "train", n_mels=32)


def test_mel_window_takes_the_rows_of_its_frames_and_pads_the_end():
    mel = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)  # 10 mel frames = 2.5 video frames
    np.testing.assert_array_equal(mel_window(mel, 1, 1), mel[4:8])
    tail = mel_window(mel, 2, 1)  # frame 2 has mel rows 8, 9 and then the end of the audio
    np.testing.assert_array_equal(tail, mel[[8, 9, 9, 9]])
    with pytest.raises(ValueError):
        mel_window(mel[:0], 0, 1)


def test_train_statistics_normalise_the_train_split(grid_store, stats):
    assert stats["mean"].shape == stats["std"].shape == (32,) and (stats["std"] > 0).all()
    ds = LipGANDataset(grid_store, "train", stats=stats, T=8, stride=8, image_size=32, n_mels=32)
    mels = np.concatenate([ds.clip_arrays(c)[1] for c in range(len(ds.clips))])
    np.testing.assert_allclose(mels.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(mels.std(0), 1, atol=1e-2)


def test_gan_samples(grid_store, stats):
    ds = LipGANDataset(grid_store, "train", stats=stats, T=8, stride=4, image_size=32, n_mels=32, seed=3)
    item = ds[5]
    assert item["video"].shape == (3, 8, 32, 32) and item["identity"].shape == (3, 32, 32)
    assert item["audio"].shape == item["mismatch_audio"].shape == (1, 32, 32)
    assert item["video"].dtype == torch.float32 and -1 <= item["video"].min() and item["video"].max() <= 1
    # the audio is the window's own rows of its clip's normalised log-mel
    w = ds.windows[5]
    mel = normalise_mel(audio.log_mel(ds.reader.audio(ds.clips.iloc[w.clip]), n_mels=32), stats)
    np.testing.assert_allclose(item["audio"][0].numpy(), mel[4 * w.start : 4 * (w.start + 8)], rtol=1e-5, atol=1e-5)
    # the mismatched audio is another window's, sharing no frame with this one, and fixed per (seed, item)
    j = ds.mismatched_window(5)
    other = ds.windows[j]
    assert j != 5 and (other.clip != w.clip or abs(other.start - w.start) >= 8)
    torch.testing.assert_close(item["mismatch_audio"], ds.audio_window(j))
    assert not torch.equal(item["mismatch_audio"], item["audio"])
    assert ds.mismatched_window(5) == j and torch.equal(ds[5]["identity"], item["identity"])


def test_mouth_frames_for_the_autoencoder(grid_store):
    ds = MouthFrameDataset(grid_store, "train", image_size=64)
    assert len(ds) == int(ds.clips["n_frames"].sum())  # every frame once
    mouth = ds[10]["mouth"]
    assert mouth.shape == (3, 64, 64) and mouth.std() > 0.05  # a real crop, not a flat image


def test_flow_targets_of_the_store_mouths(grid_store):
    ds = MouthFlowDataset(grid_store, "train", T=8, stride=8, image_size=32)
    item = ds[3]
    assert item["video"].shape == (3, 8, 32, 32) and item["flow"].shape == (2, 7, 8, 8)
    assert torch.isfinite(item["flow"]).all() and item["flow"].abs().max() < 8  # quarter-grid pixels, a mouth's motion
    assert item["flow"].abs().mean() > 0  # speech moves the lips
