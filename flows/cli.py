"""The `talkface` command line: each subcommand runs a flow (DESIGN, "Set-up and entry points")."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

# Embedded defaults: no usage reporting from the libraries (the machines may have no network at all).
for _name, _value in (("PREFECT_SERVER_ANALYTICS_ENABLED", "false"), ("GX_ANALYTICS_ENABLED", "false"),
                      ("DO_NOT_TRACK", "true"), ("MLFLOW_ENABLE_TELEMETRY", "false")):
    os.environ.setdefault(_name, _value)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="talkface: talking-face datasets, models and benchmarks.")


@app.callback()
def main() -> None:
    """talkface: raw talking-face video → validated stores → trained, benchmarked models (Prefect + MLflow)."""


@app.command()
def build(
    raw_root: Path = typer.Option(..., exists=True, file_okay=False, help="raw dataset root in its official layout"),
    data_root: Path = typer.Option(Path("data"), help="where stores, MLflow and artifacts live"),
    dataset: str = typer.Option("grid", help="dataset adapter"),
    workers: int = typer.Option(1, min=1, help="parallel shard builders"),
    shard_size: int = typer.Option(16, min=1, help="clips per shard"),
    crop_size: int = typer.Option(128, help="face crop side (px)"),
    mouth_size: int = typer.Option(64, help="mouth crop side (px)"),
) -> None:
    """Build a validated store from raw clips; prints the store's path."""
    from flows.build_dataset import BuildParams, build_dataset

    params = BuildParams(dataset=dataset, raw_root=raw_root, data_root=data_root, workers=workers,
                         shard_size=shard_size, crop_size=crop_size, mouth_size=mouth_size)
    typer.echo(build_dataset(params))


@app.command()
def train(
    store: Path = typer.Option(..., exists=True, file_okay=False, help="a complete store"),
    data_root: Path = typer.Option(Path("data"), help="where mlflow.db and run outputs live"),
    model: str = typer.Option("atnet", help="system to train"),
    size: str = typer.Option("auto", help="model size: paper, small (CPU), auto (paper on GPU)"),
    steps: int = typer.Option(300, min=1),
    batch_size: int = typer.Option(16, min=1),
    lr: float = typer.Option(2e-4),
    seed: int = typer.Option(0),
    checkpoint_every: int = typer.Option(100, min=0),
    num_workers: int = typer.Option(0, min=0, help="DataLoader worker processes"),
    device: str = typer.Option("auto"),
    resume: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="checkpoint to continue from"),
) -> None:
    """Train a model on a store; prints the MLflow run id and the last checkpoint."""
    from flows.train import TrainParams, train as train_flow

    out = train_flow(TrainParams(model=model, size=size, store=store, data_root=data_root, steps=steps, batch_size=batch_size,
                                 lr=lr, seed=seed, checkpoint_every=checkpoint_every, num_workers=num_workers,
                                 device=device, resume=resume))
    typer.echo(f"MLflow run: {out['run_id']}\ncheckpoint: {out['checkpoint']}")


@app.command()
def evaluate(
    checkpoint: Path = typer.Option(..., exists=True, dir_okay=False),
    store: Path = typer.Option(..., exists=True, file_okay=False),
    split: str = typer.Option("test"),
    data_root: Path = typer.Option(Path("data")),
    model: str = typer.Option("atnet"),
) -> None:
    """Score a checkpoint on a store split; prints the metrics."""
    from flows.evaluate import EvaluateParams, evaluate as evaluate_flow

    out = evaluate_flow(EvaluateParams(model=model, checkpoint=checkpoint, store=store, split=split, data_root=data_root))
    typer.echo(f"MLflow run: {out['run_id']}")
    for key, value in out["metrics"].items():
        typer.echo(f"{split}/{key}: {value:.4f}")


@app.command()
def benchmark(
    data_root: Path = typer.Option(Path("data"), help="stores, mlflow.db, mlartifacts and run outputs"),
    raw_root: Optional[Path] = typer.Option(None, exists=True, file_okay=False,
                                            help="raw GRID root; default: the bundled sample clips"),
    size: str = typer.Option("auto", help="AT-net size: paper, small (CPU), auto (paper on GPU)"),
    steps: int = typer.Option(300, min=1, help="AT-net training steps"),
    batch_size: int = typer.Option(16, min=1),
    seed: int = typer.Option(0),
    workers: int = typer.Option(1, min=1, help="parallel shard builders"),
) -> None:
    """The main job: build the store, train AT-net, score it on the test split, log everything to MLflow."""
    from flows.benchmark import BenchmarkParams, benchmark as benchmark_flow

    out = benchmark_flow(BenchmarkParams(data_root=data_root, raw_root=raw_root, size=size, steps=steps, batch_size=batch_size,
                                         seed=seed, workers=workers))
    typer.echo(out["summary"])
    typer.echo(f"store:      {out['store']}")
    typer.echo(f"checkpoint: {out['checkpoint']}")
    typer.echo(f"MLflow run: {out['run_id']}")
    mlflow_exe = Path(sys.executable).with_name("mlflow")
    typer.echo(f"Open the MLflow UI:  {mlflow_exe} ui --backend-store-uri {out['tracking_uri']} --host 127.0.0.1 --port 5000")
    typer.echo("                     then browse http://127.0.0.1:5000 (experiment 'talkface')")


if __name__ == "__main__":
    app()
