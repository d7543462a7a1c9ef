"""The Vougioukas et al. 2019 stage on the one training loop, on the real sample store (small preset, CPU): it
trains all four networks with finite losses, resumes exactly, each Tab. 5 switch removes its discriminator and its
terms, and the lower-half reconstruction falls."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.sda.stages import SDAStage
from tasks.training import Devices, train_stage


def train(store, out, resume_from=None, **fields):
    stage = SDAStage()
    cfg = stage.Config.preset("small", **{"steps": 2, "checkpoint_every": 1, "sample_every": 1, **fields})
    samples = []
    result = train_stage("sda", stage, cfg, store, out, Devices(accelerator="cpu"), resume_from=resume_from,
                         on_sample=lambda step, images: samples.append(images))
    return result, samples


def test_trains_every_network_and_resumes_exactly(grid_store, tmp_path):
    result, samples = train(grid_store, tmp_path / "full")
    names = set(result.losses[0][1])
    assert names == {"d/frame", "d/sync", "d/sequence", "g/frame", "g/sync", "g/sequence", "g/rec", "g/total"}
    assert all(np.isfinite(v) for _, values in result.losses for v in values.values())
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert set(ckpt["modules"]) == set(ckpt["optimizers"]) == {"generator", "frame_d", "sync_d", "sequence_d"}
    assert samples[0]["faces"].shape == (256, 8 * 96, 3)  # 8 generated frames over 8 real ones
    resumed, _ = train(grid_store, tmp_path / "resumed", resume_from=result.checkpoints[0])
    assert [s for s, _ in resumed.losses] == [2]
    np.testing.assert_allclose([resumed.losses[0][1][k] for k in sorted(names)],
                               [result.losses[1][1][k] for k in sorted(names)], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("fields,gone", [
    ({"loss.use_adv": False}, {"frame", "sync", "sequence"}),
    ({"loss.use_frame_d": False}, {"frame"}),
    ({"loss.use_sync_d": False}, {"sync"}),
    ({"loss.use_seq_d": False}, {"sequence"}),
])
def test_each_switch_removes_its_discriminator_and_terms(grid_store, tmp_path, fields, gone):
    stage = SDAStage()
    cfg = stage.Config.preset("small", steps=1, checkpoint_every=0, sample_every=0)
    cfg = replace(cfg, loss=replace(cfg.loss, **{k.split(".")[1]: v for k, v in fields.items()}))
    result = train_stage("sda", stage, cfg, grid_store, tmp_path, Devices(accelerator="cpu"))
    names = set(result.losses[0][1])
    assert not any(n.endswith("/" + g) for n in names for g in gone) and "g/rec" in names
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert not {f"{g}_d" for g in gone} & set(ckpt["modules"])


def test_without_l1_the_reconstruction_term_is_gone(grid_store, tmp_path):
    result, _ = train(grid_store, tmp_path, steps=1, checkpoint_every=0, sample_every=0, max_frames=8)
    assert "g/rec" in result.losses[0][1]
    stage = SDAStage()
    cfg = stage.Config.preset("small", steps=1, checkpoint_every=0, sample_every=0, max_frames=8)
    cfg = replace(cfg, loss=replace(cfg.loss, use_l1=False))
    result = train_stage("sda", stage, cfg, grid_store, tmp_path / "no-l1", Devices(accelerator="cpu"))
    assert "g/rec" not in result.losses[0][1] and "g/frame" in result.losses[0][1]


def test_the_lower_half_reconstruction_falls(grid_store, tmp_path):  # G at lr 1e-3, so 30 CPU steps show it
    result, _ = train(grid_store, tmp_path, steps=30, checkpoint_every=0, sample_every=0, max_frames=8, lr_g=1e-3)
    rec = np.array([v["g/rec"] for _, v in result.losses])
    assert rec[-5:].mean() < 0.8 * rec[:3].mean(), rec.round(3)


def test_the_loop_follows_the_papers_decay(grid_store, tmp_path):  # P §3.3: G -2 %, each D -10 % per decay_every
    stage = SDAStage()
    cfg = stage.Config.preset("small", decay_every=10.0)
    assert stage.learning_rates(cfg, 9.9) == {"generator": 1e-4, "frame_d": 1e-4, "sequence_d": 1e-5, "sync_d": 1e-5}
    rates = stage.learning_rates(cfg, 20.0)  # two drops
    assert rates["generator"] == pytest.approx(1e-4 * 0.98**2) and rates["sync_d"] == pytest.approx(1e-5 * 0.9**2)
    assert set(stage.learning_rates(replace(cfg, loss=replace(cfg.loss, use_sync_d=False)), 0)) == {
        "generator", "frame_d", "sequence_d"}
    result, _ = train(grid_store, tmp_path / "decay", decay_every=0.01)  # several drops by the second step
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    expected = stage.learning_rates(stage.Config.preset("small", decay_every=0.01), 1 * 2 / result.n_samples)
    assert expected["generator"] < 1e-4 * 0.98**4
    for name, lr in expected.items():
        assert ckpt["optimizers"][name]["param_groups"][0]["lr"] == pytest.approx(lr)


def test_the_static_baseline_is_one_switch(grid_store, tmp_path):
    stage = SDAStage()
    cfg = stage.Config.preset("small", steps=1, checkpoint_every=0, sample_every=0, max_frames=8,
                              static_baseline=True)
    assert not cfg.generator.temporal and cfg.generator.noise == "off" and cfg.loss.adversarial == ("frame",)
    assert stage.Config.from_dict(cfg.to_dict()) == cfg
    result = train_stage("sda", stage, cfg, grid_store, tmp_path, Devices(accelerator="cpu"))
    assert set(result.losses[0][1]) == {"d/frame", "g/frame", "g/rec", "g/total"}
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert set(ckpt["modules"]) == {"generator", "frame_d"}
    assert not any(k.startswith(("content_rnn", "noise_rnn")) for k in ckpt["modules"]["generator"])
