"""Flow `evaluate`: a trained model's scores on a store split, logged to MLflow as `<split>/<dataset>/<metric>`,
with the per-clip table (Parquet and an MLflow table) and side-by-side sample videos; a Prefect markdown artifact
shows the aggregates.

A registered model (its model.json names the system, e.g. ATVGnet or the lip GAN): rendered and scored with the
papers' metrics (tasks/evaluation.py): PSNR, SSIM (and their paper-compatible forms), LMD, CPBD, ACD and blinks
(where the system's metrics include them), AV offset and confidence (with a SyncNet), WER (with a lip reader),
inference frames per second. An AT-net checkpoint instead: its landmark error (tasks/landmark_eval.py).

Run: `talkface evaluate --store STORE [--model models:/atvgnet@champion | --checkpoint CKPT] [--split test]` or
`python -m flows.evaluate …`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from flows.parameters import Location
from storage import location, store, tracking
from tasks import published
from tasks.steps import evaluate as steps


class EvaluateParams(BaseModel):
    """Parameters of an evaluation (the Prefect UI form)."""

    model_uri: str | None = Field("models:/atvgnet@champion",
                                  description="a registered model (models:/NAME@ALIAS, models:/NAME/VERSION, "
                                              "runs:/RUN/model or a model directory), scored on rendered videos")
    checkpoint: Path | None = Field(None, description="instead of model_uri: an AT-net checkpoint, scored on its "
                                                      "predicted landmarks")
    store: Location = Field(..., description="a complete store to score on (a folder or an s3:// URL)")
    split: Literal["train", "val", "test"] = Field("test", description="store split to score")
    data_root: Location = Field("data", description="where mlflow.db and run outputs live")
    sync_model: Path | None = Field(None, description="a SyncNet checkpoint or the official syncnet_v2.model for AV "
                                                      "offset and confidence (none: not scored)")
    reader_model: Path | None = Field(None, description="a lip reader checkpoint (`talkface train --system "
                                                        "lipreader`) for WER on GRID (none: not scored)")
    max_clips: int | None = Field(None, ge=1, description="score only the first N clips of the split (by clip id)")
    sample_videos: int = Field(2, ge=0, description="side-by-side videos (generated | real) logged to MLflow")
    experiment: str = Field("talkface", description="MLflow experiment (when a new run is made)")
    run_id: str | None = Field(None, description="log into this MLflow run instead of a new one")
    parent_run_id: str | None = Field(None, description="nest the new MLflow run under this one (a benchmark run)")


@flow(name="evaluate")
def evaluate(params: EvaluateParams) -> dict:
    """Score the model on the store split; returns {"run_id", "metrics"}."""
    log = get_run_logger()
    store_dir, data_root = location.as_path(params.store), location.as_path(params.data_root)
    card = store.read_card(store_dir)
    dataset = card["dataset"]
    if params.checkpoint is not None and not params.checkpoint.exists():
        raise FileNotFoundError(f"AT-net checkpoint {params.checkpoint} not found")
    if params.checkpoint is None and not params.model_uri:
        raise ValueError("evaluate needs a model_uri or an AT-net checkpoint")
    what = "atnet" if params.checkpoint is not None else params.model_uri
    uri, run_id, own_run = tracking.open_run(data_root, params.experiment, params.run_id,
                                             f"evaluate-{dataset}", {"model": what, "dataset": dataset},
                                             parent_run_id=params.parent_run_id)
    client = MlflowClient(uri)
    out_dir = location.work_root(data_root) / "runs" / run_id / "evaluation"
    try:
        if own_run:
            tracking.log_store_input(client, run_id, store_dir, card, params.split)
        if params.checkpoint is not None:
            metrics = steps.evaluate_atnet(params.checkpoint.resolve(), store_dir, params.split, dataset, out_dir, uri,
                                           run_id)
        else:
            client.set_tag(run_id, "model_uri", params.model_uri)
            with tempfile.TemporaryDirectory(prefix="talkface-model-") as tmp:
                model_dir = tracking.download_model(params.model_uri, data_root, Path(tmp))
                metrics = steps.evaluate_model(model_dir, store_dir, params.split, dataset, out_dir, uri, run_id,
                                               params.sync_model, params.max_clips, params.sample_videos,
                                               params.reader_model)
    except BaseException:
        if own_run:
            client.set_terminated(run_id, "FAILED")
        raise
    if own_run:
        client.set_terminated(run_id)
    create_markdown_artifact(
        key="evaluation", description=f"{what} on {store_dir.name} ({params.split})",
        markdown=f"# {what} on {dataset}/{params.split} (store `{card['version']}`, MLflow run `{run_id}`)\n\n"
                 + published.markdown_table([{"metric": f"{params.split}/{dataset}/{k}", "value": float(v)}
                                             for k, v in metrics.items()])
                 + "\nDistances in pixels of the store's crops. Per-clip table: the run's `evaluation/` artifacts.\n")
    log.info("%s on %s/%s: %s", what, dataset, params.split,
             ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k in ("lmd", "lmd_mouth", "psnr", "ssim", "cpbd")))
    return {"run_id": run_id, "metrics": metrics}


if __name__ == "__main__":
    from pydantic_settings import CliApp

    evaluate(CliApp.run(EvaluateParams))  # `python -m flows.evaluate --help` lists the fields
