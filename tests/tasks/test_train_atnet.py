"""AT-net training on a real store (`grid_store`), CPU, small model and few steps to stay fast.

The small ATNetConfig keeps the paper's structure (conv stack, MLPs, 3-layer LSTM) with narrower layers; the
paper-size model's forward shapes are tested in tests/models/test_at_net.py.
"""
import numpy as np
import pytest
import torch

from models.atvgnet import ATNetConfig
from tasks.train_atnet import CHECKPOINT_FORMAT, TrainConfig, load_atnet, train_atnet

SMALL = ATNetConfig(audio_channels=(16, 32, 32, 32, 64), audio_hidden=128, audio_features=64,
                    landmark_hidden=64, landmark_features=64, lstm_hidden=64)
FAST = TrainConfig(steps=60, batch_size=8, lr=1e-3, checkpoint_every=30, cpu_threads=1, device="cpu", model=SMALL)


@pytest.fixture(scope="module")
def run(grid_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("atnet")
    logged = []
    result = train_atnet(grid_store, out, FAST, on_step=lambda step, loss: logged.append((step, loss)))
    return out, result, logged


def test_loss_falls(run):
    _, result, logged = run
    assert logged == result.losses and [s for s, _ in logged] == list(range(1, 61))
    losses = np.array([loss for _, loss in logged])
    assert np.isfinite(losses).all()
    assert losses[-15:].mean() < 0.75 * losses[:15].mean(), losses.round(4)


def test_checkpoints_are_weights_only_and_complete(run):
    out, result, _ = run
    assert [p.name for p in result.checkpoints] == ["atnet-step000030.pt", "atnet-step000060.pt"]
    assert result.last_checkpoint == out / "atnet-step000060.pt" and result.step == 60
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["format"] == CHECKPOINT_FORMAT and ckpt["step"] == 60
    assert ckpt["config"] == FAST.to_dict() and ckpt["model_config"] == SMALL.to_dict()
    assert ckpt["pca"]["components"].shape == (6, 136) and ckpt["pca"]["crop_size"] == 128
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert ckpt["optimizer"]["param_groups"][0]["betas"] == (0.5, 0.999)
    model, pca, _ = load_atnet(result.last_checkpoint, "cpu")
    assert not model.training and pca.n_components == 6
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in model.state_dict().items())


def test_resume_continues_with_the_same_losses(run, grid_store, tmp_path):
    out, result, logged = run
    resumed = train_atnet(grid_store, tmp_path, FAST.__class__(**{**FAST.__dict__, "steps": 36}),
                          resume_from=out / "atnet-step000030.pt")
    assert [s for s, _ in resumed.losses] == list(range(31, 37)) and resumed.step == 36
    np.testing.assert_allclose([l for _, l in resumed.losses], [l for _, l in logged[30:36]], rtol=1e-4)
    assert resumed.last_checkpoint.name == "atnet-step000036.pt"


def test_resume_refuses_a_different_setup(run, grid_store, tmp_path):
    out, _, _ = run
    with pytest.raises(ValueError, match="batch_size"):
        train_atnet(grid_store, tmp_path, FAST.__class__(**{**FAST.__dict__, "batch_size": 4}),
                    resume_from=out / "atnet-step000030.pt")


def test_config_round_trip():
    assert TrainConfig.from_dict(FAST.to_dict()) == FAST
    assert TrainConfig().lr == 2e-4 and (TrainConfig().beta1, TrainConfig().beta2) == (0.5, 0.999)
