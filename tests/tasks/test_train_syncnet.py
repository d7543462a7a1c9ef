"""SyncNet training on a real store (`grid_store`), CPU, the "small" preset at batch 16, one torch thread.

30 steps take ~3 s here (~0.07 s a step at batch 16). The contrastive loss falls steeply at first (measured: mean of
the first 5 steps ~4.3, of the last 5 ~0.43 at lr 1e-3), mostly as the embedding distances settle to the margin's
scale; whether the model learns sync is what `tests/tasks/test_sync.py` checks, with a longer run.
"""
from dataclasses import replace

import numpy as np
import pytest
import torch

from models.syncnet import SyncNet, SyncNetConfig
from tasks.train_syncnet import (CHECKPOINT_FORMAT, SyncNetTrainConfig, contrastive_loss, load_syncnet,
                                 train_syncnet)

STEPS = 30
FAST = SyncNetTrainConfig.preset("small", steps=STEPS, batch_size=16, lr=1e-3, checkpoint_every=10, cpu_threads=1,
                                 device="cpu")


@pytest.fixture(scope="module")
def run(grid_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("syncnet")
    logged, saved = [], []
    result = train_syncnet(grid_store, out, FAST, on_step=lambda step, values: logged.append((step, values)),
                           on_checkpoint=saved.append)
    return out, result, logged, saved


def test_loss_falls(run):
    _, result, logged, _ = run
    assert logged == result.losses and [s for s, _ in logged] == list(range(1, STEPS + 1))
    assert all(set(v) == {"loss", "dist_pos", "dist_neg", "rank_acc"} for _, v in logged)
    assert all(isinstance(x, float) and np.isfinite(x) for _, v in logged for x in v.values())
    loss = np.array([v["loss"] for _, v in logged])
    assert loss[-5:].mean() < 0.5 * loss[:5].mean(), loss.round(3)
    assert all(0.0 <= v["rank_acc"] <= 1.0 for _, v in logged)
    assert result.device == "cpu" and result.n_windows == 13 * 70 and result.batch_size == 16
    assert result.step_seconds > 0


def test_contrastive_loss_is_the_papers():
    v = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    a = torch.tensor([[3.0, 4.0], [0.3, 0.4], [3.0, 4.0]])  # distances 5, 0.5, 5
    label = torch.tensor([1.0, 0.0, 0.0])
    # genuine: d^2 = 25; off-sync within the margin: (1 - 0.5)^2 = 0.25; off-sync beyond it: 0
    assert float(contrastive_loss(v, a, label, margin=1.0)) == pytest.approx((25 + 0.25 + 0) / 6)


def test_checkpoints_are_weights_only_and_complete(run):
    out, result, _, saved = run
    assert [p.name for p in result.checkpoints] == [f"syncnet-step{s:06d}.pt" for s in (10, 20, 30)]
    assert saved == result.checkpoints and result.last_checkpoint == out / "syncnet-step000030.pt"
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["format"] == CHECKPOINT_FORMAT and ckpt["step"] == STEPS
    assert ckpt["config"] == FAST.to_dict() and ckpt["model_config"] == SyncNetConfig.preset("small").to_dict()
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"} and ckpt["optimizer"]["state"]
    model, loaded = load_syncnet(result.last_checkpoint, "cpu")
    assert isinstance(model, SyncNet) and not model.training and loaded["step"] == STEPS
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in model.state_dict().items())


def test_resume_continues_with_the_same_losses(run, grid_store, tmp_path):
    out, _, logged, _ = run
    resumed = train_syncnet(grid_store, tmp_path, replace(FAST, steps=23), resume_from=out / "syncnet-step000020.pt")
    assert [s for s, _ in resumed.losses] == [21, 22, 23] and resumed.step == 23
    for (_, got), (_, want) in zip(resumed.losses, logged[20:23]):
        np.testing.assert_allclose([got[k] for k in sorted(got)], [want[k] for k in sorted(want)], rtol=1e-4,
                                   atol=1e-6)
    assert resumed.last_checkpoint.name == "syncnet-step000023.pt"


def test_resume_refuses_a_different_setup(run, grid_store, tmp_path):
    out, _, _, _ = run
    with pytest.raises(ValueError, match="margin"):
        train_syncnet(grid_store, tmp_path, replace(FAST, margin=2.0), resume_from=out / "syncnet-step000010.pt")
    with pytest.raises(ValueError, match="model"):
        train_syncnet(grid_store, tmp_path, replace(FAST, model=replace(FAST.model, embedding=32)),
                      resume_from=out / "syncnet-step000010.pt")


def test_config_round_trip_and_presets():
    assert SyncNetTrainConfig.from_dict(FAST.to_dict()) == FAST
    default = SyncNetTrainConfig()
    assert default.model == SyncNetConfig.preset("paper") == SyncNetTrainConfig.preset("paper").model
    assert (default.min_shift, default.max_shift) == (5, 15)
    with pytest.raises(KeyError):
        SyncNetTrainConfig.preset("huge")
    with pytest.raises(ValueError):
        SyncNetTrainConfig(margin=0.0)
