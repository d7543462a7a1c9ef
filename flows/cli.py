"""The `talkface` command line: each subcommand runs a flow (DESIGN, "Set-up and entry points")."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from flows.embedded import start_temporary_prefect

# Embedded defaults: no usage reporting from the libraries (the machines may have no network at all).
for _name, _value in (("PREFECT_SERVER_ANALYTICS_ENABLED", "false"), ("GX_ANALYTICS_ENABLED", "false"),
                      ("DO_NOT_TRACK", "true"), ("MLFLOW_ENABLE_TELEMETRY", "false"),
                      ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")):
    os.environ.setdefault(_name, _value)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="talkface: talking-face datasets, models and benchmarks.")


def _require_complete_store(path: Path) -> None:
    """Exit with status 2 and the build to run when `path` is not a complete store (storage/store.py)."""
    from storage.store import IncompleteStoreError, require_complete

    try:
        require_complete(path)
    except IncompleteStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


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
    max_head_pose: Optional[float] = typer.Option(
        None, help="near-frontal filter: quarantine clips whose yaw, pitch or roll reaches this many degrees "
                   "(10 as Vougioukas et al. for LRW); the angles are in the manifest either way"),
    runner: str = typer.Option("process", help="process (a local pool of --workers) or dask (prefect-dask)"),
    address: Optional[str] = typer.Option(None, help="tcp://HOST:PORT of a running Dask scheduler (--runner dask); "
                                                     "without it a LocalCluster of --workers processes"),
) -> None:
    """Build a validated store from raw clips; prints the store's path."""
    from pydantic import ValidationError

    from flows.build_dataset import BuildParams, build_dataset

    try:
        params = BuildParams(dataset=dataset, raw_root=raw_root, data_root=data_root, workers=workers,
                             shard_size=shard_size, crop_size=crop_size, mouth_size=mouth_size, runner=runner,
                             address=address, max_head_pose_deg=max_head_pose)
    except ValidationError as exc:
        typer.echo(f"invalid build parameters: {exc}", err=True)
        raise typer.Exit(2)
    start_temporary_prefect()
    typer.echo(build_dataset(params))


@app.command()
def train(
    store: Path = typer.Option(..., exists=True, file_okay=False, help="a complete store"),
    data_root: Path = typer.Option(Path("data"), help="where mlflow.db and run outputs live"),
    model: str = typer.Option("atnet", help="atnet (AT-net alone), atvgnet (AT-net, then VG-net; registered) or "
                                            "syncnet (the AV sync expert)"),
    size: str = typer.Option("auto", help="network sizes: paper, small (CPU), auto (paper on GPU)"),
    steps: int = typer.Option(300, min=1, help="AT-net steps"),
    batch_size: int = typer.Option(16, min=1, help="AT-net windows per step"),
    vgnet_steps: int = typer.Option(300, min=1, help="VG-net steps (atvgnet)"),
    vgnet_batch_size: int = typer.Option(4, min=1, help="VG-net clips of 16 frames per step (atvgnet)"),
    sync_steps: int = typer.Option(2000, min=1, help="SyncNet steps (syncnet)"),
    sync_batch_size: int = typer.Option(32, min=1, help="SyncNet samples per step (syncnet)"),
    lr: float = typer.Option(2e-4),
    seed: int = typer.Option(0),
    checkpoint_every: int = typer.Option(100, min=0),
    sample_every: int = typer.Option(100, min=0, help="VG-net steps between sample images logged"),
    num_workers: int = typer.Option(0, min=0, help="DataLoader worker processes"),
    device: str = typer.Option("auto"),
    bf16: bool = typer.Option(True, help="bf16 autocast for VG-net on GPU"),
    dma: bool = typer.Option(True, help="VG-net dynamic pixel-wise attention (--no-dma: ablation)"),
    mmcrnn: bool = typer.Option(True, help="VG-net ConvGRU over time (--no-mmcrnn: ablation)"),
    dal: bool = typer.Option(True, help="attention-weighted pixel loss (--no-dal: ablation)"),
    rd: bool = typer.Option(True, help="regression discriminator (--no-rd: ablation)"),
    resume: Optional[str] = typer.Option(None, help="a checkpoint file, or an MLflow run id to continue"),
    alias: str = typer.Option("champion", help="MLflow alias for the registered atvgnet model"),
) -> None:
    """Train a model on a store; prints the MLflow run id, the last checkpoints and (atvgnet) the model URI."""
    from flows.train import TrainParams, train as train_flow

    _require_complete_store(store)
    start_temporary_prefect()
    out = train_flow(TrainParams(
        model=model, size=size, store=store, data_root=data_root, steps=steps, batch_size=batch_size,
        vgnet_steps=vgnet_steps, vgnet_batch_size=vgnet_batch_size, sync_steps=sync_steps,
        sync_batch_size=sync_batch_size, lr=lr, seed=seed, checkpoint_every=checkpoint_every,
        sample_every=sample_every, num_workers=num_workers, device=device, bf16=bf16, use_dma=dma, use_mmcrnn=mmcrnn,
        use_dal=dal, use_rd=rd, resume=resume, alias=alias))
    typer.echo(f"MLflow run: {out['run_id']}\ncheckpoint: {out['checkpoint']}")
    if "model_uri" in out:
        typer.echo(f"VG-net checkpoint: {out['vgnet_checkpoint']}\nmodel: {out['model_uri']} "
                   f"(version {out['model_version']})")


