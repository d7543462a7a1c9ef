"""Flow `benchmark`, the main job end to end: build the store (reused when unchanged) → train AT-net → score its
landmark error on the test split, all in one MLflow run (params, per-step loss, checkpoint, scores).

Run: `talkface benchmark --data-root DATA [--raw-root RAW]` (the bundled GRID clips without --raw-root), or
`make demo`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from flows.build_dataset import BuildParams, build_dataset
from flows.evaluate import EvaluateParams, evaluate
from flows.train import TrainParams, train
from storage import store, tracking

BUNDLED_GRID = Path(__file__).resolve().parents[1] / "samples" / "grid"


class BenchmarkParams(BaseModel):
    """Parameters of a train-and-benchmark run (the Prefect UI form)."""

    dataset: Literal["grid"] = Field("grid", description="dataset to build, train and test on")
    model: Literal["atnet"] = Field("atnet", description="system to train")
    raw_root: Path | None = Field(None, description="raw dataset root; default: the GRID clips bundled with talkface")
    data_root: Path = Field(Path("data"), description="stores, mlflow.db, mlartifacts and run outputs")
    size: Literal["auto", "paper", "small"] = Field(
        "auto", description='AT-net size: "paper", "small" (for CPU), "auto" (paper on GPU, small on CPU)'
    )
    steps: int = Field(300, ge=1, description="training steps")
    batch_size: int = Field(16, ge=1, description="windows per training step")
    seed: int = Field(0, description="training seed")
    workers: int = Field(1, ge=1, description="parallel shard builders")
    experiment: str = Field("talkface", description="MLflow experiment")


@flow(name="benchmark")
def benchmark(params: BenchmarkParams) -> dict:
    """Build → train → evaluate; returns {"run_id", "tracking_uri", "store", "metrics", "checkpoint"}."""
    log = get_run_logger()
    data_root = params.data_root.resolve()
    raw_root = params.raw_root or BUNDLED_GRID
    store_dir = Path(build_dataset(BuildParams(dataset=params.dataset, raw_root=raw_root, data_root=data_root,
                                               workers=params.workers)))
    card = store.read_card(store_dir)
    uri, run_id, _ = tracking.open_run(data_root, params.experiment, None, f"benchmark-{params.model}-{params.dataset}",
                                       {"flow": "benchmark", "model": params.model, "dataset": params.dataset})
    client = MlflowClient(uri)
    try:
        client.log_batch(run_id, params=[Param("raw_root", str(raw_root)), Param("store_clips_ok", str(card["counts"]["ok"]))])
        trained = train(TrainParams(model=params.model, store=store_dir, data_root=data_root, size=params.size,
                                    steps=params.steps,
                                    batch_size=params.batch_size, seed=params.seed, run_id=run_id))
        scored = evaluate(EvaluateParams(model=params.model, checkpoint=Path(trained["checkpoint"]), store=store_dir,
                                         split="test", data_root=data_root, run_id=run_id))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    m = scored["metrics"]
    summary = (
        f"# {params.model} on {params.dataset} (store `{card['version']}`)\n\n"
        f"MLflow run `{run_id}`, {params.steps} steps, final training loss {trained['final_loss']:.5f}.\n\n"
        "| test split, crop pixels (128 px crops) | AT-net | AT-net, boost ω | PCA alone (floor) | still face |\n"
        "|---|---|---|---|---|\n"
        f"| mouth LMD (mean over points 48–67) | {m['lmd_mouth']:.3f} | {m['lmd_mouth_boost']:.3f} | "
        f"{m['lmd_mouth_pca_ceiling']:.3f} | {m['lmd_mouth_static']:.3f} |\n"
        f"| LMD, all 68 points | {m['lmd_all68']:.3f} | {m['lmd_all68_boost']:.3f} | "
        f"{m['lmd_all68_pca_ceiling']:.3f} | {m['lmd_all68_static']:.3f} |\n"
    )
    create_markdown_artifact(key="benchmark", markdown=summary, description="AT-net landmark error on the test split")
    log.info("benchmark done: MLflow run %s, test mouth LMD %.3f px", run_id, m["lmd_mouth"])
    return {"run_id": run_id, "tracking_uri": uri, "store": str(store_dir), "metrics": m,
            "checkpoint": trained["checkpoint"], "final_loss": trained["final_loss"], "summary": summary}


if __name__ == "__main__":
    from flows.cli import app

    app(["benchmark", *__import__("sys").argv[1:]])
