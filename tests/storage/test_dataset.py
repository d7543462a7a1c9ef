"""AT-net Dataset on a real store (`grid_store`: the project's bundled GRID clips, built by the real build)."""
import numpy as np
import pytest
import torch
import zarr

from storage import manifest
from models.atvgnet.data import ATNetDataset, mfcc_windows
from storage.dataset import StepBatchSampler, make_dataloader, ok_clips
from storage import landmark_pca


def test_mfcc_windows_follow_atvgnet_indexing():
    mfcc = np.arange(40 * 13, dtype=np.float32).reshape(40, 13)  # row r, column c holds 13 r + c
    w = mfcc_windows(mfcc, np.array([3, 0, 9]))
    assert w.shape == (3, 28, 12) and w.dtype == np.float32
    np.testing.assert_array_equal(w[0], mfcc[0:28, 1:])  # t = 3: rows 4(t-3) .. 4(t+4) = 0 .. 27, c0 dropped
    np.testing.assert_array_equal(w[1, :12], np.repeat(mfcc[:1, 1:], 12, axis=0))  # before the clip: row 0 repeated
    np.testing.assert_array_equal(w[1, 12:], mfcc[0:16, 1:])
    np.testing.assert_array_equal(w[2, :4], mfcc[24:28, 1:])  # t = 9 starts at row 24 ...
    np.testing.assert_array_equal(w[2, 16:], np.repeat(mfcc[39:, 1:], 12, axis=0))  # ... and runs past row 39
    with pytest.raises(ValueError):
        mfcc_windows(mfcc[:, :12], np.array([0]))


def test_step_batch_sampler_resumes_exactly():
    full = StepBatchSampler(23, 4, seed=7)
    stream = [b for _, b in zip(range(17), full)]
    assert all(len(b) == 4 for b in stream)
    epoch0 = sum(stream[:5], [])  # 23 // 4 = 5 batches per epoch, no index twice within an epoch
    assert len(set(epoch0)) == 20
    resumed = [b for _, b in zip(range(9), StepBatchSampler(23, 4, seed=7, start_step=8))]
    assert resumed == stream[8:17]
    other = [b for _, b in zip(range(5), StepBatchSampler(23, 4, seed=8))]
    assert other != stream[:5]



def test_ranks_split_each_global_batch_and_resume_alike():
    one = [b for _, b in zip(range(12), StepBatchSampler(23, 4, seed=7))]
    ranks = [[b for _, b in zip(range(12), StepBatchSampler(23, 4, seed=7, rank=r, world_size=2))] for r in (0, 1)]
    assert all(len(b) == 2 for b in ranks[0] + ranks[1])
    assert [r0 + r1 for r0, r1 in zip(*ranks)] == one  # two ranks together take exactly the one-process batches
    resumed = [b for _, b in zip(range(4), StepBatchSampler(23, 4, seed=7, start_step=8, rank=1, world_size=2))]
    assert resumed == ranks[1][8:12]
    with pytest.raises(ValueError, match="split evenly"):
        StepBatchSampler(23, 5, world_size=2)

@pytest.fixture(scope="module")
def dataset(grid_store) -> ATNetDataset:
    return ATNetDataset(grid_store, "train", T=16, stride=3, seed=0)


def test_windows_cover_every_ok_train_clip(grid_store, dataset):
    clips = ok_clips(grid_store, "train")
    rows = manifest.read(grid_store / "manifest.parquet")
    assert set(clips["clip_id"]) == set(rows[(rows.status == "ok") & (rows.split == "train")]["clip_id"])
    assert len(dataset) == sum(len(range(0, n - 16 + 1, 3)) for n in clips["n_frames"])


def test_item_matches_the_store(grid_store, dataset):
    pca = landmark_pca.load(grid_store / "pca.npz")
    i = len(dataset) // 2
    item = dataset[i]
    assert item["example_landmarks"].shape == (6,) and item["mfcc"].shape == (16, 28, 12)
    assert item["landmarks"].shape == (16, 6)
    assert all(v.dtype == torch.float32 for v in item.values())

    w = dataset.windows[i]
    row = dataset.clips.iloc[w.clip]
    group = zarr.open_group(grid_store / "shards" / f"{row.shard}.zarr", mode="r")
    lm = group["landmarks"][row.frame_start : row.frame_start + row.n_frames]
    mfcc = group["mfcc"][row.mfcc_start : row.mfcc_start + row.n_mfcc]
    np.testing.assert_allclose(item["landmarks"].numpy(), pca.to_pca(lm[w.start : w.start + 16]), atol=1e-5)
    t = w.start + 5  # an interior frame: its window lies inside the clip's MFCC
    assert 4 * (t + 4) <= len(mfcc) and t >= 3
    np.testing.assert_array_equal(item["mfcc"][5].numpy(), mfcc[4 * (t - 3) : 4 * (t + 4), 1:])
    # the example is one of the clip's own frames
    distances = np.abs(pca.to_pca(lm) - item["example_landmarks"].numpy()).max(axis=1)
    assert distances.min() < 1e-5


def test_items_are_deterministic(grid_store, dataset):
    again = ATNetDataset(grid_store, "train", T=16, stride=3, seed=0)
    for i in (0, len(dataset) - 1):
        a, b = dataset[i], again[i]
        assert all(torch.equal(a[k], b[k]) for k in a)
    examples = {tuple(dataset[i]["example_landmarks"].tolist()) for i in range(0, min(len(dataset), 40))}
    assert len(examples) > 1  # the example frame varies with the item


def test_spawn_workers_read_the_same_batches(grid_store, dataset):
    sampler = lambda: StepBatchSampler(len(dataset), 4, seed=3)  # noqa: E731
    inline = [b for _, b in zip(range(2), make_dataloader(dataset, batch_sampler=sampler()))]
    workers = make_dataloader(dataset, batch_sampler=sampler(), num_workers=1)
    assert workers.multiprocessing_context.get_start_method() == "spawn" and workers.persistent_workers
    spawned = [b for _, b in zip(range(2), workers)]
    for a, b in zip(inline, spawned):
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert a["mfcc"].shape == (4, 16, 28, 12)


def test_store_pca_is_the_train_split_fit(grid_store):
    stored = landmark_pca.load(grid_store / "pca.npz")
    refit = landmark_pca.fit_store_pca(grid_store, "train")
    np.testing.assert_allclose(stored.mean, refit.mean, atol=1e-6)
    np.testing.assert_allclose(np.abs(stored.components @ refit.components.T), np.eye(6), atol=1e-4)
    assert stored.crop_size == 128