@app.command()
def generate(
    image: Path = typer.Option(..., help="a photo with one face (the largest is used)"),
    audio: Path = typer.Option(..., help="speech: any file ffmpeg reads, any length, rate or channel count"),
    out: Path = typer.Option(..., help="the mp4 to write (25 fps, H.264 + AAC)"),
    model: str = typer.Option("models:/atvgnet@champion",
                              help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN/model or a model directory"),
    data_root: Path = typer.Option(Path("data"), help="the MLflow store (mlflow.db) the model URI refers to"),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu or cuda"),
) -> None:
    """Make a talking-face video of IMAGE saying AUDIO with a trained ATVGnet; prints what it wrote."""
    import tempfile

    from storage.tracking import download_model
    from tasks.cascade import model_files
    from tasks.generate import GenerateError, generate as generate_video

    with tempfile.TemporaryDirectory(prefix="talkface-model-") as tmp:
        try:
            atnet, vgnet = model_files(download_model(model, data_root, Path(tmp)))
            info = generate_video(image, audio, out, atnet, vgnet, device=device)
        except (FileNotFoundError, GenerateError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    typer.echo(f"{info['out']}: {info['frames']} frames, {info['seconds']:.2f} s at {info['fps']} fps "
               f"(made in {info['elapsed_s']:.1f} s)")


@app.command()
def evaluate(
    store: Path = typer.Option(..., exists=True, file_okay=False, help="a complete store"),
    model: str = typer.Option("atnet", help="atnet (landmark error of a checkpoint) or atvgnet (rendered videos)"),
    checkpoint: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="atnet: the checkpoint"),
    model_uri: str = typer.Option("models:/atvgnet@champion", help="atvgnet: models:/…, runs:/… or a model directory"),
    split: str = typer.Option("test"),
    data_root: Path = typer.Option(Path("data")),
    sync_model: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                              help="SyncNet checkpoint or syncnet_v2.model for AV offset/confidence"),
    max_clips: Optional[int] = typer.Option(None, min=1, help="score only the first N clips"),
) -> None:
    """Score a model on a store split; prints the metrics."""
    from flows.evaluate import EvaluateParams, evaluate as evaluate_flow

    _require_complete_store(store)
    start_temporary_prefect()
    out = evaluate_flow(EvaluateParams(model=model, checkpoint=checkpoint, model_uri=model_uri, store=store,
                                       split=split, data_root=data_root, sync_model=sync_model, max_clips=max_clips))
    typer.echo(f"MLflow run: {out['run_id']}")
    for key, value in out["metrics"].items():
        typer.echo(f"{split}/{key}: {value:.4f}")


