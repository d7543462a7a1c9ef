"""Flow `train`: a model on a store, logged to MLflow (params, per-step loss, checkpoints).

Run: `talkface train --store STORE [--steps N] [--resume CHECKPOINT]` or `python -m flows.train …`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from pydantic import BaseModel, Field

from models.atvgnet import ATNetConfig
from storage import store, tracking
from tasks.steps import train as steps
from tasks.train_atnet import TrainConfig


class TrainParams(BaseModel):
    """Parameters of a training run (the Prefect UI form)."""

    model: Literal["atnet"] = Field("atnet", description="system to train (ATVGnet's AT-net: MFCC → landmark PCA)")
    store: Path = Field(..., description="a complete store, <data-root>/stores/<dataset>/<version>")
    data_root: Path = Field(Path("data"), description="MLflow (mlflow.db, mlartifacts) and run outputs live here")
    size: Literal["auto", "paper", "small"] = Field(
        "auto", description='model size: "paper" (30 M parameters), "small" (0.4 M, for CPU), "auto" (paper on GPU)'
    )
    steps: int = Field(300, ge=1, description="optimizer steps")
    batch_size: int = Field(16, ge=1, description="windows of T=16 frames per step")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate (the paper's 2e-4)")
    seed: int = Field(0, description="seed of initialisation, sampling and batch order")
    checkpoint_every: int = Field(100, ge=0, description="steps between checkpoints (0: only the last)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    device: str = Field("auto", description='"auto" (GPU when present), "cpu" or "cuda"')
    resume: Path | None = Field(None, description="a checkpoint to continue from, at its step")
    experiment: str = Field("talkface", description="MLflow experiment")
    run_id: str | None = Field(None, description="log into this existing MLflow run instead of a new one")


@flow(name="train")
def train(params: TrainParams) -> dict:
    """Train `params.model` on `params.store`; returns {"run_id", "checkpoint", "final_loss", …}."""
    log = get_run_logger()
    store_dir, data_root = params.store.resolve(), params.data_root.resolve()
    card = store.read_card(store_dir)
    uri, run_id, own_run = tracking.open_run(data_root, params.experiment, params.run_id,
                                             f"{params.model}-{card['dataset']}",
                                             {"model": params.model, "dataset": card["dataset"]})
    client = MlflowClient(uri)
    size = params.size if params.size != "auto" else ("paper" if torch.cuda.is_available() else "small")
    config = TrainConfig(model=ATNetConfig.preset(size), steps=params.steps, batch_size=params.batch_size,
                         lr=params.lr, seed=params.seed, checkpoint_every=params.checkpoint_every, num_workers=params.num_workers, device=params.device)
    settings = config.to_dict()
    architecture = settings.pop("model")
    settings.update({f"model.{k}": v for k, v in architecture.items()})
    settings.update(model=params.model, model_size=size, store=str(store_dir), store_version=card["version"], dataset=card["dataset"],
                    resume=str(params.resume or ""))
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(settings.items())])
    log.info("MLflow run %s: training %s on %s for %d steps", run_id, params.model, store_dir, params.steps)
    try:
        result = steps.train_atnet(store_dir, data_root / "runs" / run_id / "checkpoints", config, uri, run_id,
                                   params.resume)
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
