"""Flow `evaluate`: a trained model's scores on a store split, logged to MLflow as `<split>/<dataset>/<metric>`,
with the per-clip table (Parquet and an MLflow table) and, for ATVGnet, side-by-side sample videos; a Prefect
markdown artifact shows the aggregates.

model "atnet": an AT-net checkpoint's landmark error (tasks/landmark_eval.py). model "atvgnet": the cascade
rendered and scored with the papers' metrics (tasks/evaluate_atvgnet.py): PSNR, SSIM (and their paper-compatible
forms), LMD, CPBD, ACD, blinks, AV offset and confidence (with a SyncNet), inference frames per second.

Run: `talkface evaluate --store STORE [--model atvgnet --model-uri models:/atvgnet@champion | --checkpoint CKPT]`
or `python -m flows.evaluate …`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from storage import store, tracking
from tasks import published
from tasks.steps import train as steps


class EvaluateParams(BaseModel):
    """Parameters of an evaluation (the Prefect UI form)."""

    model: Literal["atnet", "atvgnet"] = Field("atnet", description='"atnet": landmark error of an AT-net checkpoint; '
                                                                    '"atvgnet": the rendered videos, all metrics')
    checkpoint: Path | None = Field(None, description="atnet: a checkpoint written by the train flow")
    model_uri: str = Field("models:/atvgnet@champion", description="atvgnet: models:/NAME@ALIAS, models:/NAME/VERSION, "
                                                                   "runs:/RUN/model or a model directory")
    store: Path = Field(..., description="a complete store to score on")
    split: Literal["train", "val", "test"] = Field("test", description="store split to score")
    data_root: Path = Field(Path("data"), description="where mlflow.db and run outputs live")
    sync_model: Path | None = Field(None, description="a SyncNet checkpoint or the official syncnet_v2.model for AV "
                                                      "offset and confidence (none: not scored)")
    max_clips: int | None = Field(None, ge=1, description="score only the first N clips of the split (by clip id)")
    sample_videos: int = Field(2, ge=0, description="side-by-side videos (generated | real) logged to MLflow")
    experiment: str = Field("talkface", description="MLflow experiment (when a new run is made)")
    run_id: str | None = Field(None, description="log into this MLflow run instead of a new one")
    parent_run_id: str | None = Field(None, description="nest the new MLflow run under this one (a benchmark run)")


@flow(name="evaluate")
def evaluate(params: EvaluateParams) -> dict:
    """Score the model on the store split; returns {"run_id", "metrics"}."""
    log = get_run_logger()
    store_dir, data_root = params.store.resolve(), params.data_root.resolve()
    card = store.read_card(store_dir)
    dataset = card["dataset"]
    if params.model == "atnet" and (params.checkpoint is None or not params.checkpoint.exists()):
        raise FileNotFoundError(f"AT-net checkpoint {params.checkpoint} not found")
    uri, run_id, own_run = tracking.open_run(data_root, params.experiment, params.run_id,
                                             f"evaluate-{params.model}-{dataset}", {"model": params.model, "dataset": dataset},
                                             parent_run_id=params.parent_run_id)
    client = MlflowClient(uri)
    out_dir = data_root / "runs" / run_id / "evaluation"
    try:
        if own_run:
            tracking.log_store_input(client, run_id, store_dir, card, params.split)
        if params.model == "atnet":
            metrics = steps.evaluate_atnet(params.checkpoint.resolve(), store_dir, params.split, dataset, out_dir, uri,
                                           run_id)
        else:
            client.set_tag(run_id, "model_uri", params.model_uri)
            with tempfile.TemporaryDirectory(prefix="talkface-model-") as tmp:
                model_dir = tracking.download_model(params.model_uri, data_root, Path(tmp))
                metrics = steps.evaluate_atvgnet(model_dir, store_dir, params.split, dataset, out_dir, uri, run_id,
                                                 params.sync_model, params.max_clips, params.sample_videos)
    except BaseException:
        if own_run:
            client.set_terminated(run_id, "FAILED")
        raise
    if own_run:
        client.set_terminated(run_id)
    create_markdown_artifact(
        key="evaluation", description=f"{params.model} on {store_dir.name} ({params.split})",
        markdown=f"# {params.model} on {dataset}/{params.split} (store `{card['version']}`, MLflow run `{run_id}`)\n\n"
                 + published.markdown_table([{"metric": f"{params.split}/{dataset}/{k}", "value": float(v)}
                                             for k, v in metrics.items()])
                 + "\nDistances in pixels of the store's crops. Per-clip table: the run's `evaluation/` artifacts.\n")
    log.info("%s on %s/%s: %s", params.model, dataset, params.split,
             ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k in ("lmd", "lmd_mouth", "psnr", "ssim", "cpbd")))
    return {"run_id": run_id, "metrics": metrics}


if __name__ == "__main__":
    from flows.cli import app

    app(["evaluate", *__import__("sys").argv[1:]])
