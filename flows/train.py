"""Flow `train`: a model on a store, logged to MLflow (params, per-step losses, sample images, checkpoints).

model "atnet": ATVGnet's AT-net alone (MFCC windows → landmark PCA). model "atvgnet": the paper's decoupled
training, AT-net then VG-net (on ground-truth landmarks) with its regression discriminator, then the cascade is
exported and registered in MLflow as `atvgnet` with an alias, ready for `talkface generate`. model "syncnet": the
SyncNet expert (mouth crops against MFCC, contrastive) that `evaluate` uses for AV offset and confidence.

Run: `talkface train --store STORE [--model atvgnet] [--steps N] [--resume CHECKPOINT|RUN_ID]` or
`python -m flows.train …`.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from models.atvgnet import ATNetConfig, VGNetConfig, VGNetLossConfig
from storage import store, tracking
from tasks.steps import train as steps
from tasks.train_atnet import TrainConfig
from tasks.train_syncnet import SyncNetTrainConfig
from tasks.train_vgnet import VGNetTrainConfig


class TrainParams(BaseModel):
    """Parameters of a training run (the Prefect UI form)."""

    model: Literal["atnet", "atvgnet", "syncnet"] = Field(
        "atnet", description='"atnet": AT-net alone (MFCC → landmarks); "atvgnet": AT-net then VG-net, registered '
                             'in MLflow as one model for `talkface generate`; "syncnet": the audio-visual sync '
                             "expert that scores AV offset and confidence")
    store: Path = Field(..., description="a complete store, <data-root>/stores/<dataset>/<version>")
    data_root: Path = Field(Path("data"), description="MLflow (mlflow.db, mlartifacts) and run outputs live here")
    size: Literal["auto", "paper", "small"] = Field(
        "auto", description='network sizes: "paper" (AT-net 30 M, VG-net 58 M parameters), "small" (about 0.4 M '
                            'each, for CPU), "auto" (paper on GPU, small on CPU)')
    steps: int = Field(300, ge=1, description="AT-net optimizer steps")
    batch_size: int = Field(16, ge=1, description="AT-net: windows of T=16 frames per step")
    vgnet_steps: int = Field(300, ge=1, description="VG-net steps (one discriminator and one generator update each)")
    vgnet_batch_size: int = Field(4, ge=1, description="VG-net: clips of T=16 face crops per step")
    sync_steps: int = Field(2000, ge=1, description="SyncNet steps (syncnet)")
    sync_batch_size: int = Field(32, ge=1, description="SyncNet samples per step, each a genuine and an off-sync pair")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate of AT-net and VG-net (the paper's 2e-4)")
    sync_lr: float = Field(1e-4, gt=0, description="Adam learning rate of SyncNet")
    seed: int = Field(0, description="seed of initialisation, sampling and batch order")
    checkpoint_every: int = Field(100, ge=0, description="steps between checkpoints, each logged to MLflow (0: only the last)")
    sample_every: int = Field(100, ge=0, description="VG-net steps between sample frames and attention maps logged (0: never)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (spawned; each opens the store itself)")
    device: str = Field("auto", description='"auto" (GPU when present), "cpu" or "cuda"')
    bf16: bool = Field(True, description="bfloat16 autocast for VG-net on GPU (CPU always trains in float32)")
    cpu_threads: int = Field(
        1, ge=0, description="torch threads for CPU work (1 stays steady beside other busy processes; 0: torch's default)"
    )
    use_dma: bool = Field(True, description="VG-net dynamic pixel-wise attention (False: the 'w/o DMA' ablation)")
    use_mmcrnn: bool = Field(True, description="VG-net ConvGRU over time (False: the 'w/o MMCRNN' ablation)")
    use_dal: bool = Field(True, description="attention-weighted pixel loss (False: plain L1, the 'w/o DAL' ablation)")
    use_rd: bool = Field(True, description="regression discriminator terms (False: plain GAN, the 'w/o RD' ablation)")
    resume: str | None = Field(None, description="continue at its step: a checkpoint file, or an MLflow run id whose "
                                                 "logged checkpoints to continue (logging into that run)")
    register_as: str = Field("atvgnet", description="MLflow registered model name for the trained cascade")
    alias: str = Field("champion", description='alias pointed at the new model version ("" for none)')
    experiment: str = Field("talkface", description="MLflow experiment")
    run_id: str | None = Field(None, description="log into this existing MLflow run instead of a new one")
    parent_run_id: str | None = Field(None, description="nest the new MLflow run under this one (a benchmark run)")


def configs(params: TrainParams, size: str) -> tuple[TrainConfig, VGNetTrainConfig, SyncNetTrainConfig]:
    """The AT-net, VG-net and SyncNet training configurations a TrainParams asks for (`size` resolved: paper or
    small)."""
    common = dict(lr=params.lr, seed=params.seed, checkpoint_every=params.checkpoint_every,
                  num_workers=params.num_workers, device=params.device, cpu_threads=params.cpu_threads)
    atnet = TrainConfig(model=ATNetConfig.preset(size), steps=params.steps, batch_size=params.batch_size, **common)
    vgnet = VGNetTrainConfig.preset(
        size, steps=params.vgnet_steps, batch_size=params.vgnet_batch_size, sample_every=params.sample_every,
        bf16=params.bf16, generator=replace(VGNetConfig.preset(size), use_dma=params.use_dma, use_mmcrnn=params.use_mmcrnn),
        loss=VGNetLossConfig(use_dal=params.use_dal, use_rd=params.use_rd), **common)
    sync = SyncNetTrainConfig.preset(size, steps=params.sync_steps, batch_size=params.sync_batch_size,
                                     **{**common, "lr": params.sync_lr})
    return atnet, vgnet, sync


def flatten(d: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}: nested config dicts as MLflow param names."""
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


