"""The lip GAN's first two stages through the one training loop (`tasks.training.train_stage`) on the real sample
store: the flow net learns the store's Farneback flow (its end-point error falls below predicting no motion), the
perceptual autoencoder's reconstruction error falls, and both write weights-only checkpoints that resume exactly.
(Neither is a registered system's stage yet: the GAN stage and the generator come next.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from models.lipgan.stages import FlowNetStage, PerceptualStage, end_point_error
from tasks.training import Devices, setup, train_stage


def train(stage, store, out, **fields):
    cfg = stage.Config.preset("small", **{"checkpoint_every": 0, "sample_every": 0, **fields})
    return train_stage("lipgan", stage, cfg, store, out, Devices(accelerator="cpu")), cfg


def test_end_point_error():
    a = torch.zeros(1, 2, 3, 4, 4)
    b = a.clone()
    b[:, 0] = 3.0
    b[:, 1] = 4.0
    assert end_point_error(a, b) == 5.0 and end_point_error(a, a) == 0.0


def test_the_flow_net_learns_the_stores_farneback_flow(grid_store):
    # GRID mouths move less than a pixel a frame: on the small preset's 8x8 quarter grid, "no motion" is already a
    # good guess, so the net is asked to fit one real batch, and must beat it clearly
    torch.manual_seed(0)
    stage = FlowNetStage()
    cfg = stage.Config.preset("small", lr=1e-3)
    dataset = stage.dataset(grid_store, "train", cfg)
    batch = default_collate([dataset[i] for i in (3, 20, 50, 90)])
    fabric = Devices(accelerator="cpu").fabric()
    modules = stage.modules(cfg)
    modules, optimizers = setup(fabric, modules, stage.optimizers(cfg, modules))
    losses = [stage.step(modules, optimizers, batch, cfg, fabric).losses for _ in range(200)]
    epe, zero = float(losses[-1]["epe"]), float(losses[-1]["epe_zero"])
    assert epe < 0.75 * zero and epe < 0.75 * float(losses[0]["epe"]), (float(losses[0]["epe"]), epe, zero)


def test_the_flow_net_trains_through_the_loop(grid_store, tmp_path):
    result, cfg = train(FlowNetStage(), grid_store, tmp_path, steps=3, batch_size=4)
    assert all(np.isfinite(v["epe"]) for _, v in result.losses)
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert (ckpt["system"], ckpt["stage"], ckpt["step"]) == ("lipgan", "flownet", 3)
    assert ckpt["config"] == cfg.to_dict() and set(ckpt["modules"]) == {"flownet"}


def test_the_perceptual_autoencoder_learns_to_reconstruct_mouths(grid_store, tmp_path):
    samples = []
    stage = PerceptualStage()
    cfg = stage.Config.preset("small", steps=40, batch_size=8, checkpoint_every=0, sample_every=40)
    result = train_stage("lipgan", stage, cfg, grid_store, tmp_path, Devices(accelerator="cpu"),
                         on_sample=lambda step, images: samples.append(images))
    mse = np.array([v["mse"] for _, v in result.losses])
    assert mse[-5:].mean() < 0.6 * mse[:3].mean(), mse.round(4)
    image = samples[0]["reconstruction"]
    assert image.dtype == np.uint8 and image.shape == (64, 8 * 32, 3)  # 8 reconstructions over 8 real mouths


@pytest.mark.parametrize("stage", [FlowNetStage(), PerceptualStage()], ids=lambda s: s.name)
def test_resume_gives_the_uninterrupted_losses(grid_store, tmp_path, stage):
    full, _ = train(stage, grid_store, tmp_path / "full", steps=4, batch_size=4)
    first, _ = train(stage, grid_store, tmp_path / "part", steps=4, batch_size=4, checkpoint_every=2)
    resumed = train_stage("lipgan", stage, stage.Config.preset("small", steps=4, batch_size=4, checkpoint_every=2,
                                                               sample_every=0),
                          grid_store, tmp_path / "resumed", Devices(accelerator="cpu"),
                          resume_from=first.checkpoints[0])
    assert [s for s, _ in resumed.losses] == [3, 4]
    assert resumed.losses == full.losses[2:] == first.losses[2:]
