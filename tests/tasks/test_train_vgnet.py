"""VG-net + regression discriminator training on a real store (`grid_store`), CPU, the "small" presets at batch 2,
T = 16, one torch thread (the CPU is small and shared).

20 steps take ~25-30 s here (~1.3 s a step, nearly all of it the generator's backward). At lr 2e-3 the generator's
dynamic pixel loss falls clearly within them (measured: mean of the first 5 steps ~1.8, of the last 5 ~0.9); at the
paper's 2e-4 it falls too (~1.9 -> ~1.3 over 30 steps), more slowly than a quick test can wait for.
"""
from dataclasses import replace

import numpy as np
import pytest
import torch

from models.atvgnet.discriminator import DiscriminatorConfig
from models.atvgnet.losses import VGNetLossConfig
from models.atvgnet.vg_net import VGNet, VGNetConfig
from tasks.train_vgnet import CHECKPOINT_FORMAT, VGNetTrainConfig, load_vgnet, sample_grids, train_vgnet

STEPS = 20
FAST = VGNetTrainConfig.preset("small", steps=STEPS, batch_size=2, T=16, lr=2e-3, checkpoint_every=10,
                               sample_every=10, cpu_threads=1, device="cpu")


@pytest.fixture(scope="module")
def run(grid_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("vgnet")
    logged, samples = [], []
    result = train_vgnet(grid_store, out, FAST, on_step=lambda step, losses: logged.append((step, losses)),
                         on_sample=lambda step, images: samples.append((step, images)))
    return out, result, logged, samples


def test_generator_pixel_loss_falls(run):
    _, result, logged, _ = run
    assert logged == result.losses and [s for s, _ in logged] == list(range(1, STEPS + 1))
    keys = {"g/pixel", "g/gan", "g/landmark", "g/total", "d/real", "d/fake", "d/landmark_real", "d/landmark_fake",
            "d/total"}
    assert all(set(losses) == keys for _, losses in logged)
    assert all(isinstance(v, float) and np.isfinite(v) for _, losses in logged for v in losses.values())
    pixel = np.array([losses["g/pixel"] for _, losses in logged])
    assert pixel[-5:].mean() < 0.7 * pixel[:5].mean(), pixel.round(3)
    assert result.step_seconds > 0 and result.samples_per_second == pytest.approx(2 / result.step_seconds)
    assert result.device == "cpu" and result.n_windows > 100


def test_samples_are_uint8_grids(run):
    _, _, _, samples = run
    assert [s for s, _ in samples] == [10, 20]
    images = samples[-1][1]
    assert set(images) == {"frames", "attention"}
    # 2 clips x (generated row, real row) of 8 frames of 128 px, 2 px white gaps
    assert images["frames"].shape == (4 * 130 - 2, 8 * 130 - 2, 3) and images["frames"].dtype == np.uint8
    assert images["attention"].shape == (2 * 130 - 2, 8 * 130 - 2, 3) and images["attention"].dtype == np.uint8
    assert images["frames"].std() > 10  # faces, not a flat image


def test_sample_grids_layout():
    fake = torch.full((3, 16, 3, 128, 128), -1.0)  # black
    real = torch.ones(3, 16, 3, 128, 128)  # white
    attention = torch.full((3, 16, 1, 128, 128), 0.5)
    grids = sample_grids(fake, real, attention, max_items=1, max_frames=4)
    assert grids["frames"].shape == (2 * 130 - 2, 4 * 130 - 2, 3)
    assert (grids["frames"][:128, :128] == 0).all() and (grids["frames"][130:, :128] == 255).all()
    assert (grids["attention"][:, :128] == 128).all()


def test_checkpoints_are_weights_only_and_complete(run):
    out, result, _, _ = run
    assert [p.name for p in result.checkpoints] == ["vgnet-step000010.pt", "vgnet-step000020.pt"]
    assert result.last_checkpoint == out / "vgnet-step000020.pt" and result.step == STEPS
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["format"] == CHECKPOINT_FORMAT and ckpt["step"] == STEPS
    assert ckpt["config"] == FAST.to_dict()
    assert ckpt["generator_config"] == VGNetConfig.preset("small").to_dict()
    assert ckpt["discriminator_config"] == DiscriminatorConfig.preset("small").to_dict()
    assert ckpt["loss_config"] == VGNetLossConfig().to_dict()
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"}
    for opt in ("opt_g", "opt_d"):
        assert ckpt[opt]["param_groups"][0]["betas"] == (0.5, 0.999) and ckpt[opt]["state"]
    generator, loaded = load_vgnet(result.last_checkpoint, "cpu")
    assert isinstance(generator, VGNet) and not generator.training and loaded["step"] == STEPS
    assert all(torch.equal(v, ckpt["generator"][k]) for k, v in generator.state_dict().items())
    with torch.no_grad():
        frames, attention = generator(torch.zeros(1, 3, 128, 128), torch.zeros(1, 4, 136), torch.zeros(1, 136))
    assert frames.shape == (1, 4, 3, 128, 128) and attention.shape == (1, 4, 1, 128, 128)


def test_resume_continues_with_the_same_losses(run, grid_store, tmp_path):
    out, _, logged, _ = run
    resumed = train_vgnet(grid_store, tmp_path, replace(FAST, steps=13), resume_from=out / "vgnet-step000010.pt")
    assert [s for s, _ in resumed.losses] == [11, 12, 13] and resumed.step == 13
    for (_, got), (_, want) in zip(resumed.losses, logged[10:13]):
        assert set(got) == set(want)
        np.testing.assert_allclose([got[k] for k in sorted(got)], [want[k] for k in sorted(want)], rtol=1e-4,
                                   atol=1e-6)
    assert resumed.last_checkpoint.name == "vgnet-step000013.pt"


def test_resume_refuses_a_different_setup(run, grid_store, tmp_path):
    out, _, _, _ = run
    with pytest.raises(ValueError, match="batch_size"):
        train_vgnet(grid_store, tmp_path, replace(FAST, batch_size=4), resume_from=out / "vgnet-step000010.pt")
    changed_loss = replace(FAST, loss=VGNetLossConfig(use_dal=False))
    with pytest.raises(ValueError, match="loss"):
        train_vgnet(grid_store, tmp_path, changed_loss, resume_from=out / "vgnet-step000010.pt")


def test_config_round_trip_and_presets():
    assert VGNetTrainConfig.from_dict(FAST.to_dict()) == FAST
    ablated = replace(FAST, generator=replace(FAST.generator, use_dma=False), loss=VGNetLossConfig(use_rd=False))
    assert VGNetTrainConfig.from_dict(ablated.to_dict()) == ablated
    default = VGNetTrainConfig()
    assert default.lr == 2e-4 and (default.beta1, default.beta2) == (0.5, 0.999) and default.T == 16
    assert default.generator == VGNetConfig.preset("paper") == VGNetTrainConfig.preset("paper").generator
    assert default.discriminator == DiscriminatorConfig.preset("paper")
    with pytest.raises(KeyError):
        VGNetTrainConfig.preset("huge")