@flow(name="train")
def train(params: TrainParams) -> dict:
    """Train `params.model` on `params.store`; returns {"run_id", "tracking_uri", "checkpoint", "final_loss", …}
    and for "atvgnet" also "vgnet_checkpoint", "vgnet_final_loss", "model_uri", "model_version", "model_version_uri"."""
    log = get_run_logger()
    store_dir, data_root = params.store.resolve(), params.data_root.resolve()
    card = store.read_card(store_dir)
    resumed_run, start = steps.resolve_resume(params.resume, data_root)
    uri, run_id, own_run = tracking.open_run(data_root, params.experiment, params.run_id or resumed_run,
                                             f"{params.model}-{card['dataset']}",
                                             {"model": params.model, "dataset": card["dataset"]},
                                             parent_run_id=params.parent_run_id)
    client = MlflowClient(uri)
    own_run = own_run or resumed_run is not None
    if own_run and not resumed_run:
        tracking.log_store_input(client, run_id, store_dir, card, "train")
    if resumed_run:
        client.update_run(run_id, status="RUNNING")
        client.set_tag(run_id, "resumed", "true")
    size = params.size if params.size != "auto" else ("paper" if torch.cuda.is_available() else "small")
    atnet_config, vgnet_config, sync_config = configs(params, size)
    settings = flatten(sync_config.to_dict(), "syncnet.") if params.model == "syncnet" else flatten(atnet_config.to_dict())
    if params.model == "atvgnet":
        settings.update(flatten(vgnet_config.to_dict(), "vgnet."))
    settings.update(model=params.model, model_size=size, store=str(store_dir), store_version=card["version"],
                    dataset=card["dataset"], resume=params.resume or "")
    tracking.log_params(client, run_id, settings)
    log.info("MLflow run %s: training %s on %s", run_id, params.model, store_dir)
    out_dir = data_root / "runs" / run_id
    try:
        if params.model == "syncnet":
            result = steps.train_syncnet(store_dir, out_dir / "checkpoints", sync_config, uri, run_id, start["syncnet"])
        else:
            result = steps.train_atnet(store_dir, out_dir / "checkpoints", atnet_config, uri, run_id, start["atnet"])
        if params.model == "atvgnet":
            vg = steps.train_vgnet(store_dir, out_dir / "checkpoints", vgnet_config, uri, run_id, start["vgnet"])
            model = steps.register_atvgnet(Path(result["checkpoint"]), Path(vg["checkpoint"]), out_dir / "model", uri,
                                           run_id, params.register_as, params.alias or None, card["version"])
            result.update(vgnet_checkpoint=vg["checkpoint"], vgnet_final_loss=vg["final_loss"],
                          vgnet_samples_per_second=vg["samples_per_second"], model_uri=model["uri"],
                          model_version=model["version"], model_version_uri=model["version_uri"])
    except BaseException:
        if own_run:
            client.set_terminated(run_id, "FAILED")
        raise
    if own_run:
        client.set_terminated(run_id)
    return {"run_id": run_id, "tracking_uri": uri, **result}


if __name__ == "__main__":
    from flows.cli import app

    app(["train", *__import__("sys").argv[1:]])
