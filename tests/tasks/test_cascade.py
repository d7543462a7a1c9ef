"""The cascade's model directory and resume points (`tasks.cascade`), from real 2-step training runs on the
sample store (small presets, CPU)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from models.atvgnet.at_net import ATNetConfig
from tasks import cascade
from tasks.generate import load_vgnet
from tasks.train_atnet import TrainConfig, load_atnet, train_atnet
from tasks.train_vgnet import VGNetTrainConfig, train_vgnet


@pytest.fixture(scope="module")
def checkpoints(grid_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("checkpoints")
    atnet = train_atnet(grid_store, out, TrainConfig(model=ATNetConfig.preset("small"), steps=2, batch_size=2,
                                                     checkpoint_every=1, cpu_threads=1, device="cpu"))
    vgnet = train_vgnet(grid_store, out, VGNetTrainConfig.preset("small", steps=2, batch_size=1, checkpoint_every=1,
                                                                 sample_every=0, cpu_threads=1, device="cpu"))
    return out, atnet.last_checkpoint, vgnet.last_checkpoint


def test_checkpoint_stage_and_latest(checkpoints, tmp_path):
    out, atnet, vgnet = checkpoints
    assert cascade.checkpoint_stage(atnet) == "atnet" and cascade.checkpoint_stage(vgnet) == "vgnet"
    assert cascade.latest_checkpoints(out) == {"atnet": out / "atnet-step000002.pt",
                                               "vgnet": out / "vgnet-step000002.pt", "syncnet": None}
    assert cascade.latest_checkpoints(tmp_path / "missing") == {"atnet": None, "vgnet": None, "syncnet": None}
    names = ["checkpoints/vgnet-step000100.pt", "checkpoints/vgnet-step000020.pt", "checkpoints/atnet-step000300.pt",
             "checkpoints/vgnet-step000100.pt.tmp", "checkpoints/notes.txt"]  # as MLflow lists a run's artifacts
    assert cascade.latest_names(names) == {"atnet": "checkpoints/atnet-step000300.pt",
                                           "vgnet": "checkpoints/vgnet-step000100.pt", "syncnet": None}
    with pytest.raises(FileNotFoundError):
        cascade.checkpoint_stage(tmp_path / "missing.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        cascade.checkpoint_stage(tmp_path / "notes.pt")
    torch.save({"format": "someone-else/1"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a talkface checkpoint"):
        cascade.checkpoint_stage(tmp_path / "other.pt")


def test_resume_points(checkpoints):
    out, atnet, vgnet = checkpoints
    # a VG-net checkpoint resumes VG-net, with the AT-net its run trained
    assert cascade.resume_points(out / "vgnet-step000001.pt") == {"atnet": atnet, "vgnet": out / "vgnet-step000001.pt",
                                                                  "syncnet": None}
    # an AT-net checkpoint resumes AT-net; VG-net starts over after it
    assert cascade.resume_points(out / "atnet-step000001.pt") == {"atnet": out / "atnet-step000001.pt", "vgnet": None,
                                                                  "syncnet": None}


def test_export_model_is_inference_only_and_loads(checkpoints, tmp_path):
    _, atnet, vgnet = checkpoints
    model_dir = cascade.export_model(atnet, vgnet, tmp_path / "model", {"store_version": "abc"})
    a, v = cascade.model_files(model_dir)
    for path in (a, v):
        state = torch.load(path, weights_only=True)
        assert not {"optimizer", "opt_g", "opt_d", "rng", "discriminator"} & set(state)
        assert path.stat().st_size < (atnet if path == a else vgnet).stat().st_size
    model, pca, _ = load_atnet(a, "cpu")
    assert pca.crop_size == 128 and not model.training
    assert load_vgnet(v).cfg.image_size == 128
    card = json.loads((model_dir / "model.json").read_text())
    assert card["atnet_steps"] == card["vgnet_steps"] == 2 and card["store_version"] == "abc"
    (model_dir / "vgnet.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no vgnet.pt"):
        cascade.model_files(model_dir)
    with pytest.raises(ValueError):
        cascade.export_model(vgnet, atnet, tmp_path / "swapped")
