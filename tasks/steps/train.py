"""Prefect tasks that train and score models, logging to an MLflow run given by id (no global MLflow state)."""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from storage import tracking
from tasks import cascade, landmark_eval, train_atnet as atnet, train_vgnet as vgnet

LOG_EVERY = 25  # steps per MLflow batch and per progress line
RUN_ID = re.compile(r"^(?:runs:/)?([0-9a-f]{32})/?$")


class MetricBuffer:
    """Metrics collected per step and sent to one MLflow run in batches (one call per LOG_EVERY steps)."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id, self.pending = client, run_id, []

    def add(self, step: int, values: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.pending.extend(Metric(k, float(v), now, step) for k, v in values.items())

    def flush(self) -> None:
        for i in range(0, len(self.pending), 1000):  # MLflow takes up to 1000 metrics per call
            self.client.log_batch(self.run_id, metrics=self.pending[i : i + 1000])
        self.pending.clear()


@task(name="resolve-resume", cache_policy=NO_CACHE)
def resolve_resume(resume: str | None, data_root: Path) -> tuple[str | None, dict[str, Path | None]]:
    """Where training continues: (the MLflow run to log into, or None for a new run; {"atnet", "vgnet"}: the
    checkpoint each stage resumes from, or None to start it). `resume` is a checkpoint file (the other stage's
    latest checkpoint beside it is used too, `tasks.cascade.resume_points`) or an MLflow run id / `runs:/<id>`
    whose latest logged checkpoint of each stage is downloaded to <data_root>/runs/<id>/checkpoints.
    Raises FileNotFoundError / ValueError with the reason when neither works."""
    if resume is None:
        return None, {"atnet": None, "vgnet": None}
    if Path(resume).is_file():
        return None, cascade.resume_points(Path(resume))
    match = RUN_ID.match(resume)
    if match is None:
        raise FileNotFoundError(f"--resume {resume!r}: no such checkpoint file, and not an MLflow run id")
    run_id = match[1]
    client = MlflowClient(tracking.tracking_uri(data_root))
    folder = tracking.download_checkpoints(client, run_id, Path(data_root) / "runs" / run_id / "checkpoints",
                                           pick=lambda names: [n for n in cascade.latest_names(names).values() if n])
    get_run_logger().info("resuming MLflow run %s from its checkpoints in %s", run_id, folder)
    return run_id, cascade.latest_checkpoints(folder)


@task(name="train-atnet", cache_policy=NO_CACHE)
def train_atnet(store_dir: Path, out_dir: Path, config: atnet.TrainConfig, tracking_uri: str, run_id: str,
                resume_from: Path | None = None) -> dict:
    """Train AT-net (tasks/train_atnet.py), logging `train/loss` per step and every checkpoint (as it is written)
    to the run. Returns {"checkpoint", "step", "final_loss", "seconds", "windows", "device"}."""
    log = get_run_logger()
    client = MlflowClient(tracking_uri)
    metrics = MetricBuffer(client, run_id)

    def on_step(step: int, loss: float) -> None:
        metrics.add(step, {"train/loss": loss})
        if step % LOG_EVERY == 0 or step == config.steps:
            metrics.flush()
            log.info("AT-net step %d/%d  loss %.5f", step, config.steps, loss)

    def on_checkpoint(path: Path) -> None:
        metrics.flush()
        client.log_artifact(run_id, str(path), "checkpoints")

    result = atnet.train_atnet(store_dir, out_dir, config, on_step=on_step, resume_from=resume_from,
                               on_checkpoint=on_checkpoint)
    metrics.flush()
    client.log_metric(run_id, "train/seconds", result.seconds)
    client.log_metric(run_id, "train/steps_per_second", len(result.losses) / max(result.seconds, 1e-9))
    return {"checkpoint": str(result.last_checkpoint), "step": result.step,
            "final_loss": result.losses[-1][1] if result.losses else None, "seconds": result.seconds,
            "windows": result.n_windows, "device": result.device}


@task(name="train-vgnet", cache_policy=NO_CACHE)
def train_vgnet(store_dir: Path, out_dir: Path, config: vgnet.VGNetTrainConfig, tracking_uri: str, run_id: str,
                resume_from: Path | None = None) -> dict:
    """Train VG-net and its discriminator (tasks/train_vgnet.py), logging to the run: every loss term per step as
    `train/vgnet/<g|d>/<term>`, generated | real frames and attention maps every `config.sample_every` steps as
    images `samples/frames` and `samples/attention` (with their step), and every checkpoint as it is written.
    Returns {"checkpoint", "step", "final_loss" (the generator's total), "seconds", "samples_per_second",
    "windows", "device"}."""
    log = get_run_logger()
    client = MlflowClient(tracking_uri)
    metrics = MetricBuffer(client, run_id)

    def on_step(step: int, values: dict[str, float]) -> None:
        metrics.add(step, {f"train/vgnet/{k}": v for k, v in values.items()})
        if step % LOG_EVERY == 0 or step == config.steps:
            metrics.flush()
            log.info("VG-net step %d/%d  G %.4f (pixel %.4f)  D %.4f", step, config.steps, values["g/total"],
                     values.get("g/pixel", float("nan")), values["d/total"])

    def on_sample(step: int, images: dict[str, np.ndarray]) -> None:
        for name, image in images.items():
            client.log_image(run_id, image, key=f"samples/{name}", step=step)

    def on_checkpoint(path: Path) -> None:
        metrics.flush()
        client.log_artifact(run_id, str(path), "checkpoints")

    result = vgnet.train_vgnet(store_dir, out_dir, config, on_step=on_step, on_sample=on_sample,
                               resume_from=resume_from, on_checkpoint=on_checkpoint)
    metrics.flush()
    client.log_metric(run_id, "train/vgnet/seconds", result.seconds)
    client.log_metric(run_id, "train/vgnet/samples_per_second", result.samples_per_second)
    return {"checkpoint": str(result.last_checkpoint), "step": result.step,
            "final_loss": result.losses[-1][1]["g/total"] if result.losses else None, "seconds": result.seconds,
            "samples_per_second": result.samples_per_second, "windows": result.n_windows, "device": result.device}


@task(name="register-atvgnet", cache_policy=NO_CACHE)
def register_atvgnet(atnet_checkpoint: Path, vgnet_checkpoint: Path, out_dir: Path, tracking_uri: str, run_id: str,
                     name: str, alias: str | None, store_version: str) -> dict:
    """Export the cascade (`tasks.cascade.export_model`) into `out_dir`, log it as the run's `model` artifact and
    register it as a new version of MLflow model `name` with `alias`. Returns {"name", "version", "uri"}."""
    client = MlflowClient(tracking_uri)
    model_dir = cascade.export_model(atnet_checkpoint, vgnet_checkpoint, out_dir,
                                     {"mlflow_run_id": run_id, "store_version": store_version})
    client.log_artifacts(run_id, str(model_dir), "model")
    version = tracking.register_model(client, name, run_id, "model", alias, tags={"store_version": store_version},
                                      description=f"AT-net + VG-net trained on store {store_version}")
    uri = f"models:/{name}@{alias}" if alias else f"models:/{name}/{version}"
    get_run_logger().info("registered MLflow model %s version %s (%s)", name, version, uri)
    return {"name": name, "version": version, "uri": uri}


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
