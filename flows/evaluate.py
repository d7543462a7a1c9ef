"""Flow `evaluate`: a trained model's scores on a store split, logged to MLflow as `<split>/<dataset>/<metric>`.

Run: `talkface evaluate --checkpoint CKPT --store STORE [--split test]` or `python -m flows.evaluate …`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

from storage import store, tracking
from tasks.steps import train as steps


class EvaluateParams(BaseModel):
    """Parameters of an evaluation (the Prefect UI form)."""

    model: Literal["atnet"] = Field("atnet", description="system of the checkpoint")
    checkpoint: Path = Field(..., description="a checkpoint written by the train flow")
    store: Path = Field(..., description="a complete store to score on")
    split: Literal["train", "val", "test"] = Field("test", description="store split to score")
    data_root: Path = Field(Path("data"), description="where mlflow.db and run outputs live")
    experiment: str = Field("talkface", description="MLflow experiment (when a new run is made)")
    run_id: str | None = Field(None, description="log into this MLflow run instead of a new one")
    parent_run_id: str | None = Field(None, description="nest the new MLflow run under this one (a benchmark run)")


@flow(name="evaluate")
def evaluate(params: EvaluateParams) -> dict:
    """Score `params.checkpoint` on the store split; returns {"run_id", "metrics"}."""
    log = get_run_logger()
    store_dir, data_root = params.store.resolve(), params.data_root.resolve()
    card = store.read_card(store_dir)
    dataset = card["dataset"]
    if not params.checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {params.checkpoint} not found")
    uri, run_id, own_run = tracking.open_run(data_root, params.experiment, params.run_id,
                                             f"evaluate-{params.model}-{dataset}", {"model": params.model, "dataset": dataset},
                                             parent_run_id=params.parent_run_id)
    if own_run:
        tracking.log_store_input(MlflowClient(uri), run_id, store_dir, card, params.split)
    metrics = steps.evaluate_atnet(params.checkpoint.resolve(), store_dir, params.split, dataset,
                                   data_root / "runs" / run_id / "evaluation", uri, run_id)
    if own_run:
        MlflowClient(uri).set_terminated(run_id)
    create_table_artifact(
        key="evaluation", table=[{"metric": f"{params.split}/{dataset}/{k}", "value": round(v, 4)} for k, v in metrics.items()],
        description=f"{params.model} on {store_dir.name} ({params.split}); landmark distances in crop pixels",
    )
    log.info("%s on %s/%s: mouth LMD %.3f px (PCA ceiling %.3f, static %.3f)", params.model, dataset, params.split,
             metrics.get("lmd_mouth", float("nan")), metrics.get("lmd_mouth_pca_ceiling", float("nan")),
             metrics.get("lmd_mouth_static", float("nan")))
    return {"run_id": run_id, "metrics": metrics}


if __name__ == "__main__":
    from flows.cli import app

    app(["evaluate", *__import__("sys").argv[1:]])
