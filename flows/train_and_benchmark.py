"""Flow `train_and_benchmark`, the one-click run: build the store (reused when its digest is unchanged) → train
(and, for ATVGnet without a given sync model, a SyncNet expert on the same store) → evaluate on the test split, as one MLflow parent run with the training and the evaluation as nested runs, the
store linked as the input dataset (name and digest), and at the end this run's scores beside the papers' published
numbers (`tasks.published`) in MLflow (`comparison.md`, and the scores as the parent's metrics) and as a Prefect
markdown artifact.

Run: `talkface benchmark --data-root DATA [--raw-root RAW]` (the bundled GRID clips without --raw-root), `make demo`,
or the `one-click` deployment in the Prefect UI (`talkface serve`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from flows.build_dataset import BuildParams, build_dataset
from flows.evaluate import EvaluateParams, evaluate
from flows.train import TrainParams, train
from storage import store, tracking
from tasks import published

BUNDLED_GRID = Path(__file__).resolve().parents[1] / "samples" / "grid"


class BenchmarkParams(BaseModel):
    """Parameters of a train-and-benchmark run (the Prefect UI form)."""

    dataset: Literal["grid"] = Field("grid", description="dataset to build, train and test on")
    model: Literal["atvgnet", "atnet"] = Field(
        "atvgnet", description='"atvgnet": AT-net + VG-net, scored on rendered videos with every metric; "atnet": '
                               "AT-net alone, scored on its landmarks")
    raw_root: Path | None = Field(None, description="raw dataset root; default: the GRID clips bundled with talkface")
    data_root: Path = Field(Path("data"), description="stores, mlflow.db, mlartifacts and run outputs")
    size: Literal["auto", "paper", "small"] = Field(
        "auto", description='network sizes: "paper", "small" (for CPU), "auto" (paper on GPU, small on CPU)'
    )
    steps: int = Field(300, ge=1, description="AT-net training steps")
    batch_size: int = Field(16, ge=1, description="AT-net windows per training step")
    vgnet_steps: int = Field(300, ge=1, description="VG-net training steps (atvgnet)")
    vgnet_batch_size: int = Field(4, ge=1, description="VG-net clips of 16 frames per step (atvgnet)")
    sync_model: Path | None = Field(None, description="SyncNet checkpoint or syncnet_v2.model for AV offset and "
                                                      "confidence (none: one is trained on the store, sync_steps)")
    sync_steps: int = Field(500, ge=0, description="atvgnet without sync_model: SyncNet steps trained on the store "
                                                   "first (0: AV offset and confidence not scored)")
    seed: int = Field(0, description="training seed")
    workers: int = Field(1, ge=1, description="parallel shard builders")
    experiment: str = Field("talkface", description="MLflow experiment")


@flow(name="train_and_benchmark")
def train_and_benchmark(params: BenchmarkParams) -> dict:
    """Build → train → evaluate; returns {"run_id" (the parent), "train_run_id", "evaluate_run_id", "tracking_uri",
    "store", "metrics", "checkpoint", "final_loss", "summary" (markdown)}."""
    log = get_run_logger()
    data_root = params.data_root.resolve()
    raw_root = params.raw_root or BUNDLED_GRID
    store_dir = Path(build_dataset(BuildParams(dataset=params.dataset, raw_root=raw_root, data_root=data_root,
                                               workers=params.workers)))
    card = store.read_card(store_dir)
    uri, run_id, _ = tracking.open_run(data_root, params.experiment, None, f"benchmark-{params.model}-{params.dataset}",
                                       {"flow": "train_and_benchmark", "model": params.model, "dataset": params.dataset})
    client = MlflowClient(uri)
    try:
        tracking.log_store_input(client, run_id, store_dir, card, "benchmark")
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(params.model_dump().items())]
                         + [Param("store_version", card["version"]), Param("store_clips_ok", str(card["counts"]["ok"]))])
        trained = train(TrainParams(model=params.model, store=store_dir, data_root=data_root, size=params.size,
                                    steps=params.steps, batch_size=params.batch_size, vgnet_steps=params.vgnet_steps,
                                    vgnet_batch_size=params.vgnet_batch_size, seed=params.seed,
                                    experiment=params.experiment, parent_run_id=run_id))
        sync_model = params.sync_model
        if params.model == "atvgnet" and sync_model is None and params.sync_steps:
            synced = train(TrainParams(model="syncnet", store=store_dir, data_root=data_root, size=params.size,
                                       sync_steps=params.sync_steps, seed=params.seed, experiment=params.experiment,
                                       parent_run_id=run_id))
            sync_model = Path(synced["checkpoint"])
        scored = evaluate(EvaluateParams(model=params.model, checkpoint=Path(trained["checkpoint"]),
                                         model_uri=trained.get("model_version_uri", ""), store=store_dir, split="test",
                                         data_root=data_root, sync_model=sync_model,
                                         experiment=params.experiment, parent_run_id=run_id))
        m = scored["metrics"]
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(f"test/{params.dataset}/{k}", float(v), now, 0) for k, v in m.items()])
        summary = render_summary(params, card, run_id, trained, m)
        client.log_text(run_id, summary, "comparison.md")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    create_markdown_artifact(key="benchmark", markdown=summary,
                             description=f"{params.model} on {params.dataset}: this run beside the published numbers")
    log.info("benchmark done: MLflow run %s", run_id)
    return {"run_id": run_id, "train_run_id": trained["run_id"], "evaluate_run_id": scored["run_id"],
            "tracking_uri": uri, "store": str(store_dir), "metrics": m, "checkpoint": trained["checkpoint"],
            "final_loss": trained["final_loss"], "summary": summary}


def render_summary(params: BenchmarkParams, card: dict, run_id: str, trained: dict, m: dict) -> str:
    """The benchmark's markdown: what ran, then this run's scores beside the published numbers."""
    head = (f"# {params.model} on {params.dataset} (store `{card['version']}`)\n\n"
            f"MLflow run `{run_id}` (training run `{trained['run_id']}`): AT-net {params.steps} steps, final loss "
            f"{trained['final_loss']:.5f}")  # the sentence ends per model below
    if params.model == "atnet":
        return (
            head + ".\n\n"
            "| test split, crop pixels (128 px crops) | AT-net | AT-net, boost ω | PCA alone (floor) | still face |\n"
            "|---|---|---|---|---|\n"
            f"| mouth LMD (mean over points 48–67) | {m['lmd_mouth']:.3f} | {m['lmd_mouth_boost']:.3f} | "
            f"{m['lmd_mouth_pca_ceiling']:.3f} | {m['lmd_mouth_static']:.3f} |\n"
            f"| LMD, all 68 points | {m['lmd_all68']:.3f} | {m['lmd_all68_boost']:.3f} | "
            f"{m['lmd_all68_pca_ceiling']:.3f} | {m['lmd_all68_static']:.3f} |\n\n"
            "## Beside the published numbers\n\n"
            "AT-net alone predicts landmarks, so only LMD is scored here: on AT-net's landmarks against the tracked "
            "ones in this store's 128-px crops, where the papers run dlib on rendered frames.\n\n"
            + published.comparison_markdown({"lmd": m["lmd_mouth"]}, params.dataset, label="this run (AT-net landmarks)")
        )
    scores = {k: m[k] for k in published.METRICS if k in m}
    return (
        head + f"; VG-net {params.vgnet_steps} steps, final generator loss {trained['vgnet_final_loss']:.4f}; "
        f"model `{trained['model_uri']}` (version {trained['model_version']}). Test split: {int(m['n_clips'])} clips, "
        f"{int(m['n_frames'])} frames.\n\n## Beside the published numbers\n\n"
        + published.comparison_markdown(scores, params.dataset) +
        f"\nPaper-compatible forms (the published scripts' uint8 arithmetic): PSNR {m['psnr_paper']:.2f} dB, SSIM "
        f"{m['ssim_paper']:.3f}; LMD summed over the 20 mouth points as their code does: {m['lmd_sum']:.2f}. The real "
        f"frames score CPBD {m['cpbd_real']:.3f} and blink {m['blinks_per_s_real']:.2f} times a second. LMD is in "
        "pixels of this store's 128-px aligned crops; ACD (dlib descriptors) "
        f"{m['acd']:.3f}. WER needs a lip reader (not scored)."
        + ("" if "av_offset" in m else " AV offset and confidence need a sync model (`sync_model` or "
                                       "`sync_steps`).") + "\n"
    )


if __name__ == "__main__":
    from flows.cli import app

    app(["benchmark", *__import__("sys").argv[1:]])
