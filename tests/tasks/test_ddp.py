"""DDP on CPU (gloo), as `talkface train --devices 2` runs it: the train task starts 2 ranks with torchrun
(`tasks.launch.run_ranks`) and waits for them. With the same global batch, the 2 ranks compute the losses of one
process step for step (each rank takes half of every global batch; BatchNorm statistics over the global batch), and
rank 0 writes the checkpoint. A rank that dies fails the job with its log."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.atvgnet import ATNetConfig
from models.registry import get_stage
from tasks.launch import RankJob, run_ranks
from tasks.training import Devices, train_stage

TINY = ATNetConfig(audio_channels=(8, 8, 16, 16, 16), audio_hidden=64, audio_features=32,
                   landmark_hidden=32, landmark_features=32, lstm_hidden=32)
STEPS = 5


def config():
    return get_stage("atvgnet", "atnet").Config.preset("small", steps=STEPS, batch_size=8, lr=3e-3, stride=30,
                                                      checkpoint_every=0, model=TINY)


def job(store, out, devices: int, **fields) -> RankJob:
    return RankJob(system="atvgnet", stage="atnet", config={**config().to_dict(), **fields}, store_dir=str(store),
                   out_dir=str(out), devices=vars(Devices(accelerator="cpu", devices=devices)),
                   result=str(out / "result.json"))


@pytest.fixture(scope="module")
def single(grid_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("one process")
    return train_stage("atvgnet", get_stage("atvgnet", "atnet"), config(), grid_store, out,
                       Devices(accelerator="cpu"))


def test_two_ranks_give_the_single_process_losses(grid_store, single, tmp_path):
    result = run_ranks(job(grid_store, tmp_path, 2), tmp_path)
    assert result["world_size"] == 2 and result["step"] == STEPS and result["batch_size"] == 8
    two = np.array([v["loss"] for _, v in result["losses"]])
    one = np.array([v["loss"] for _, v in single.losses])
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-7)
    assert not np.allclose(one[0], one[-1])  # the steps did something
    # rank 0's checkpoint loads into the plain network: the ranks' BatchNorm replacement keeps BatchNorm's keys.
    # (The weights themselves are not compared: Adam scales each gradient to about +-lr, so components that are
    # float noise in both runs, e.g. the scale-invariant directions of a conv before BatchNorm, move apart without
    # changing the losses.)
    ckpt = torch.load(result["last_checkpoint"], weights_only=True)
    assert ckpt["step"] == STEPS
    get_stage("atvgnet", "atnet").modules(config())["atnet"].load_state_dict(ckpt["modules"]["atnet"])


def test_a_rank_that_dies_fails_the_job_with_its_log(grid_store, tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)a training rank failed.*the global batch 7 must split evenly"):
        run_ranks(job(grid_store, tmp_path, 2, batch_size=7), tmp_path)
