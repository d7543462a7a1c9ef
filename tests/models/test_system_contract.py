"""What every registered system and stage promises the rest of talkface, checked for each (this replaces the
per-trainer copies of the same tests): documented presets that round-trip, training through the one loop with
finite losses and weights-only checkpoints that hold every module, exact resume, refusal of a changed config and of
another stage's checkpoint, and an inference export that loads back. Each stage trains 2 steps at its "small"
preset on the real sample store (CPU)."""
from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import torch

from models.config import TrainConfig
from models.registry import SYSTEMS, get_stage, get_system
from models.weights import read_weights
from storage import shards
from storage.crops import CROPS, Crop
from tasks import model_dir
from tasks.training import Devices, train_stage

STAGES = [(system.name, stage.name) for system in SYSTEMS.values() for stage in system.stages]
TINY_RUN = {"atnet": dict(batch_size=4), "vgnet": dict(batch_size=2, sample_every=1), "syncnet": dict(batch_size=8),
            "flownet": dict(batch_size=2), "perceptual": dict(batch_size=4),
            "lipgan": dict(batch_size=2, sample_every=1), "sda": dict(batch_size=2, max_frames=8),
            "word": dict(batch_size=4), "mi": dict(batch_size=4), "a2l": dict(batch_size=4),
            "l2f": dict(batch_size=2, sample_every=1)}


def run(store, out, system, stage, resume_from=None, inputs=None, **fields_):
    s = get_stage(system, stage)
    cfg = s.Config.preset("small", **{"steps": 2, "checkpoint_every": 1, **TINY_RUN.get(stage, {}), **fields_})
    samples = []
    result = train_stage(system, s, cfg, store, out, Devices(accelerator="cpu"), resume_from=resume_from,
                         on_sample=lambda step, images: samples.append((step, images)), inputs=inputs)
    return result, cfg, samples


@pytest.fixture(scope="module")
def trained(grid_store, tmp_path_factory):
    """{(system, stage): (result, config, samples)} of a 2-step run of every registered stage, in the system's
    order; a stage that uses earlier stages' networks gets their checkpoints of this run."""
    out = {}
    for system, stage in STAGES:
        s = get_stage(system, stage)
        uses = s.uses(s.Config.preset("small"))
        inputs = {used.name: out[system, used.name][0].last_checkpoint for used, _ in uses.values()}
        out[system, stage] = run(grid_store, tmp_path_factory.mktemp(f"{system}-{stage}"), system, stage,
                                 inputs=inputs)
    return out


def test_the_registry_names_what_the_cli_prints():
    for system in SYSTEMS.values():
        d = system.describe()
        assert d["name"] and d["paper"] and d["stages"] and d["metrics"] and len(d["crop"]["size"]) == 2
        assert len(set(d["stages"])) == len(d["stages"])
        assert system.crop == Crop(system.crop.field, CROPS[system.crop.field].default_size)  # a crop the build cuts
        for stage in system.stages:
            assert set(stage.reads) <= set(shards.FIELDS), (system.name, stage.name, stage.reads)
    with pytest.raises(KeyError, match="registered systems: atvgnet, lipgan, sda, zheng, lipreader, syncnet"):
        get_system("wav2lip")
    with pytest.raises(KeyError, match="its stages: atnet, vgnet"):
        get_stage("atvgnet", "lipgan")


@pytest.mark.parametrize("system,stage", STAGES)
def test_presets_are_documented_and_round_trip(system, stage):
    s = get_stage(system, stage)
    assert issubclass(s.Config, TrainConfig) and s.reads and s.Config.__doc__
    for name in ("paper", "small"):
        cfg = s.Config.preset(name)
        assert s.Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(KeyError, match="choose from paper, small"):
        s.Config.preset("huge")
    assert {f.name for f in fields(TrainConfig)} <= {f.name for f in fields(s.Config)}


@pytest.mark.parametrize("system,stage", STAGES)
def test_trains_with_finite_losses_and_complete_weights_only_checkpoints(trained, system, stage):
    result, cfg, _ = trained[system, stage]
    assert [s for s, _ in result.losses] == [1, 2] and result.step == 2 and result.world_size == 1
    assert all(np.isfinite(v) for _, values in result.losses for v in values.values())
    assert [p.name for p in result.checkpoints] == [f"{stage}-step000001.pt", f"{stage}-step000002.pt"]
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    assert (ckpt["format"], ckpt["system"], ckpt["stage"], ckpt["step"]) == ("talkface.train/1", system, stage, 2)
    assert ckpt["config"] == cfg.to_dict() and set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"}
    s = get_stage(system, stage)
    modules = s.modules(cfg)
    assert set(ckpt["modules"]) == set(modules) and set(ckpt["optimizers"]) <= set(modules)
    for name, module in modules.items():
        module.load_state_dict(ckpt["modules"][name])  # every key, every shape
    assert all(o["state"] for o in ckpt["optimizers"].values())


@pytest.mark.parametrize("system,stage", STAGES)
def test_resume_continues_with_the_same_losses(trained, grid_store, tmp_path, system, stage):
    result, _, _ = trained[system, stage]
    resumed, _, _ = run(grid_store, tmp_path, system, stage, resume_from=result.checkpoints[0])
    assert [s for s, _ in resumed.losses] == [2]
    want, got = result.losses[1][1], resumed.losses[0][1]
    assert set(got) == set(want)
    np.testing.assert_allclose([got[k] for k in sorted(got)], [want[k] for k in sorted(want)], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("system,stage", STAGES)
def test_resume_refuses_a_changed_config_or_another_stage(trained, grid_store, tmp_path, system, stage):
    result, cfg, _ = trained[system, stage]
    with pytest.raises(ValueError, match="batch_size"):
        run(grid_store, tmp_path, system, stage, resume_from=result.checkpoints[0], batch_size=cfg.batch_size + 1)
    other = next((sy, st) for sy, st in STAGES if (sy, st) != (system, stage))
    with pytest.raises(ValueError, match=f"checkpoint of {other[0]}/{other[1]}, not of {system}/{stage}"):
        run(grid_store, tmp_path, system, stage, resume_from=trained[other][0].last_checkpoint)


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_export_keeps_inference_modules_only_and_loads(trained, tmp_path, name):
    system = get_system(name)
    ckpts = {stage.name: trained[name, stage.name][0].last_checkpoint for stage in system.stages}
    out = model_dir.export_model(system, ckpts, tmp_path / "model", {"store_version": "v"})
    card = model_dir.read_card(out)
    assert card["system"] == system.describe() and card["store_version"] == "v"
    assert system.generator is None or any(stage.inference_modules for stage in system.stages)
    for stage in system.stages:
        if not stage.inference_modules:  # a training-only stage (e.g. a frozen loss network): not exported
            assert not (out / f"{stage.name}.pt").exists() and f"{stage.name}.pt" not in card["files"]
            continue
        weights = read_weights(model_dir.stage_file(out, name, stage.name), name, stage.name)
        assert weights["format"] == "talkface.weights/1" and set(weights["modules"]) == set(stage.inference_modules)
        assert "optimizers" not in weights and "rng" not in weights
    with pytest.raises(FileNotFoundError, match=f"holds a {name} model"):
        model_dir.stage_file(out, "other", system.stages[0].name)
