"""Prefect tasks that train and score models, logging to an MLflow run given by id (no global MLflow state)."""
from __future__ import annotations

import time
from pathlib import Path

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks import landmark_eval, train_atnet as atnet

LOG_EVERY = 25  # steps per MLflow batch and per progress line


@task(name="train-atnet", cache_policy=NO_CACHE)
def train_atnet(store_dir: Path, out_dir: Path, config: atnet.TrainConfig, tracking_uri: str, run_id: str,
                resume_from: Path | None = None) -> dict:
    """Train AT-net (tasks/train_atnet.py), logging `train/loss` per step and the final checkpoint to the run.
    Returns {"checkpoint", "step", "final_loss", "seconds", "windows", "device"}."""
    log = get_run_logger()
    client = MlflowClient(tracking_uri)
    pending: list[Metric] = []

    def on_step(step: int, loss: float) -> None:
        pending.append(Metric("train/loss", loss, int(time.time() * 1000), step))
        if step % LOG_EVERY == 0 or step == config.steps:
            client.log_batch(run_id, metrics=pending)
            pending.clear()
            log.info("step %d/%d  loss %.5f", step, config.steps, loss)

    result = atnet.train_atnet(store_dir, out_dir, config, on_step=on_step, resume_from=resume_from)
    if pending:
        client.log_batch(run_id, metrics=pending)
    client.log_artifact(run_id, str(result.last_checkpoint), "checkpoints")
    client.log_metric(run_id, "train/seconds", result.seconds)
    client.log_metric(run_id, "train/steps_per_second", len(result.losses) / max(result.seconds, 1e-9))
    return {"checkpoint": str(result.last_checkpoint), "step": result.step,
            "final_loss": result.losses[-1][1] if result.losses else None, "seconds": result.seconds,
            "windows": result.n_windows, "device": result.device}


@task(name="evaluate-atnet", cache_policy=NO_CACHE)
def evaluate_atnet(checkpoint: Path, store_dir: Path, split: str, dataset: str, out_dir: Path, tracking_uri: str,
                   run_id: str) -> dict[str, float]:
    """Landmark error of an AT-net checkpoint on a store split (tasks/landmark_eval.py), logged to the run as
    `<split>/<dataset>/<metric>` with the per-clip table as an artifact. Returns the aggregates."""
    per_clip, aggregate = landmark_eval.evaluate_atnet(checkpoint, store_dir, split)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = out_dir / f"{split}-{dataset}-per-clip.parquet"
    per_clip.to_parquet(table, index=False)
    client = MlflowClient(tracking_uri)
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(f"{split}/{dataset}/{k}", float(v), now, 0) for k, v in aggregate.items()])
    client.log_artifact(run_id, str(table), "evaluation")
    return aggregate
