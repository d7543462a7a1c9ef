"""ATVGnet's two stages learn (`models.atvgnet.stages`), on the real sample store, CPU, one torch thread.

AT-net: TINY keeps the paper's structure with narrow layers; with stride 30 the train split gives a few dozen fixed
windows, so 150 steps revisit each many times and the loss must fall clearly (measured: ~0.020 -> ~0.005).
VG-net: the "small" preset at batch 2, 20 steps (~1.3 s a step here); at lr 2e-3 the dynamic pixel loss falls
clearly within them (measured: mean of the first 5 steps ~1.8, of the last 5 ~0.9).
"""
import numpy as np
import pytest
import torch

from models.atvgnet import ATNetConfig
from models.atvgnet.samples import sample_grids
from tests.conftest import train_small

TINY = ATNetConfig(audio_channels=(8, 8, 16, 16, 16), audio_hidden=64, audio_features=32,
                   landmark_hidden=32, landmark_features=32, lstm_hidden=32)


def test_atnet_loss_falls(grid_store, tmp_path):
    result = train_small(grid_store, tmp_path, "atvgnet", "atnet", steps=150, batch_size=8, lr=3e-3, stride=30,
                         checkpoint_every=0, model=TINY)
    losses = np.array([v["loss"] for _, v in result.losses])
    assert np.isfinite(losses).all() and losses[-20:].mean() < 0.5 * losses[:20].mean(), losses.round(4)
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["extra"]["pca"]["components"].shape == (6, 136) and ckpt["extra"]["pca"]["crop_size"] == 128
    assert ckpt["optimizers"]["atnet"]["param_groups"][0]["betas"] == (0.5, 0.999)


def test_vgnet_pixel_loss_falls_and_shows_samples(grid_store, tmp_path):
    from models.registry import get_stage
    from tasks.training import Devices, train_stage

    stage = get_stage("atvgnet", "vgnet")
    cfg = stage.Config.preset("small", steps=20, batch_size=2, lr=2e-3, checkpoint_every=0, sample_every=10)
    samples = []
    result = train_stage("atvgnet", stage, cfg, grid_store, tmp_path, Devices(accelerator="cpu"),
                         on_sample=lambda step, images: samples.append((step, images)))
    keys = {"g/pixel", "g/gan", "g/landmark", "g/total", "d/real", "d/fake", "d/landmark_real", "d/landmark_fake",
            "d/total"}
    assert all(set(v) == keys for _, v in result.losses)
    pixel = np.array([v["g/pixel"] for _, v in result.losses])
    assert pixel[-5:].mean() < 0.7 * pixel[:5].mean(), pixel.round(3)
    assert result.samples_per_second == pytest.approx(2 / result.step_seconds) and result.n_samples > 100
    assert [s for s, _ in samples] == [10, 20]
    images = samples[-1][1]
    # 2 clips x (generated row, real row) of 8 frames of 128 px, 2 px white gaps
    assert images["frames"].shape == (4 * 130 - 2, 8 * 130 - 2, 3) and images["frames"].dtype == np.uint8
    assert images["attention"].shape == (2 * 130 - 2, 8 * 130 - 2, 3) and images["frames"].std() > 10


def test_sample_grids_layout():
    fake = torch.full((3, 16, 3, 128, 128), -1.0)  # black
    real = torch.ones(3, 16, 3, 128, 128)  # white
    attention = torch.full((3, 16, 1, 128, 128), 0.5)
    grids = sample_grids(fake, real, attention, max_items=1, max_frames=4)
    assert grids["frames"].shape == (2 * 130 - 2, 4 * 130 - 2, 3)
    assert (grids["frames"][:128, :128] == 0).all() and (grids["frames"][130:, :128] == 255).all()
    assert (grids["attention"][:, :128] == 128).all()


def test_ablation_switches_live_in_the_vgnet_config():
    from models.atvgnet import VGNetTrainConfig

    cfg = VGNetTrainConfig.preset("paper")
    assert cfg.generator.use_dma and cfg.generator.use_mmcrnn and cfg.loss.use_dal and cfg.loss.use_rd
    assert (cfg.lr, cfg.beta1, cfg.beta2, cfg.T) == (2e-4, 0.5, 0.999, 16)
