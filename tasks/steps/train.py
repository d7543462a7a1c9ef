"""Prefect tasks that train and score models, logging to an MLflow run given by id (no global MLflow state)."""
from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from storage import tracking
from tasks import cascade, landmark_eval, train_atnet as atnet, train_syncnet as syncnet, train_vgnet as vgnet
from tasks import evaluate_atvgnet as atvgnet_eval

LOG_EVERY = 25  # steps per MLflow batch and per progress line
RUN_ID = re.compile(r"^(?:runs:/)?([0-9a-f]{32})/?$")


class TrainingLog:
    """One training stage's per-step values and checkpoints, sent to one MLflow run: values as metrics
    `<prefix><name>` in batches (one call per LOG_EVERY steps, and at each checkpoint), a progress line per batch,
    each checkpoint as a `checkpoints/` artifact as soon as it is written."""

    def __init__(self, client: MlflowClient, run_id: str, prefix: str, stage: str, total_steps: int):
        self.client, self.run_id, self.prefix, self.stage, self.total = client, run_id, prefix, stage, total_steps
        self.pending: list[Metric] = []
        self.log = get_run_logger()

    def on_step(self, step: int, values: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        self.pending.extend(Metric(f"{self.prefix}{k}", float(v), now, step) for k, v in values.items())
        if step % LOG_EVERY == 0 or step == self.total:
            self.flush()
            self.log.info("%s step %d/%d  %s", self.stage, step, self.total,
                          "  ".join(f"{k} {v:.4f}" for k, v in values.items()))

    def on_checkpoint(self, path: Path) -> None:
        self.flush()
        self.client.log_artifact(self.run_id, str(path), "checkpoints")

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
        return None, dict.fromkeys(cascade.STAGES)
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
    client = MlflowClient(tracking_uri)
    logged = TrainingLog(client, run_id, "train/", "AT-net", config.steps)
    result = atnet.train_atnet(store_dir, out_dir, config, on_step=lambda step, loss: logged.on_step(step, {"loss": loss}),
                               resume_from=resume_from, on_checkpoint=logged.on_checkpoint)
    logged.flush()
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
    client = MlflowClient(tracking_uri)
    logged = TrainingLog(client, run_id, "train/vgnet/", "VG-net", config.steps)

    def on_sample(step: int, images: dict[str, np.ndarray]) -> None:
        for name, image in images.items():
            client.log_image(run_id, image, key=f"samples/{name}", step=step)

    result = vgnet.train_vgnet(store_dir, out_dir, config, on_step=logged.on_step, on_sample=on_sample,
                               resume_from=resume_from, on_checkpoint=logged.on_checkpoint)
    logged.flush()
    client.log_metric(run_id, "train/vgnet/seconds", result.seconds)
    client.log_metric(run_id, "train/vgnet/samples_per_second", result.samples_per_second)
    return {"checkpoint": str(result.last_checkpoint), "step": result.step,
            "final_loss": result.losses[-1][1]["g/total"] if result.losses else None, "seconds": result.seconds,
            "samples_per_second": result.samples_per_second, "windows": result.n_windows, "device": result.device}


@task(name="train-syncnet", cache_policy=NO_CACHE)
def train_syncnet(store_dir: Path, out_dir: Path, config: syncnet.SyncNetTrainConfig, tracking_uri: str, run_id: str,
                  resume_from: Path | None = None) -> dict:
    """Train the SyncNet expert (tasks/train_syncnet.py), logging its losses per step as `train/syncnet/<name>` and
    every checkpoint (as it is written) to the run. Returns {"checkpoint", "step", "final_loss", "seconds",
    "windows", "device"}."""
    client = MlflowClient(tracking_uri)
    logged = TrainingLog(client, run_id, "train/syncnet/", "SyncNet", config.steps)
    result = syncnet.train_syncnet(store_dir, out_dir, config, on_step=logged.on_step,
                                   on_checkpoint=logged.on_checkpoint, resume_from=resume_from)
    logged.flush()
    client.log_metric(run_id, "train/syncnet/seconds", result.seconds)
    final = result.losses[-1][1] if result.losses else {}
    return {"checkpoint": str(result.last_checkpoint), "step": result.step,
            "final_loss": final.get("loss"), "seconds": result.seconds,
            "windows": result.n_windows, "device": result.device}


@task(name="register-atvgnet", cache_policy=NO_CACHE)
def register_atvgnet(atnet_checkpoint: Path, vgnet_checkpoint: Path, out_dir: Path, tracking_uri: str, run_id: str,
                     name: str, alias: str | None, store_version: str) -> dict:
    """Export the cascade (`tasks.cascade.export_model`) into `out_dir`, log it as the run's `model` artifact and
    register it as a new version of MLflow model `name` with `alias`. Returns {"name", "version", "uri" (by alias,
    or by version without one), "version_uri" (models:/name/version)}."""
    client = MlflowClient(tracking_uri)
    model_dir = cascade.export_model(atnet_checkpoint, vgnet_checkpoint, out_dir,
                                     {"mlflow_run_id": run_id, "store_version": store_version})
    client.log_artifacts(run_id, str(model_dir), "model")
    version = tracking.register_model(client, name, run_id, "model", alias, tags={"store_version": store_version},
                                      description=f"AT-net + VG-net trained on store {store_version}")
    version_uri = f"models:/{name}/{version}"
    uri = f"models:/{name}@{alias}" if alias else version_uri
    get_run_logger().info("registered MLflow model %s version %s (%s)", name, version, uri)
    return {"name": name, "version": version, "uri": uri, "version_uri": version_uri}


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


def sync_scorer(sync_model: Path | None, device: str = "auto"):
    """A `tasks.evaluate_atvgnet.SyncFn` from a SyncNet checkpoint or the official syncnet_v2.model (None: None).
    The model gets the crops it was trained on: mouth crops, or face crops for syncnet_v2 (`model.cfg.crop`)."""
    if sync_model is None:
        return None
    from tasks import sync

    model = sync.load_sync_model(sync_model, device)

    def score(faces: np.ndarray, mouths: np.ndarray, mfcc: np.ndarray) -> tuple[float, float]:
        result = sync.av_offset(model, mouths if model.cfg.crop == "mouth" else faces, mfcc)
        return float(result.offset), float(result.confidence)

    return score


@task(name="evaluate-atvgnet", cache_policy=NO_CACHE)
def evaluate_atvgnet(model_dir: Path, store_dir: Path, split: str, dataset: str, out_dir: Path, tracking_uri: str,
                     run_id: str, sync_model: Path | None = None, max_clips: int | None = None,
                     sample_videos: int = 2) -> dict[str, float]:
    """Score an ATVGnet model directory (`tasks.cascade`) on a store split (tasks/evaluate_atvgnet.py), logged to the
    run: aggregates as `<split>/<dataset>/<metric>`, the per-clip table as Parquet and as an MLflow table
    (`evaluation/<split>-<dataset>-per-clip.json`), and the first `sample_videos` clips as side-by-side mp4s
    (generated | ground truth, with the clip's audio) under `samples/`. Returns the aggregates."""
    from tasks.generate import write_video

    out_dir.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri)
    atnet_file, vgnet_file = cascade.model_files(model_dir)
    written: list[Path] = []

    def on_clip(clip_id: str, generated: np.ndarray, real: np.ndarray, audio: np.ndarray) -> None:
        if len(written) < sample_videos:
            path = out_dir / f"{clip_id.replace('/', '_')}-generated-vs-real.mp4"
            written.append(write_video(np.concatenate([generated, real], axis=2), audio, path))
            client.log_artifact(run_id, str(path), "samples")

    per_clip, aggregate = atvgnet_eval.evaluate_atvgnet(atnet_file, vgnet_file, store_dir, split,
                                                        sync=sync_scorer(sync_model), max_clips=max_clips,
                                                        on_clip=on_clip)
    table = out_dir / f"{split}-{dataset}-per-clip.parquet"
    per_clip.to_parquet(table, index=False)
    client.log_artifact(run_id, str(table), "evaluation")
    with warnings.catch_warnings():  # MLflow's hint that integer columns cannot hold missing values
        warnings.simplefilter("ignore", UserWarning)
        client.log_table(run_id, per_clip, f"evaluation/{split}-{dataset}-per-clip.json")
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(f"{split}/{dataset}/{k}", float(v), now, 0)
                                      for k, v in aggregate.items() if not np.isnan(v)])
    get_run_logger().info("%s/%s: PSNR %.2f dB, SSIM %.3f, LMD %.3f px, CPBD %.3f over %d clips", dataset, split,
                          aggregate["psnr"], aggregate["ssim"], aggregate["lmd"], aggregate["cpbd"],
                          aggregate["n_clips"])
    return aggregate
