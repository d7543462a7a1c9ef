"""The `talkface` command line: each subcommand runs a flow (DESIGN, "Set-up and entry points")."""
from __future__ import annotations

import os
from pathlib import Path

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


if __name__ == "__main__":
    app()
