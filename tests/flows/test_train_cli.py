"""`talkface train` and `talkface systems` as a user meets them: the registry printed, and every bad request (unknown
system, stage, setting, wrong type, another stage's checkpoint) refused with exit status 2, a message naming what is
wrong and what would be right, and nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from flows.cli import app
from storage import shards
from tests.conftest import SAMPLES, copy_clip


def talkface(*args):
    """The CLI run in this process (typer's runner: exit status, stdout and stderr as a user sees them)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def test_systems_lists_the_registry():
    result = talkface("systems", "--configs")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "atvgnet\n  paper:   Chen, Maddox, Duan, Xu." in out and "stages:  atnet, vgnet" in out
    assert "crop:    face 128x128" in out and "syncnet\n" in out and "metrics: " in out
    assert "vgnet.generator = VGNetConfig(" in out and "atnet.lr = 0.0002" in out
    assert "zheng\n  paper:   Zheng, Zhu, Zhu, Luo, He." in out and "stages:  word, mi, a2l, l2f" in out
    assert "a2l.loss = A2LLossConfig(use_word_detector=True, use_temporal_residual=True" in out
    assert "authors' weights: talkface import-weights --system sda --file" in out


@pytest.fixture
def checkpoint_of_syncnet(tmp_path):
    path = tmp_path / "syncnet-step000001.pt"
    torch.save({"format": "talkface.train/1", "system": "syncnet", "stage": "syncnet", "step": 1}, path)
    return path


@pytest.mark.parametrize("args,message", [
    (("--system", "wav2lip"), "'atvgnet', 'lipgan', 'sda', 'zheng', 'lipreader' or 'syncnet'"),
    (("--stage", "lipgan"), "has no stage 'lipgan'; its stages: atnet, vgnet"),
    (("--set", "atnet.learning_rate=1"), "atnet.learning_rate: ATNetTrainConfig has no field 'learning_rate'"),
    (("--set", "atnet.lr=fast"), "atnet.lr: expected float"),
    (("--set", "vgnet.generator.use_dma=maybe"), "vgnet.generator.use_dma: expected bool"),
    (("--set", "sda.lr=1"), "sda.lr: atvgnet has no stage 'sda'"),
    (("--set", "lr"), "expected stage.key=value"),
    (("--preset", "huge"), "preset"),
    (("--input", "flownet"), "--input expects STAGE=CHECKPOINT"),
])
def test_bad_requests_exit_2_naming_the_problem(grid_store, tmp_path, args, message):
    data_root = tmp_path / "data"
    result = talkface("train", "--store", grid_store, "--data-root", data_root, *args)
    assert result.exit_code == 2 and message in result.stderr, result.output[-2000:]
    assert not data_root.exists()  # nothing written


def test_resuming_another_systems_checkpoint_is_refused(grid_store, tmp_path, checkpoint_of_syncnet):
    data_root = tmp_path / "data"
    result = talkface("train", "--store", grid_store, "--data-root", data_root, "--resume", checkpoint_of_syncnet)
    assert result.exit_code == 2, result.output[-2000:]
    assert "cannot resume atvgnet (atnet, vgnet)" in result.stderr and "it is syncnet/syncnet" in result.stderr
    assert not data_root.exists()


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused(grid_store, tmp_path):
    result = talkface("train", "--store", grid_store, "--data-root", tmp_path / "data", "--devices", "2",
                      "--accelerator", "cpu", "--set", "atnet.batch_size=7")
    assert result.exit_code == 2 and "atnet.batch_size=7: the global batch must split evenly over the 2 processes" \
        in result.stderr, result.output[-2000:]


@pytest.fixture(scope="module")
def face_only_store(tmp_path_factory):
    """A store of two GRID clips built by the real flow with `--crop face` only."""
    raw, data_root = tmp_path_factory.mktemp("raw"), tmp_path_factory.mktemp("data")
    for name in ("bbaf2n", "bbaf3s"):
        copy_clip(name, raw)
    result = talkface("build", "--raw-root", raw, "--data-root", data_root, "--crop", "face")
    assert result.exit_code == 0, result.output[-3000:]
    return Path(result.stdout.strip().splitlines()[-1])


def test_a_store_built_without_a_crop_a_stage_reads_is_refused(face_only_store, grid_store, tmp_path):
    assert face_only_store.name != grid_store.name  # the crops are part of the store's version
    group = shards.open_shard(face_only_store, shards.completed(face_only_store)[0])
    assert "face" in group.array_keys() and "mouth" not in group.array_keys()
    data_root = tmp_path / "data"
    result = talkface("train", "--store", face_only_store, "--data-root", data_root, "--system", "syncnet")
    assert result.exit_code == 2, result.output[-2000:]
    assert "syncnet (syncnet) reads mouth, which" in result.stderr and "--crop face=128x128 --crop mouth=64x64" \
        in result.stderr.replace("\n", " ")
    assert not data_root.exists()


@pytest.mark.parametrize("crop,message", [("lips", "unknown crop lips"), ("mouth", "must include 'face'"),
                                          ("face=128x96", "crop face is square")])
def test_build_refuses_bad_crops(tmp_path, crop, message):
    result = talkface("build", "--raw-root", SAMPLES, "--data-root", tmp_path / "data", "--crop", crop)
    assert result.exit_code == 2 and message in result.stderr, result.output[-2000:]
    assert not (tmp_path / "data").exists()


def test_the_train_form_is_typed_per_system():
    from flows.train import TrainParams

    schema = TrainParams.model_json_schema()
    union = schema["properties"]["settings"]["anyOf"][0]
    assert union["discriminator"]["propertyName"] == "system" and set(union["discriminator"]["mapping"]) == {
        "atvgnet", "lipgan", "sda", "zheng", "lipreader", "syncnet"}
    params = TrainParams(store="s", settings={"system": "syncnet", "syncnet": {"lr": 3e-4}})  # system from settings
    assert params.system == "syncnet" and params.configs()["syncnet"].lr == 3e-4
    params = TrainParams(store="s", settings={"system": "atvgnet", "atnet": {"lr": 1e-3}}, overrides={"atnet.lr": 2e-3})
    assert params.configs()["atnet"].lr == 2e-3  # overrides come after the form's settings
    params = TrainParams(store="s", settings={"system": "lipgan", "lipgan": {"d_streams": "two",  # a Tab. 2 row
                                                                            "loss": {"corr": "none"}}})
    gan = params.configs()["lipgan"]
    assert (gan.d_streams, gan.loss.corr, gan.loss.use_gan) == ("two", "none", True)
    sda = TrainParams(store="s", settings={"system": "sda", "sda": {"loss": {"use_sync_d": False}}}).configs()["sda"]
    assert sda.loss.adversarial == ("frame", "sequence")  # Tab. 5 "w/o sync D"
    with pytest.raises(ValueError, match="settings are atvgnet's but the system is syncnet"):
        TrainParams(store="s", system="syncnet", settings={"system": "atvgnet"})


def test_python_m_flows_train_takes_the_typed_settings():
    from pydantic_settings import CliApp

    from flows.train import TrainParams

    params = CliApp.run(TrainParams, cli_args=["--store", "s", "--settings.system", "atvgnet",
                                               "--no-settings.vgnet.generator.use-dma", "--settings.vgnet.lr", "1e-3"])
    assert params.configs()["vgnet"].generator.use_dma is False and params.configs()["vgnet"].lr == 1e-3


def test_a_stage_gets_its_inputs_from_this_run_then_the_given_ones_then_the_resume_points(tmp_path):
    from flows.train import stage_inputs
    from models.lipgan.stages import LipGANStage

    stage, cfg = LipGANStage(), LipGANStage.Config.preset("small")
    found = stage_inputs(stage, cfg, {"flownet": {"checkpoint": "run/flownet.pt"}}, {"perceptual": None},
                         {"perceptual": tmp_path / "given.pt", "flownet": tmp_path / "ignored.pt"})
    assert found == {"flownet": Path("run/flownet.pt"), "perceptual": tmp_path / "given.pt"}
    assert stage_inputs(stage, cfg, {}, {"flownet": Path("resume/flownet.pt"), "perceptual": None}, {}) == {
        "flownet": Path("resume/flownet.pt")}  # the loop then says the autoencoder's is missing
