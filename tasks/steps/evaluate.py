"""Prefect tasks that score models on a store split, logging to an MLflow run given by id (no global MLflow state)."""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks import evaluation, landmark_eval, model_dir as model_dirs


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
    """A `tasks.evaluation.SyncFn` from a SyncNet checkpoint or the official syncnet_v2.model (None: None).
    The model gets the crops it was trained on: mouth crops, or face crops for syncnet_v2 (`model.cfg.crop`)."""
    if sync_model is None:
        return None
    from tasks import sync

    model = sync.load_sync_model(sync_model, device)

    def score(faces: np.ndarray, mouths: np.ndarray, mfcc: np.ndarray) -> tuple[float, float]:
        result = sync.av_offset(model, mouths if model.cfg.crop == "mouth" else faces, mfcc)
        return float(result.offset), float(result.confidence)

    return score


def lip_reader_fn(reader_model: Path | None, device: str = "auto"):
    """A `tasks.evaluation.ReadFn` from a lip reader checkpoint (`models.lipreader`; None: None): face views ->
    (greedy, grammar-snapped) transcripts."""
    if reader_model is None:
        return None
    from models.lipreader.reader import LipReader

    model = LipReader.load(reader_model, device)

    def read(faces: np.ndarray) -> tuple[str, str]:
        transcript = model.read(faces)
        return transcript.greedy, transcript.snapped

    return read


@task(name="evaluate-model", cache_policy=NO_CACHE)
def evaluate_model(model_dir: Path, store_dir: Path, split: str, dataset: str, out_dir: Path, tracking_uri: str,
                   run_id: str, sync_model: Path | None = None, max_clips: int | None = None,
                   sample_videos: int = 2, reader_model: Path | None = None) -> dict[str, float]:
    """Score a model directory's generator (`tasks.model_dir.load_generator`) on a store split (tasks/evaluation.py),
    logged to the run: aggregates as `<split>/<dataset>/<metric>`, the per-clip table as Parquet and as an MLflow table
    (`evaluation/<split>-<dataset>-per-clip.json`), and the first `sample_videos` clips as side-by-side mp4s
    (generated | ground truth face views, with the clip's audio) under `samples/`. The metrics are those of the
    system model.json names (`tasks.evaluation.evaluate`); WER with a lip reader checkpoint (`reader_model`).
    Returns the aggregates."""
    from tasks.generate import write_video

    out_dir.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri)
    generator = model_dirs.load_generator(model_dir)
    written: list[Path] = []

    def on_clip(clip_id: str, generated: np.ndarray, real: np.ndarray, audio: np.ndarray) -> None:
        if len(written) < sample_videos:
            path = out_dir / f"{clip_id.replace('/', '_')}-generated-vs-real.mp4"
            written.append(write_video(np.concatenate([generated, real], axis=2), audio, path))
            client.log_artifact(run_id, str(path), "samples")

    metrics = model_dirs.read_card(model_dir).get("system", {}).get("metrics")
    per_clip, aggregate = evaluation.evaluate(generator, store_dir, split, sync=sync_scorer(sync_model),
                                              max_clips=max_clips, on_clip=on_clip,
                                              metrics=frozenset(metrics) if metrics else None,
                                              lip_reader=lip_reader_fn(reader_model))
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
