"""SyncNet's stage learns (`models.syncnet.stages`): the "small" preset at batch 16 on the real sample store, CPU.
30 steps take ~3 s; the contrastive loss falls steeply at first (measured: mean of the first 5 steps ~4.3, of the
last 5 ~0.43 at lr 1e-3), mostly as the embedding distances settle to the margin's scale; whether the model learns
sync is what tests/tasks/test_sync.py checks, with a longer run."""
import numpy as np
import pytest
import torch

from models.syncnet.stages import contrastive_loss
from tests.conftest import train_small


def test_loss_falls(grid_store, tmp_path):
    result = train_small(grid_store, tmp_path, "syncnet", "syncnet", steps=30, batch_size=16, lr=1e-3,
                         checkpoint_every=0)
    assert all(set(v) == {"loss", "dist_pos", "dist_neg", "rank_acc"} for _, v in result.losses)
    loss = np.array([v["loss"] for _, v in result.losses])
    assert loss[-5:].mean() < 0.5 * loss[:5].mean(), loss.round(3)
    assert all(0.0 <= v["rank_acc"] <= 1.0 for _, v in result.losses)
    assert result.n_samples == 13 * 70 * 8  # 13 train clips x 70 windows x 8 negatives each


def test_contrastive_loss_is_the_papers():
    v = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    a = torch.tensor([[3.0, 4.0], [0.3, 0.4], [3.0, 4.0]])  # distances 5, 0.5, 5
    label = torch.tensor([1.0, 0.0, 0.0])
    # genuine: d^2 = 25; off-sync within the margin: (1 - 0.5)^2 = 0.25; off-sync beyond it: 0
    assert float(contrastive_loss(v, a, label, margin=1.0)) == pytest.approx((25 + 0.25 + 0) / 6)