@app.command()
def benchmark(
    data_root: Path = typer.Option(Path("data"), help="stores, mlflow.db, mlartifacts and run outputs"),
    raw_root: Optional[Path] = typer.Option(None, exists=True, file_okay=False,
                                            help="raw GRID root; default: the bundled sample clips"),
    model: str = typer.Option("atvgnet", help="atvgnet (AT-net + VG-net, every metric) or atnet (landmarks only)"),
    size: str = typer.Option("auto", help="network sizes: paper, small (CPU), auto (paper on GPU)"),
    steps: int = typer.Option(300, min=1, help="AT-net training steps"),
    batch_size: int = typer.Option(16, min=1, help="AT-net windows per step"),
    vgnet_steps: int = typer.Option(300, min=1, help="VG-net training steps"),
    vgnet_batch_size: int = typer.Option(4, min=1, help="VG-net clips of 16 frames per step"),
    sync_model: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                              help="SyncNet checkpoint or syncnet_v2.model for AV offset/confidence"),
    sync_steps: int = typer.Option(500, min=0, help="without --sync-model: SyncNet steps trained first (0: none)"),
    seed: int = typer.Option(0),
    workers: int = typer.Option(1, min=1, help="parallel shard builders"),
) -> None:
    """The main job: build the store, train, score on the test split beside the papers, log it all to MLflow."""
    from flows.train_and_benchmark import BenchmarkParams, train_and_benchmark as benchmark_flow

    start_temporary_prefect()
    out = benchmark_flow(BenchmarkParams(
        data_root=data_root, raw_root=raw_root, model=model, size=size, steps=steps, batch_size=batch_size,
        vgnet_steps=vgnet_steps, vgnet_batch_size=vgnet_batch_size, sync_model=sync_model, sync_steps=sync_steps,
        seed=seed, workers=workers))
    typer.echo(out["summary"])
    typer.echo(f"store:      {out['store']}")
    typer.echo(f"checkpoint: {out['checkpoint']}")
    typer.echo(f"MLflow run: {out['run_id']}")
    mlflow_exe = Path(sys.executable).with_name("mlflow")
    typer.echo(f"Open the MLflow UI:  {mlflow_exe} ui --backend-store-uri {out['tracking_uri']} --host 127.0.0.1 --port 5000")
    typer.echo("                     then browse http://127.0.0.1:5000 (experiment 'talkface'), or run `talkface ui`")


@app.command()
def serve(
    raw_root: Optional[Path] = typer.Option(None, exists=True, file_okay=False,
                                            help="raw dataset root; default: the bundled GRID clips"),
    data_root: Path = typer.Option(Path("data"), help="stores, mlflow.db and run outputs of the served runs"),
    dataset: str = typer.Option("grid", help="dataset of both deployments"),
    build_cron: str = typer.Option("0 3 * * 1", help="cron schedule of the store rebuild (default: Mondays 03:00)"),
) -> None:
    """Serve the deployments `build_dataset/scheduled-build` (on its cron schedule) and
    `train_and_benchmark/one-click` (started from the Prefect UI) until interrupted. Needs a Prefect server:
    start `talkface ui` and export the PREFECT_API_URL it prints."""
    from prefect import serve as prefect_serve
    from prefect.settings import get_current_settings

    from flows.deployments import deployments

    api = get_current_settings().api.url
    if not api:
        typer.echo("error: no Prefect server: run `talkface ui` (or `prefect server start --host 127.0.0.1`) and "
                   "export PREFECT_API_URL=http://127.0.0.1:4200/api first", err=True)
        raise typer.Exit(2)
    typer.echo(f"serving on {api}: build_dataset/scheduled-build ({build_cron}), train_and_benchmark/one-click")
    prefect_serve(*deployments(raw_root, data_root, dataset, build_cron))


@app.command()
def ui(
    data_root: Path = typer.Option(Path("data"), help="the MLflow store (mlflow.db, mlartifacts) to show"),
    host: str = typer.Option("127.0.0.1", help="interface both servers bind to (loopback unless you mean it)"),
    prefect_port: int = typer.Option(4200, help="Prefect server port"),
    mlflow_port: int = typer.Option(5000, help="MLflow server port"),
) -> None:
    """Start the Prefect server and the MLflow server on 127.0.0.1, print their URLs, and stop both on Ctrl-C."""
    from flows.servers import run_servers

    run_servers(data_root, host, prefect_port, mlflow_port, echo=typer.echo)


if __name__ == "__main__":
    app()
