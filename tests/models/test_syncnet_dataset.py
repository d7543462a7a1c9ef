"""SyncNet Dataset on a real store (`grid_store`: the project's bundled GRID clips, built by the real build)."""
import pickle

import numpy as np
import pytest
import torch
import zarr

from models.syncnet.data import SyncNetDataset, sync_audio_windows, sync_mfcc_window
from storage.dataset import StepBatchSampler, make_dataloader, ok_clips


@pytest.fixture(scope="module")
def dataset(grid_store) -> SyncNetDataset:
    return SyncNetDataset(grid_store, "train", seed=0, draws_per_window=3)


def clip_from_zarr(store, row, field="mouth"):
    group = zarr.open_group(store / "shards" / f"{row.shard}.zarr", mode="r")
    s, n = int(row.frame_start), int(row.n_frames)
    m, a = int(row.mfcc_start), int(row.n_mfcc)
    return group[field][s : s + n], group["mfcc"][m : m + a]


def test_windows_are_every_complete_av_window(grid_store, dataset):
    clips = ok_clips(grid_store, "train")
    assert list(dataset.clips["clip_id"]) == list(clips["clip_id"])
    # window t: frames t..t+4 and MFCC rows 4t..4t+20 must both lie inside the clip
    per_clip = [min(n - 4, (a - 20) // 4 + 1) for n, a in zip(clips["n_frames"], clips["n_mfcc"])]
    assert len(dataset.windows) == sum(per_clip) and len(dataset) == 3 * sum(per_clip)
    assert sync_audio_windows(297) == 70 and sync_audio_windows(19) == 0  # a 3 s GRID clip: 297 rows, 70 windows
    assert all(4 * w.start + 20 <= clips["n_mfcc"][w.clip] and w.start + 5 <= clips["n_frames"][w.clip]
               for w in dataset.windows)


@pytest.mark.parametrize("where", [0, 0.37, -1])
def test_item_matches_the_store(grid_store, dataset, where):
    i = int(where * len(dataset)) if where >= 0 else len(dataset) - 1
    item = dataset[i]
    assert set(item) == {"video", "audio", "negative", "negative_shift", "negative_clip"}
    assert item["video"].shape == (5, 64, 64, 3) and item["video"].dtype == torch.uint8
    assert item["audio"].shape == item["negative"].shape == (13, 20) and item["audio"].dtype == torch.float32

    w = dataset.windows[i % len(dataset.windows)]
    row = dataset.clips.iloc[w.clip]
    mouths, mfcc = clip_from_zarr(grid_store, row)
    np.testing.assert_array_equal(item["video"].numpy(), mouths[w.start : w.start + 5])
    # 4 MFCC rows per video frame: frames t..t+4 <-> rows 4t..4t+20, transposed to (coefficients, time)
    np.testing.assert_array_equal(item["audio"].numpy(), mfcc[4 * w.start : 4 * w.start + 20].T)

    shift, clip = int(item["negative_shift"]), int(item["negative_clip"])
    if clip == w.clip:
        assert 5 <= abs(shift) <= 15
        t = w.start + shift
        np.testing.assert_array_equal(item["negative"].numpy(), mfcc[4 * t : 4 * t + 20].T)
    else:
        assert shift == 0
        _, other = clip_from_zarr(grid_store, dataset.clips.iloc[clip])
        windows = [other[4 * t : 4 * t + 20].T for t in range(sync_audio_windows(len(other)))]
        assert any(np.array_equal(item["negative"].numpy(), x) for x in windows)


def test_negatives_mix_shifts_and_other_clips(grid_store, dataset):
    draws = [dataset.negative(i) for i in range(0, len(dataset), 3)]
    other = np.mean([clip != dataset.windows[i % len(dataset.windows)].clip
                     for i, (clip, _, _) in zip(range(0, len(dataset), 3), draws)])
    assert 0.15 < other < 0.35  # p_other_clip = 0.25
    shifts = {s for _, _, s in draws if s}
    assert shifts == set(range(-15, -4)) | set(range(5, 16))
    only_shifts = SyncNetDataset(grid_store, "train", p_other_clip=0.0, min_shift=2, max_shift=3)
    assert {only_shifts.negative(i)[2] for i in range(0, len(only_shifts), 5)} == {-3, -2, 2, 3}
    only_others = SyncNetDataset(grid_store, "train", p_other_clip=1.0)
    assert all(only_others.negative(i)[2] == 0 for i in range(0, len(only_others), 7))


def test_items_are_deterministic_per_seed_and_index(grid_store, dataset):
    again = SyncNetDataset(grid_store, "train", seed=0, draws_per_window=3)
    for i in (0, 5, len(dataset) - 1):
        a, b = dataset[i], again[i]
        assert all(torch.equal(a[k], b[k]) for k in a)
    W = len(dataset.windows)
    # the draws of one window share its video and audio and differ in their negatives
    same_window = [dataset[i] for i in (7, 7 + W, 7 + 2 * W)]
    assert all(torch.equal(x["video"], same_window[0]["video"]) for x in same_window)
    assert len({x["negative"].numpy().tobytes() for x in same_window}) > 1
    other_seed = SyncNetDataset(grid_store, "train", seed=1, draws_per_window=3)
    assert any(not torch.equal(dataset[i]["negative"], other_seed[i]["negative"]) for i in range(10))


def test_face_crops_and_errors(grid_store):
    faces = SyncNetDataset(grid_store, "train", crop="face")
    assert faces[0]["video"].shape == (5, 128, 128, 3)
    with pytest.raises(ValueError):
        SyncNetDataset(grid_store, "train", crop="lips")
    with pytest.raises(ValueError):
        SyncNetDataset(grid_store, "train", min_shift=6, max_shift=5)
    with pytest.raises(IndexError):
        faces[len(faces)]
    with pytest.raises(ValueError):
        sync_mfcc_window(np.zeros((30, 13), np.float32), 3)  # rows 12..32 run past 30


def test_pickles_without_cache_and_spawn_workers_agree(grid_store, dataset):
    dataset[0]
    clone = pickle.loads(pickle.dumps(dataset))
    assert not clone._cache and clone.reader._groups == {}
    assert all(torch.equal(dataset[3][k], clone[3][k]) for k in dataset[3])
    sampler = lambda: StepBatchSampler(len(dataset), 8, seed=2)  # noqa: E731
    inline = [b for _, b in zip(range(2), make_dataloader(dataset, batch_sampler=sampler()))]
    workers = make_dataloader(dataset, batch_sampler=sampler(), num_workers=1)
    spawned = [b for _, b in zip(range(2), workers)]
    for a, b in zip(inline, spawned):
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert a["video"].shape == (8, 5, 64, 64, 3) and a["audio"].shape == (8, 13, 20)
