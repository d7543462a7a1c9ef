"""The lip GAN's first two stages through the one training loop (`tasks.training.train_stage`) on the real sample
store: the flow net learns the store's Farneback flow (its end-point error falls below predicting no motion), the
perceptual autoencoder's reconstruction error falls, both write weights-only checkpoints that resume exactly; the GAN
trains with their networks frozen (its checkpoint carries them, so it resumes without them), and each Table 2
switch changes what trains. (Not yet a registered system: its generator and evaluation come next.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from models.lipgan.stages import FlowNetStage, LipGANStage, PerceptualStage, end_point_error
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


# ------------------------------------------------------------------------------------------------------ the GAN

@pytest.fixture(scope="module")
def earlier(grid_store, tmp_path_factory):
    """{stage: checkpoint} of 2-step runs of the flow net and the autoencoder (the GAN's frozen inputs)."""
    out = tmp_path_factory.mktemp("lipgan-earlier")
    return {s.name: train(s, grid_store, out, steps=2, batch_size=4)[0].last_checkpoint
            for s in (FlowNetStage(), PerceptualStage())}


def one_step_setup(stage, cfg):
    """(fabric, modules, frozen, wrapped, optimizers) for calling `stage.step` by hand: seeded modules, the networks it
    uses frozen at random small-preset weights, wrapped holding both."""
    fabric = Devices(accelerator="cpu").fabric()
    torch.manual_seed(0)
    modules = stage.modules(cfg)
    frozen = {name: used.modules(used.Config.preset("small"))[module].eval().requires_grad_(False)
              for name, (used, module) in stage.uses(cfg).items()}
    wrapped, optimizers = setup(fabric, modules, stage.optimizers(cfg, modules))
    wrapped.update(frozen)
    return fabric, modules, frozen, wrapped, optimizers


def gan(store, out, inputs, **fields):
    stage = LipGANStage()
    cfg = stage.Config.preset("small", **{"steps": 2, "checkpoint_every": 0, "sample_every": 0, **fields})
    return train_stage("lipgan", stage, cfg, store, out, Devices(accelerator="cpu"), inputs=inputs), cfg


def test_the_gan_trains_with_its_frozen_inputs(grid_store, tmp_path, earlier):
    result, cfg = gan(grid_store, tmp_path, earlier, steps=3)
    names = set(result.losses[0][1])
    assert {"g/gan", "g/corr", "g/perceptual", "g/pixel", "g/total", "d/real", "d/fake", "d/mismatch"} <= names
    assert all(np.isfinite(v) for _, values in result.losses for v in values.values())
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert set(ckpt["modules"]) == {"generator", "discriminator", "phi_s", "phi_v"}
    assert set(ckpt["frozen"]) == {"flownet", "autoencoder"} and ckpt["extra"]["mel_stats"]["mean"].shape == (32,)
    # the frozen networks are the earlier stages' weights, unchanged by three GAN steps
    for name, stage, module in (("flownet", "flownet", "flownet"), ("autoencoder", "perceptual", "autoencoder")):
        source = torch.load(earlier[stage], map_location="cpu", weights_only=True)["modules"][module]
        for key, value in source.items():
            torch.testing.assert_close(ckpt["frozen"][name]["state"][key], value, rtol=0, atol=0)


def test_the_gan_refuses_to_start_without_its_inputs(grid_store, tmp_path):
    with pytest.raises(ValueError, match="uses the trained flownet of stage flownet: train that stage first"):
        gan(grid_store, tmp_path, {})


def test_the_gan_resumes_exactly_without_its_inputs(grid_store, tmp_path, earlier):
    full, _ = gan(grid_store, tmp_path / "full", earlier, steps=4)
    part, cfg = gan(grid_store, tmp_path / "part", earlier, steps=4, checkpoint_every=2)
    resumed = train_stage("lipgan", LipGANStage(), cfg, grid_store, tmp_path / "resumed", Devices(accelerator="cpu"),
                          resume_from=part.checkpoints[0])  # the frozen networks come from the checkpoint
    assert resumed.losses == full.losses[2:] == part.losses[2:]


@pytest.mark.parametrize("fields,absent_losses,absent_modules", [
    ({"loss": {"use_gan": False}}, {"g/gan", "d/total"}, {"discriminator"}),
    ({"loss": {"use_pixel": False}}, {"g/pixel"}, set()),
    ({"loss": {"use_perceptual": False}}, {"g/perceptual"}, {"autoencoder"}),
    ({"loss": {"corr": "none"}}, {"g/corr"}, {"phi_s", "phi_v"}),
    ({"loss": {"corr": "non_derivative"}}, set(), set()),
    ({"loss": {"mismatch_negatives": False}}, {"d/mismatch"}, set()),
    ({"d_streams": "two"}, set(), set()),
    ({"d_streams": "two", "loss": {"corr": "none"}}, {"g/corr"}, {"phi_s", "phi_v"}),
    ({"motion": "frame_difference"}, set(), {"flownet"}),
    ({"motion": "farneback"}, set(), set()),
], ids=["no-gan", "no-pixel", "no-perceptual", "no-corr", "non-derivative", "no-mismatch", "two-stream",
        "two-stream-no-corr", "frame-differences", "farneback"])
def test_each_ablation_changes_what_trains(grid_store, fields, absent_losses, absent_modules):
    from dataclasses import replace

    from models.lipgan.losses import LipGANLossConfig

    stage = LipGANStage()
    base = stage.Config.preset("small")
    cfg = replace(base, **{k: v for k, v in fields.items() if k != "loss"},
                  loss=LipGANLossConfig(**fields.get("loss", {})))
    fabric, modules, frozen, wrapped, optimizers = one_step_setup(stage, cfg)
    assert not (set(modules) | set(frozen)) & absent_modules
    dataset = stage.dataset(grid_store, "train", cfg)
    batch = default_collate([dataset[i] for i in range(4)])
    before = {n: [p.detach().clone() for p in m.parameters()] for n, m in modules.items()}
    out = stage.step(wrapped, optimizers, batch, cfg, fabric)
    assert not set(out.losses) & absent_losses and "g/total" in out.losses
    for name, module in modules.items():  # every trained network moved, the frozen ones got no gradient
        assert any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters())), name
    assert all(p.grad is None for m in frozen.values() for p in m.parameters())
    if fields.get("d_streams") == "two" and "discriminator" in modules:
        assert type(modules["discriminator"]).__name__ == "TwoStreamDiscriminator"
    if fields.get("motion") == "frame_difference":
        assert modules["phi_v"].cfg.motion_channels == 3 and len(modules["phi_v"].convs) == 5  # 32 px -> 1


