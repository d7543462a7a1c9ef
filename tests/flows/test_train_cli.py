"""`talkface train` and `talkface systems` as a user meets them: the registry printed, and every bad request (unknown
system, stage, setting, wrong type, another stage's checkpoint) refused with exit status 2, a message naming what is
wrong and what would be right, and nothing written."""
from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from flows.cli import app


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


@pytest.fixture
def checkpoint_of_syncnet(tmp_path):
    path = tmp_path / "syncnet-step000001.pt"
    torch.save({"format": "talkface.train/1", "system": "syncnet", "stage": "syncnet", "step": 1}, path)
    return path


@pytest.mark.parametrize("args,message", [
    (("--system", "wav2lip"), "'atvgnet' or 'syncnet'"),
    (("--stage", "lipgan"), "has no stage 'lipgan'; its stages: atnet, vgnet"),
    (("--set", "atnet.learning_rate=1"), "atnet.learning_rate: ATNetTrainConfig has no field 'learning_rate'"),
    (("--set", "atnet.lr=fast"), "atnet.lr: expected float"),
    (("--set", "vgnet.generator.use_dma=maybe"), "vgnet.generator.use_dma: expected bool"),
    (("--set", "sda.lr=1"), "sda.lr: atvgnet has no stage 'sda'"),
    (("--set", "lr"), "expected stage.key=value"),
    (("--preset", "huge"), "preset"),
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
