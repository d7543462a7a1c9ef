"""VG-net Dataset on a real store (`grid_store`: the project's bundled GRID clips, built by the real build)."""
import pickle

import numpy as np
import pytest
import torch
import zarr

from models.atvgnet.data import VGNetDataset
from storage.dataset import StepBatchSampler, make_dataloader, ok_clips
from storage.landmark_pca import normalise


@pytest.fixture(scope="module")
def dataset(grid_store) -> VGNetDataset:
    return VGNetDataset(grid_store, "train", T=16, stride=2, seed=0)


def clip_from_zarr(store, row):
    group = zarr.open_group(store / "shards" / f"{row.shard}.zarr", mode="r")
    s, n = int(row.frame_start), int(row.n_frames)
    return group["face"][s : s + n], group["landmarks"][s : s + n]


def test_windows_cover_every_ok_train_clip(grid_store, dataset):
    clips = ok_clips(grid_store, "train")
    assert list(dataset.clips["clip_id"]) == list(clips["clip_id"])
    assert len(dataset) == sum(len(range(0, n - 16 + 1, 2)) for n in clips["n_frames"])
    assert {w.clip for w in dataset.windows} == set(range(len(clips)))


@pytest.mark.parametrize("where", [0, 0.5, -1])
def test_item_matches_the_store(grid_store, dataset, where):
    i = int(where * len(dataset)) if where >= 0 else len(dataset) - 1
    item = dataset[i]
    assert set(item) == {"example_face", "example_landmarks", "landmarks", "frames"}
    assert item["example_face"].shape == (3, 128, 128) and item["example_landmarks"].shape == (136,)
    assert item["landmarks"].shape == (16, 136) and item["frames"].shape == (16, 3, 128, 128)
    assert all(v.dtype == torch.float32 for v in item.values())

    w = dataset.windows[i]
    row = dataset.clips.iloc[w.clip]
    faces, lm = clip_from_zarr(grid_store, row)
    window = slice(w.start, w.start + 16)
    # frames: the window's crops, (T, H, W, 3) uint8 -> (T, 3, H, W) in [-1, 1], exactly x / 127.5 - 1
    target = faces[window].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(item["frames"].numpy(), target, atol=1e-6)
    back = np.rint((item["frames"].numpy() + 1) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(back, faces[window])
    # landmarks: normalised like the landmark PCA ((x, y) / 128 * 2 - 1), flattened x0, y0, x1, y1, ...
    expected = normalise(lm[window], 128).reshape(16, 136)
    np.testing.assert_allclose(item["landmarks"].numpy(), expected, atol=1e-6)
    assert item["landmarks"][0, 0] == pytest.approx(lm[w.start, 0, 0] / 64 - 1, abs=1e-6)
    assert item["landmarks"][0, 1] == pytest.approx(lm[w.start, 0, 1] / 64 - 1, abs=1e-6)
    # the example: one of the clip's own frames, its face and landmarks from the same frame
    example = np.rint((item["example_face"].numpy() + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0)
    frame = int(np.flatnonzero((faces == example).all(axis=(1, 2, 3)))[0])
    np.testing.assert_allclose(item["example_landmarks"].numpy(), normalise(lm[frame], 128).reshape(136), atol=1e-6)
    assert frame == int(np.random.default_rng((0, i)).integers(int(row.n_frames)))


def test_ranges(dataset):
    for i in (0, len(dataset) // 3, len(dataset) - 1):
        item = dataset[i]
        for key in ("frames", "example_face"):
            assert -1.0 <= item[key].min() and item[key].max() <= 1.0
            assert item[key].max() - item[key].min() > 0.5  # a real face, not a blank
        for key in ("landmarks", "example_landmarks"):
            assert torch.isfinite(item[key]).all()
            assert -1.0 < item[key].min() and item[key].max() < 1.0  # points lie inside the aligned crop


def test_items_are_deterministic_and_examples_vary(grid_store, dataset):
    again = VGNetDataset(grid_store, "train", T=16, stride=2, seed=0)
    for i in (0, len(dataset) - 1):
        a, b = dataset[i], again[i]
        assert all(torch.equal(a[k], b[k]) for k in a)
    examples = {tuple(dataset[i]["example_landmarks"][:4].tolist()) for i in range(0, min(len(dataset), 30))}
    assert len(examples) > 1
    other_seed = VGNetDataset(grid_store, "train", T=16, stride=2, seed=1)
    assert any(not torch.equal(dataset[i]["example_face"], other_seed[i]["example_face"]) for i in range(10))


def test_cache_is_bounded_lru(grid_store):
    ds = VGNetDataset(grid_store, "train", T=16, stride=16, cache_clips=2)
    first_of = {}
    for i, w in enumerate(ds.windows):
        first_of.setdefault(w.clip, i)
    clips = sorted(first_of)[:3]
    for c in clips:
        ds[first_of[c]]
    assert list(ds._cache) == clips[1:]  # the oldest clip was dropped
    faces, _ = ds._cache[clips[1]]
    assert faces.dtype == np.uint8  # cached compact, converted per item
    ds[first_of[clips[1]]]
    assert list(ds._cache) == [clips[2], clips[1]]  # a hit moves the clip to the end
    assert pickle.loads(pickle.dumps(ds))._cache == {}  # workers start empty
    with pytest.raises(ValueError):
        VGNetDataset(grid_store, "train", T=1000)


def test_spawn_workers_read_the_same_batches(dataset):
    sampler = lambda: StepBatchSampler(len(dataset), 2, seed=3)  # noqa: E731
    inline = [b for _, b in zip(range(2), make_dataloader(dataset, batch_sampler=sampler()))]
    spawned = [b for _, b in zip(range(2), make_dataloader(dataset, batch_sampler=sampler(), num_workers=1))]
    for a, b in zip(inline, spawned):
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert a["frames"].shape == (2, 16, 3, 128, 128) and a["landmarks"].shape == (2, 16, 136)