def test_the_gan_losses_fall_over_a_few_dozen_steps(grid_store, tmp_path, earlier):
    encoder = train(PerceptualStage(), grid_store, tmp_path, steps=60, batch_size=16)[0].last_checkpoint  # trained
    result, _ = gan(grid_store, tmp_path, {**earlier, "perceptual": encoder}, steps=30, batch_size=4)
    losses = {k: np.array([v[k] for _, v in result.losses]) for k in result.losses[0][1]}
    # g/corr is left to the one-batch test below: over 30 fresh batches of 4 its fall is within the batches' spread
    for term in ("g/pixel", "g/perceptual", "d/total"):
        assert losses[term][-5:].mean() < 0.8 * losses[term][:3].mean(), (term, losses[term].round(3))


def test_the_correlation_loss_falls_on_one_batch(grid_store):
    # ℓ_corr (Eq. 1) trains φ_s, φ_v and the generator's audio features: on one real batch it falls to a fraction
    stage = LipGANStage()
    cfg = stage.Config.preset("small")
    fabric, _, _, wrapped, optimizers = one_step_setup(stage, cfg)
    dataset = stage.dataset(grid_store, "train", cfg)
    batch = default_collate([dataset[i] for i in (3, 20, 50, 90)])
    corr = np.array([float(stage.step(wrapped, optimizers, batch, cfg, fabric).losses["g/corr"]) for _ in range(12)])
    assert corr[-3:].mean() < 0.25 * corr[0], corr.round(3)
