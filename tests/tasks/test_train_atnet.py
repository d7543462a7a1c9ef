"""AT-net training on a real store (`grid_store`), CPU, a tiny model and few steps to stay fast (~10 s).

TINY keeps the paper's structure (conv stack, MLPs, 3-layer LSTM) with narrow layers; the paper-size model's shapes
are tested in tests/models/test_at_net.py. With stride 30 the train split gives a few dozen fixed windows, so 150
steps revisit each many times and the loss must fall clearly (measured: ~0.020 -> ~0.005); on fresh data at the
paper's lr the fall takes hundreds of steps and is too noisy for a quick test.
"""
from dataclasses import replace

import numpy as np
import pytest
import torch

from models.atvgnet import ATNetConfig
from tasks.train_atnet import CHECKPOINT_FORMAT, TrainConfig, load_atnet, train_atnet

TINY = ATNetConfig(audio_channels=(8, 8, 16, 16, 16), audio_hidden=64, audio_features=32,
                   landmark_hidden=32, landmark_features=32, lstm_hidden=32)
FAST = TrainConfig(steps=150, batch_size=8, lr=3e-3, stride=30, checkpoint_every=75, cpu_threads=1, device="cpu",
                   model=TINY)


@pytest.fixture(scope="module")
def run(grid_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("atnet")
    logged = []
    result = train_atnet(grid_store, out, FAST, on_step=lambda step, loss: logged.append((step, loss)))
    return out, result, logged


def test_loss_falls(run):
    _, result, logged = run
    assert logged == result.losses and [s for s, _ in logged] == list(range(1, 151))
    losses = np.array([loss for _, loss in logged])
    assert np.isfinite(losses).all()
    assert losses[-20:].mean() < 0.5 * losses[:20].mean(), losses.round(4)


def test_checkpoints_are_weights_only_and_complete(run):
    out, result, _ = run
    assert [p.name for p in result.checkpoints] == ["atnet-step000075.pt", "atnet-step000150.pt"]
    assert result.last_checkpoint == out / "atnet-step000150.pt" and result.step == 150
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["format"] == CHECKPOINT_FORMAT and ckpt["step"] == 150
    assert ckpt["config"] == FAST.to_dict() and ckpt["model_config"] == TINY.to_dict()
    assert ckpt["pca"]["components"].shape == (6, 136) and ckpt["pca"]["crop_size"] == 128
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert ckpt["optimizer"]["param_groups"][0]["betas"] == (0.5, 0.999)
    model, pca, _ = load_atnet(result.last_checkpoint, "cpu")
    assert not model.training and pca.n_components == 6
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in model.state_dict().items())


def test_resume_continues_with_the_same_losses(run, grid_store, tmp_path):
    out, result, logged = run
    resumed = train_atnet(grid_store, tmp_path, replace(FAST, steps=81), resume_from=out / "atnet-step000075.pt")
    assert [s for s, _ in resumed.losses] == list(range(76, 82)) and resumed.step == 81
    np.testing.assert_allclose([l for _, l in resumed.losses], [l for _, l in logged[75:81]], rtol=1e-4)
    assert resumed.last_checkpoint.name == "atnet-step000081.pt"


def test_resume_refuses_a_different_setup(run, grid_store, tmp_path):
    out, _, _ = run
    with pytest.raises(ValueError, match="batch_size"):
        train_atnet(grid_store, tmp_path, replace(FAST, batch_size=4), resume_from=out / "atnet-step000075.pt")


def test_config_round_trip():
    assert TrainConfig.from_dict(FAST.to_dict()) == FAST
    assert TrainConfig().lr == 2e-4 and (TrainConfig().beta1, TrainConfig().beta2) == (0.5, 0.999)
