"""The lip reader's samples from the real sample store (`models.lipreader.data`): a fixed mouth box of the 128×128
face crop centred on the train split's mean mouth, whole clips padded with their lengths, and CTC targets that
decode back to the manifest's GRID transcripts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from models.lipreader.data import (MOUTH_POINTS, LipReadingDataset, MouthBox, held_out_clips, mouth_box,
                                   mouth_frames)
from models.lipreader.stages import LipReaderStage
from models.lipreader.text import decode
from storage.dataset import ClipReader, ok_clips


def test_the_mouth_box_lies_in_the_face_crop_and_covers_the_mean_mouth(grid_store):
    box = mouth_box(grid_store, "train", (32, 64))
    assert isinstance(box, MouthBox) and (box.h, box.w) == (32, 64)
    assert 0 <= box.y0 and box.y0 + box.h <= 128 and 0 <= box.x0 and box.x0 + box.w <= 128
    reader = ClipReader(grid_store)
    mouth = np.concatenate([reader.landmarks(row)[:, MOUTH_POINTS] for row in ok_clips(grid_store, "train")
                            .itertuples()]).reshape(-1, 2)  # (x, y) in face-crop pixels
    cx, cy = mouth.mean(0)
    assert abs(box.x0 + box.w / 2 - cx) <= 0.5 and abs(box.y0 + box.h / 2 - cy) <= 0.5
    inside = ((mouth[:, 0] >= box.x0) & (mouth[:, 0] < box.x0 + box.w)
              & (mouth[:, 1] >= box.y0) & (mouth[:, 1] < box.y0 + box.h))
    assert inside.mean() > 0.99  # every frame's lips, not just their mean
    with pytest.raises(ValueError, match="does not fit"):
        mouth_box(grid_store, "train", (32, 200))


def test_a_box_near_the_edge_is_shifted_inside(grid_store):
    box = mouth_box(grid_store, "train", (100, 128))
    assert box.x0 == 0 and box.y0 + box.h <= 128


def test_whole_clips_with_targets_that_decode_to_the_manifest_text(grid_store):
    data = LipReadingDataset(grid_store, "train", size=(32, 64), channels=3, mirror=True)
    clips = ok_clips(grid_store, "train")
    assert len(data) == 2 * len(clips) and data.T == int(clips["n_frames"].max()) == 75
    assert data.L == max(len(t) for t in clips["text"]) and data.face_size == (128, 128)
    reader = ClipReader(grid_store)
    for i, row in enumerate(clips.itertuples()):
        item = data[i]
        n, m = int(item["length"]), int(item["target_length"])
        assert decode(item["target"][:m]) == row.text and (item["target"][m:] == 0).all()
        assert n == row.n_frames and item["video"].shape == (75, 3, 32, 64)
    row = clips.iloc[0]
    want = data.box.cut(reader.faces(row)) / 127.5 - 1  # the box, as is (the paper size needs no resizing)
    np.testing.assert_allclose(data[0]["video"].permute(0, 2, 3, 1).numpy(), want, atol=1e-6)
    mirrored = data[len(clips)]  # the same clip flipped left to right, the same sentence
    assert torch.equal(mirrored["video"], data[0]["video"].flip(-1))
    assert torch.equal(mirrored["target"], data[0]["target"])
    batch = default_collate([data[0], data[1]])  # the loop's collation stacks the padded items
    assert batch["video"].shape == (2, 75, 3, 32, 64) and batch["target"].shape == (2, data.L)
    with pytest.raises(IndexError):
        data[len(data)]


def test_padding_past_a_clips_length_and_a_cap(grid_store):
    data = LipReadingDataset(grid_store, "train", size=(16, 32), channels=1)
    data.T = 80  # as if the split's longest clip had 80 frames: the 75-frame clips are zero-padded
    item = data[0]
    assert item["video"].shape == (80, 1, 16, 32) and int(item["length"]) == 75
    assert (item["video"][75:] == 0).all() and item["video"][:75].abs().sum() > 0
    assert -1 <= float(item["video"].min()) and float(item["video"].max()) <= 1
    capped = LipReadingDataset(grid_store, "train", max_frames=20, mirror=False)
    assert capped.T == 20 and int(capped[0]["length"]) == 20 and capped[0]["video"].shape[0] == 20
    with pytest.raises(ValueError, match="max_frames"):
        LipReadingDataset(grid_store, "train", max_frames=0)


def test_mouth_frames_resize_and_grey():
    boxes = np.zeros((2, 32, 64, 3), np.uint8)
    boxes[..., 0] = 255  # pure red
    grey = mouth_frames(boxes, (16, 32), 1)
    assert grey.shape == (2, 1, 16, 32) and grey.dtype == torch.float32
    torch.testing.assert_close(grey, torch.full_like(grey, 0.299 * 2 - 1))
    rgb = mouth_frames(boxes, (32, 64), 3)
    assert rgb[:, 0].eq(1).all() and rgb[:, 1:].eq(-1).all()


def test_the_stage_keeps_the_train_split_box_for_every_split_and_on_resume(grid_store):
    stage = LipReaderStage()
    cfg = stage.Config.preset("small")
    train = stage.dataset(grid_store, "train", cfg)
    test = stage.dataset(grid_store, "test", cfg)
    assert test.box == train.box == mouth_box(grid_store, "train", cfg.box)
    state = stage.extra_state(train)
    assert state == {"mouth_box": list(train.box), "face_size": [128, 128]}
    resumed = stage.dataset(grid_store, "train", cfg, state={"mouth_box": [60, 30, 32, 64]})
    assert resumed.box == MouthBox(60, 30, 32, 64)


def test_held_out_sentences_never_reach_training(grid_store):
    every = set(ok_clips(grid_store, "train")["clip_id"])
    out = held_out_clips(every, 0.3)
    assert out == held_out_clips(sorted(every, reverse=True), 0.3) and 0 < len(out) < len(every)
    assert held_out_clips(every, 0.0) == frozenset()
    with pytest.raises(ValueError, match="held-out fraction"):
        held_out_clips(every, 1.0)
    stage = LipReaderStage()
    kept = stage.dataset(grid_store, "train", stage.Config.preset("small", held_out=0.3))
    scored = LipReadingDataset(grid_store, "train", held_out=0.3, part="held_out")
    assert set(kept.clips["clip_id"]) == every - out and set(scored.clips["clip_id"]) == out
    assert len(kept) == len(every - out) and kept.box == scored.box == mouth_box(grid_store, "train")
    assert len(stage.dataset(grid_store, "test", stage.Config.preset("small", held_out=0.3))) == \
        len(ok_clips(grid_store, "test"))  # only the training split is thinned
    with pytest.raises(ValueError, match="held_out"):
        stage.Config.preset("small", held_out=1.5)
