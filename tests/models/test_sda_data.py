"""The Vougioukas et al. 2019 samples from the real sample store (`models.sda.data`): whole utterances of the
`face_sda` crop with their centred audio windows, padded with their lengths, and mirrored copies."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from models.sda.data import UtteranceDataset
from models.sda.generator import audio_windows
from storage.dataset import ClipReader, ok_clips


def test_whole_utterances_with_centred_audio_and_mirrored_copies(grid_store):
    data = UtteranceDataset(grid_store, "train")
    clips = ok_clips(grid_store, "train")
    assert len(data) == 2 * len(clips) and data.T == int(clips["n_frames"].max())
    item = data[0]
    n = int(item["length"])
    assert item["video"].shape == (data.T, 3, 128, 96) and item["audio"].shape == (data.T, 3200)
    assert n == int(data.clips.iloc[0].n_frames) and (item["video"][n:] == 0).all()
    reader = ClipReader(grid_store)
    row = data.clips.iloc[0]
    real = reader.crops(row, "face_sda")
    np.testing.assert_allclose(item["video"][:n].permute(0, 2, 3, 1).numpy(), real / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(item["audio"][:n].numpy(), audio_windows(reader.audio(row), n))
    assert torch.equal(item["still"], item["video"][0])
    mirrored = data[len(clips)]  # the same clip flipped left to right, its audio unchanged
    assert torch.equal(mirrored["video"], item["video"].flip(-1)) and torch.equal(mirrored["audio"], item["audio"])
    batch = default_collate([data[0], data[1]])  # the loop's collation stacks the padded items
    assert batch["video"].shape == (2, data.T, 3, 128, 96) and batch["length"].tolist() == [n, int(data[1]["length"])]
    with pytest.raises(IndexError):
        data[len(data)]


def test_a_cap_cuts_long_clips_and_mirroring_can_be_off(grid_store):
    data = UtteranceDataset(grid_store, "train", max_frames=20, mirror=False)
    assert len(data) == len(ok_clips(grid_store, "train")) and data.T == 20
    assert int(data[0]["length"]) == 20 and data[0]["audio"].shape == (20, 3200)
    with pytest.raises(ValueError, match="max_frames"):
        UtteranceDataset(grid_store, "train", max_frames=0)
